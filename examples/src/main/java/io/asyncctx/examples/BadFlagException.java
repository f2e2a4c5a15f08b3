package io.asyncctx.examples;

/**
 * A flag or file given on the command line is wrong; the message says which and what is expected. {@link Main}
 * prints it with a pointer to the command's {@code --help} and exits with code 2.
 *
 * <p>Threading: an ordinary exception.
 */
final class BadFlagException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    BadFlagException(String message) {
        super(message);
    }
}
