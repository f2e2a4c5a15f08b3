package io.asyncctx.examples;

import picocli.CommandLine;

/**
 * A flag or file given on the command line is wrong; the message says which and what is expected. Picocli prints it
 * and the process exits non-zero.
 *
 * <p>Threading: an ordinary exception.
 */
final class BadFlagException extends CommandLine.ParameterException {

    private static final long serialVersionUID = 1L;

    BadFlagException(String message) {
        super(new CommandLine(new ServerCommand()), message);
    }
}
