package io.asyncctx.examples;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.netty.OffloadConfig;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine;

/**
 * The command lines' closed choices as picocli converters: each flag's words and what they stand for, in one place.
 * A value none of them takes is refused while picocli parses, before any work, with one line naming the flag and
 * what to write ({@code --engine x: expected software, simulated or pkcs11}); the words are also the completion
 * candidates. Words compare case-insensitively, and {@code -} matches {@code _} ({@code io-uring}).
 *
 * <p>Threading: stateless after construction; picocli creates and calls them on the parsing thread.
 */
final class Choices {

    private Choices() {
    }

    /** A flag whose value is one of a fixed set of words. */
    abstract static class Choice<T> implements CommandLine.ITypeConverter<T>, Iterable<String> {
        private final String flag;
        private final Map<String, T> byWord = new LinkedHashMap<>();
        private final List<String> shown;

        /**
         * @param flag the flag, for the message
         * @param words word, value, word, value, ...; the first word of a value is the one shown, later ones for
         *     the same value are aliases
         */
        Choice(String flag, Object... words) {
            this.flag = flag;
            List<String> main = new java.util.ArrayList<>();
            java.util.Set<Object> seen = new java.util.HashSet<>();
            for (int i = 0; i < words.length; i += 2) {
                @SuppressWarnings("unchecked")
                T value = (T) words[i + 1];
                byWord.put(normal((String) words[i]), value);
                if (seen.add(value)) {
                    main.add((String) words[i]);
                }
            }
            this.shown = List.copyOf(main);
        }

        private static String normal(String s) {
            return s.toLowerCase(Locale.ROOT).replace('_', '-');
        }

        @Override
        public T convert(String s) {
            T value = byWord.get(normal(s));
            if (value == null) {
                throw new CommandLine.TypeConversionException(flag + " " + s + ": expected " + expected());
            }
            return value;
        }

        /** "a, b or c". */
        String expected() {
            int n = shown.size();
            return n == 1 ? shown.get(0) : String.join(", ", shown.subList(0, n - 1)) + " or " + shown.get(n - 1);
        }

        /** The word shown for {@code value} (its first word). */
        String word(T value) {
            for (Map.Entry<String, T> e : byWord.entrySet()) {
                if (e.getValue().equals(value)) {
                    return e.getKey();
                }
            }
            throw new IllegalArgumentException(String.valueOf(value));
        }

        @Override
        public Iterator<String> iterator() {
            return shown.iterator();
        }
    }

    /** {@code server --mode}. */
    static final class ModeChoice extends Choice<ExampleServer.Mode> {
        ModeChoice() {
            super("--mode", "offload", ExampleServer.Mode.OFFLOAD, "inline", ExampleServer.Mode.INLINE,
                    "blocking", ExampleServer.Mode.BLOCKING);
        }
    }

    /** {@code server --transport}. */
    static final class TransportChoice extends Choice<ExampleServer.Transport> {
        TransportChoice() {
            super("--transport", "epoll", ExampleServer.Transport.EPOLL, "io_uring", ExampleServer.Transport.IO_URING,
                    "nio", ExampleServer.Transport.NIO);
        }
    }

    /** {@code server --notify} (leaving it out means AUTO). */
    static final class NotifyChoice extends Choice<OffloadConfig.Notify> {
        NotifyChoice() {
            super("--notify", "fd", OffloadConfig.Notify.FD, "callback", OffloadConfig.Notify.CALLBACK);
        }
    }

    /** Which engine signs. */
    enum EngineKind {
        SOFTWARE, SIMULATED, PKCS11;

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** {@code server --engine}. */
    static final class EngineChoice extends Choice<EngineKind> {
        EngineChoice() {
            super("--engine", "software", EngineKind.SOFTWARE, "simulated", EngineKind.SIMULATED, "pkcs11",
                    EngineKind.PKCS11);
        }
    }

    /** The key of a generated self-signed certificate. */
    enum KeyType {
        RSA("RSA-2048"), EC("ECDSA P-256"), P384("ECDSA P-384"), ED25519("Ed25519");

        final String label;

        KeyType(String label) {
            this.label = label;
        }
    }

    /** {@code server --key-type} (with the aliases the server always took). */
    static final class KeyTypeChoice extends Choice<KeyType> {
        KeyTypeChoice() {
            super("--key-type", "rsa", KeyType.RSA, "rsa2048", KeyType.RSA, "ec", KeyType.EC, "ecdsa", KeyType.EC,
                    "p256", KeyType.EC, "p384", KeyType.P384, "ed25519", KeyType.ED25519);
        }
    }

    /** {@code demo --key-type}: the two keys the demo compares. */
    static final class DemoKeyTypeChoice extends Choice<KeyType> {
        DemoKeyTypeChoice() {
            super("--key-type", "rsa", KeyType.RSA, "ec", KeyType.EC);
        }
    }

    /** Which engines the demo runs. */
    enum DemoEngines {
        SOFTWARE, SIMULATED, BOTH
    }

    /** {@code demo --engine}. */
    static final class DemoEnginesChoice extends Choice<DemoEngines> {
        DemoEnginesChoice() {
            super("--engine", "software", DemoEngines.SOFTWARE, "simulated", DemoEngines.SIMULATED, "both",
                    DemoEngines.BOTH);
        }
    }

    /** {@code --provider}. */
    static final class ProviderChoice extends Choice<CryptoProviders.Choice> {
        ProviderChoice() {
            super("--provider", "accp", CryptoProviders.Choice.ACCP, "jdk", CryptoProviders.Choice.JDK);
        }
    }

    /** {@code --fd-mode}. */
    static final class FdModeChoice extends Choice<FdMode> {
        FdModeChoice() {
            super("--fd-mode", "shared", FdMode.SHARED_PER_LOOP, "per-ctx", FdMode.PER_CTX);
        }
    }
}
