package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.netty.OffloadConfig;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;

/**
 * Every closed choice of the server's and the demo's command lines is refused by picocli while it parses, before
 * any work (no key generated, no engine, no port): exit code 2, one line naming the flag and what to write, then the
 * --help pointer. The words (and the aliases the server always took) map to what they stand for.
 */
class CommandLineChoicesTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "server --mode fast|--mode fast: expected offload, inline or blocking",
        "server --transport kqueue|--transport kqueue: expected epoll, io_uring or nio",
        "server --notify poll|--notify poll: expected fd or callback",
        "server --engine qat|--engine qat: expected software, simulated or pkcs11",
        "server --key-type dsa|--key-type dsa: expected rsa, ec, p384 or ed25519",
        "server --provider bc|--provider bc: expected accp or jdk",
        "server --fd-mode many|--fd-mode many: expected shared or per-ctx",
        "demo --engine pkcs11|--engine pkcs11: expected software, simulated or both",
        "demo --key-type p384|--key-type p384: expected rsa or ec",
    })
    void shouldRefuseABadChoiceWhileParsingWithOneLine(String args, String expected) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args.split(" "));
        assertEquals(2, code, err.toString());
        List<String> lines = err.toString().lines().toList();
        assertEquals(2, lines.size(), err.toString());
        assertTrue(lines.get(0).endsWith(expected), lines.get(0));
        assertTrue(lines.get(1).startsWith("Run '") && lines.get(1).endsWith(" --help' for the flags."), lines.get(1));
        assertEquals("", out.toString(), "nothing ran");
    }

    @Test
    void shouldMapEveryWordAndAliasToItsValue() {
        ServerCommand s = new ServerCommand();
        new CommandLine(s).parseArgs("--mode", "Inline", "--transport", "io-uring", "--notify", "callback",
                "--engine", "pkcs11", "--key-type", "p256", "--provider", "jdk", "--fd-mode", "per_ctx");
        assertEquals(ExampleServer.Mode.INLINE, s.mode);
        assertEquals(ExampleServer.Transport.IO_URING, s.transport);
        assertEquals(OffloadConfig.Notify.CALLBACK, s.notify);
        assertEquals(Choices.EngineKind.PKCS11, s.engineOptions.engine);
        assertEquals(Choices.KeyType.EC, s.engineOptions.keyType);
        assertEquals(CryptoProviders.Choice.JDK, s.engineOptions.provider);
        assertEquals(FdMode.PER_CTX, s.engineOptions.fdMode);
        for (String[] alias : new String[][] {{"rsa2048", "RSA"}, {"ecdsa", "EC"}, {"p384", "P384"},
                {"ED25519", "ED25519"}}) {
            ServerCommand t = new ServerCommand();
            new CommandLine(t).parseArgs("--key-type", alias[0]);
            assertEquals(Choices.KeyType.valueOf(alias[1]), t.engineOptions.keyType, alias[0]);
        }
        DemoCommand d = new DemoCommand();
        new CommandLine(d).parseArgs("--engine", "simulated", "--key-type", "ec");
        assertEquals(Choices.DemoEngines.SIMULATED, d.engine);
        assertEquals(Choices.KeyType.EC, d.keyType);
    }

    @Test
    void shouldListTheWordsAsCompletionCandidates() {
        assertEquals(List.of("rsa", "ec", "p384", "ed25519"), iterate(new Choices.KeyTypeChoice()));
        assertEquals(List.of("epoll", "io_uring", "nio"), iterate(new Choices.TransportChoice()));
        assertEquals(List.of("shared", "per-ctx"), iterate(new Choices.FdModeChoice()));
    }

    private static List<String> iterate(Iterable<String> words) {
        List<String> out = new java.util.ArrayList<>();
        words.forEach(out::add);
        return out;
    }
}
