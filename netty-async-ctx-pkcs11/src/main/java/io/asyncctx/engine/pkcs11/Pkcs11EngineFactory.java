package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Arrays;

/**
 * Opens an engine from its settings: reads the PIN, acquires the module (loading it with the given {@link Cryptoki}
 * loader on first use), opens the session whose login lasts as long as the engine, reads the key type and the
 * certificate (given, or from the token), checks that key and certificate match by signing a random challenge on the
 * token, and starts the engine. Every failure says what to do. {@link Pkcs11EngineBuilder#build()} calls it with the
 * ipkcs11wrapper loader; the tests call it with a fake token.
 *
 * <p><b>Threading.</b> Stateless; any thread that may block (it talks to the token).
 */
final class Pkcs11EngineFactory {

    private Pkcs11EngineFactory() {
    }

    /**
     * The engine of {@code settings}, on the module {@code loader} loads (unless this JVM has it already).
     *
     * @throws IllegalArgumentException when the PIN source cannot be read
     * @throws IllegalStateException when the module or the token refuses; the message says what to do
     */
    static Pkcs11Engine open(Pkcs11Settings settings, Cryptoki.Loader loader) {
        char[] pin = settings.readPin();
        TokenModule module;
        try {
            module = TokenModule.acquire(settings.modulePath(), loader);
        } catch (RuntimeException e) {
            Arrays.fill(pin, '\0');
            throw e;
        }
        TokenAccess access = new TokenAccess(module, settings, pin);
        boolean success = false;
        try {
            Pkcs11Engine engine = openOn(settings, access);
            success = true;
            return engine;
        } finally {
            if (!success) {
                access.wipePin();
                module.release();
            }
        }
    }

    private static Pkcs11Engine openOn(Pkcs11Settings settings, TokenAccess access) {
        TokenModule module = access.module();
        TokenAccess.OpenSession open;
        module.calls().lock();
        try {
            try {
                open = access.open();
            } catch (PKCS11Exception e) {
                throw loginFailure(e, access, settings);
            }
            try {
                TokenMechanisms.KeyKind kind = keyKind(access, open);
                X509Certificate[] given = settings.chainArray();
                X509Certificate[] certs = given != null ? given : chainFromToken(access, open);
                TokenMechanisms.KeyKind certKind = TokenMechanisms.KeyKind.ofJca(certs[0].getPublicKey()
                        .getAlgorithm());
                if (certKind != kind) {
                    throw mismatch(access, certs[0], "the certificate holds a " + certs[0].getPublicKey()
                            .getAlgorithm() + " key but the token key is " + kind.jcaAlgorithm);
                }
                boolean matches;
                try {
                    matches = Pkcs11Engine.matches(access, open, kind, certs[0].getPublicKey());
                } catch (GeneralSecurityException | RuntimeException e) {
                    String hint = Pkcs11Errors.code(e) != PKCS11Constants.CKR_MECHANISM_INVALID ? ""
                            : "; the module does not offer the mechanism for a " + kind.jcaAlgorithm + " key (list "
                            + "them with: pkcs11-tool --module " + settings.modulePath() + " -M)" + (kind
                            == TokenMechanisms.KeyKind.ED25519 ? ", and p11-kit 0.24's RPC (Debian 12) does not "
                            + "forward CKM_EDDSA: use an RSA or EC key through p11-kit" : "");
                    throw new IllegalStateException("the key " + access.keyDescription() + " on the token "
                            + access.tokenDescription() + " cannot sign a test challenge: " + Pkcs11Errors.text(e)
                            + hint, e);
                }
                if (!matches) {
                    throw mismatch(access, certs[0], "a signature by the key does not verify with the certificate's "
                            + "public key");
                }
                module.loggedIn(open.slotId());
                Pkcs11Engine engine = Pkcs11Engine.start(settings, access, open, certs, kind);
                open = null; // the engine keeps it: the login lasts as long as the engine
                return engine;
            } finally {
                if (open != null) {
                    access.close(open);
                }
            }
        } finally {
            module.calls().unlock();
        }
    }

    private static RuntimeException loginFailure(PKCS11Exception e, TokenAccess access, Pkcs11Settings settings) {
        String source = settings.pinSourceDescription();
        if (e.getErrorCode() == PKCS11Constants.CKR_PIN_INCORRECT) {
            return new IllegalStateException("wrong PIN for the token " + access.tokenDescription()
                    + " (CKR_PIN_INCORRECT); fix the PIN in " + source + " (tokens lock the user PIN after a few failed "
                    + "attempts)", e);
        }
        return new IllegalStateException("login to the token " + access.tokenDescription() + " failed: "
                + Pkcs11Errors.text(e) + "; check the PIN in " + source + " and that the token's user PIN is "
                + "initialized", e);
    }

    private static TokenMechanisms.KeyKind keyKind(TokenAccess access, TokenAccess.OpenSession open) {
        long type;
        try {
            type = access.keyType(open);
        } catch (PKCS11Exception e) {
            throw new IllegalStateException("cannot read the key type of " + access.keyDescription() + ": "
                    + Pkcs11Errors.text(e), e);
        }
        TokenMechanisms.KeyKind kind = TokenMechanisms.KeyKind.ofCkk(type);
        if (kind == null) {
            throw new IllegalStateException("the key " + access.keyDescription() + " on the token "
                    + access.tokenDescription() + " has key type 0x" + Long.toHexString(type) + "; use an RSA, EC "
                    + "(P-256, P-384) or Ed25519 key");
        }
        return kind;
    }

    private static X509Certificate[] chainFromToken(TokenAccess access, TokenAccess.OpenSession open) {
        byte[] der;
        try {
            der = access.certificateOnToken(open);
        } catch (PKCS11Exception e) {
            throw new IllegalStateException("cannot read the certificate of " + access.keyDescription() + " on the "
                    + "token: " + Pkcs11Errors.text(e), e);
        }
        if (der == null) {
            throw new IllegalStateException("no certificate given and none on the token for the key "
                    + access.keyDescription() + " (" + access.tokenDescription() + "); give the certificate file "
                    + "(--cert FILE, or certificateChain(...)), or store it on the token with the key's id: pkcs11-tool "
                    + "--module MODULE --token-label TOKEN --login --write-object cert.der --type cert --id ID");
        }
        try {
            return new X509Certificate[]{Pkcs11Engine.certificate(der)};
        } catch (CertificateException e) {
            throw new IllegalStateException("the certificate object of " + access.keyDescription() + " on the token "
                    + "is not an X.509 certificate: " + e.getMessage(), e);
        }
    }

    private static IllegalStateException mismatch(TokenAccess access, X509Certificate cert, String why) {
        return new IllegalStateException("the private key " + access.keyDescription() + " on the token "
                + access.tokenDescription() + " does not match the certificate " + cert.getSubjectX500Principal()
                + ": " + why + "; give the certificate of this key (or the key of this certificate)");
    }
}
