/**
 * The PKCS#11 engine: private-key operations on a key that never leaves a token (an HSM, a smart card, SoftHSM2, or a
 * token on another host exported by {@code p11-kit server}), run on the engine's own workers, one token session per
 * worker, and signalled through the connection's {@link io.asyncctx.AsyncWaitCtx}.
 *
 * <p>Depends on the engine SPI ({@code io.asyncctx.engine}), the core, the JDK, and {@code org.xipki:ipkcs11wrapper}.
 * Never on Netty's pipeline classes, never on JDK internals.
 *
 * <h2>Design notes: why ipkcs11wrapper, not SunPKCS11</h2>
 *
 * <ul>
 *   <li><b>What SunPKCS11 could not do</b> (DESIGN.md fact 13): its {@code KeyStore} hides a private key that has no
 *   certificate object with the same CKA_ID, the usual case for keys imported with {@code softhsm2-util --import} or
 *   generated on the token; its configuration selects a slot but not a token label (the engine used to find the label
 *   by reading SunPKCS11's private fields through {@code sun.misc.Unsafe}, which Java 25 warns about on every start,
 *   and by configuring up to 1,024 providers it never released); and it has no EdDSA, although tokens offer
 *   {@code CKM_EDDSA}.</li>
 *   <li><b>The choice</b>: {@code org.xipki:ipkcs11wrapper} 1.0.9 (Apache 2.0, derived from the IAIK PKCS#11 wrapper,
 *   maintained by the xipki project, on Maven Central, JNI natives for linux-x86_64/aarch64, macOS and Windows inside
 *   the jar, no dependencies). It is the PKCS#11 C API one call for one call: objects found by any attribute, any
 *   mechanism with its parameters ({@code CKM_EDDSA}, {@code CKM_RSA_PKCS_PSS}), return values as names
 *   ({@code CKR_DEVICE_ERROR}) so the engine can tell a lost session from a refused operation.</li>
 *   <li><b>Rejected</b>: the FFM API (final only in Java 22; the build targets Java 17); JNA (a second native
 *   dependency and hand-written struct mappings for every mechanism parameter); keeping SunPKCS11 for RSA/EC (two
 *   code paths, and still no key-only tokens).</li>
 *   <li><b>Costs</b>: JNI, so Java 24+ wants {@code --enable-native-access=ALL-UNNAMED} (the project's Netty natives
 *   want it already, fact 9); the wrapper unpacks its native library to a temporary file at first use; its INFO log
 *   lines are routed to {@code System.Logger} at DEBUG ({@code TokenModule}); and a trap: its native
 *   {@code connect} crashes the JVM (SIGSEGV in {@code jni_ThrowNew}, seen with {@code libz.so.1}) when the path names
 *   a shared library without {@code C_GetFunctionList}, so {@code TokenModule} refuses such a file before loading it.
 *   </li>
 *   <li><b>Limits seen</b>: SoftHSM2 reports no session count ({@code CK_UNAVAILABLE_INFORMATION}), so the engine
 *   counts its own sessions ({@code Pkcs11Engine.openSessions()}); p11-kit 0.24.1 (Debian 12) does not forward
 *   {@code CKM_EDDSA} over its RPC (pkcs11-tool through it fails the same way), so Ed25519 works on local tokens
 *   only there.</li>
 * </ul>
 *
 * <h2>Public types</h2>
 *
 * {@link io.asyncctx.engine.pkcs11.Pkcs11Engine}, {@link io.asyncctx.engine.pkcs11.Pkcs11EngineBuilder} (with
 * {@code closeTimeout}: how long {@code close()} waits for a token call in progress, a shutdown-budget setting), and
 * {@link io.asyncctx.engine.pkcs11.Pkcs11Uri} (public because a command line takes a key as an RFC 7512 URI and must
 * tell it from a file and read its module and PIN file: the examples' {@code EngineOptions} does). Everything else is
 * package-private: the builder hands the engine an immutable {@code Pkcs11Settings}; {@code Pkcs11EngineFactory}
 * opens it; {@code TokenModule}, {@code TokenAccess}, {@code TokenWorker} and {@code TokenMechanisms} hold the logic.
 *
 * <h2>The token behind an interface</h2>
 *
 * Every call the engine makes on a token goes through {@code Cryptoki}, the subset of the PKCS#11 C API it uses (module
 * initialise/finalise, token list, open/close session, login/logout, find objects, attributes, sign, decrypt), with
 * the module's handle numbers and {@code CKR_*} return values. {@code WrapperCryptoki} implements it on ipkcs11wrapper;
 * the tests' {@code FakeCryptoki} is an in-memory token with JDK keys and scripted faults (session limit, refused PIN,
 * device gone, token removed, key deleted, held signatures), so the engine's logic is tested without SoftHSM2; the
 * real-token tests (SoftHSM2, p11-kit) stay, and fail rather than skip under {@code CI=true}.
 *
 * <h2>Module, sessions, recovery</h2>
 *
 * A module path is loaded and {@code C_Initialize}d once per JVM and shared by its engines ({@code TokenModule}); each
 * worker opens its own session at its first operation and logs in (a login of another session counts). When a call
 * answers {@code CKR_SESSION_HANDLE_INVALID}, {@code CKR_DEVICE_REMOVED}, {@code CKR_DEVICE_ERROR} (what
 * p11-kit-client answers once its server is gone, for every call, until the module is finalised and initialised
 * again; checked by hand) and the like, the operation fails with that reason, the worker drops the session, the module
 * is re-initialised when the device itself went away, and the next operation opens a new session. The operation's
 * failure reaches the handshake, or the fallback engine when one is configured.
 *
 * <h2>Remote tokens and the environment</h2>
 *
 * {@code p11-kit-client.so} finds its server through {@code P11_KIT_SERVER_ADDRESS} (else
 * {@code $XDG_RUNTIME_DIR/p11-kit/pkcs11}), read from the process environment at {@code C_Initialize}; a running JVM
 * cannot set its own environment. The engine does not try (no {@code setenv} through native code: it would race other
 * threads' {@code getenv}): the operator sets the variable in the server's environment (README, "Keys in an HSM"), and
 * the tests run with it set by surefire's {@code environmentVariables} to a socket path under {@code target/} where
 * the test fixture starts {@code p11-kit server -n PATH}.
 */
package io.asyncctx.engine.pkcs11;
