package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Exception;

/**
 * Turns PKCS#11 failures into text for messages: the return value's name ({@code CKR_PIN_INCORRECT}) and the causes.
 *
 * <p><b>Threading.</b> Stateless; any thread.
 */
final class Pkcs11Errors {

    private Pkcs11Errors() {
    }

    /** The messages of {@code t} and its causes, joined; a PKCS#11 return value by its name. */
    static String text(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            String m = c instanceof PKCS11Exception p ? p.getErrorName() : c.getMessage();
            if (m == null) {
                m = c.getClass().getSimpleName();
            }
            if (sb.indexOf(m) < 0) {
                if (sb.length() > 0) {
                    sb.append(": ");
                }
                sb.append(m);
            }
        }
        return sb.toString();
    }

    /** The PKCS#11 return value carried by {@code t} or a cause, or -1. */
    static long code(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof PKCS11Exception p) {
                return p.getErrorCode();
            }
        }
        return -1;
    }
}
