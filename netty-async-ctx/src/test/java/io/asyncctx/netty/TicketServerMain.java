package io.asyncctx.netty;

import io.asyncctx.engine.SoftwareEngine;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A server process for the ticket tests: one site from a PEM certificate and key, ticket keys from a file, behind
 * Netty's {@code SniHandler}. Prints {@code PORT n}, then answers lines on stdin: {@code ops} (the site's offloaded
 * key operations), {@code reload} (re-reads the ticket key file; prints {@code RELOADED names} or {@code REFUSED
 * reason}), {@code quit}.
 *
 * <p>Threading: main thread only (the server runs on its own loops).
 */
public final class TicketServerMain {

    private TicketServerMain() {
    }

    public static void main(String[] args) throws Exception {
        Path cert = Path.of(args[0]);
        Path key = Path.of(args[1]);
        Path ticketFile = Path.of(args[2]);
        SoftwareEngine engine = SoftwareEngine.builder().pem(key, cert).workers(1).build();
        AsyncSslContext context = AsyncSslContextBuilder.forServer(engine, cert.toFile()).build();
        try (AsyncSniMapping mapping = AsyncSniMapping.builder().site("a", context, "a.example.org")
                .ticketKeys(TicketKeys.read(ticketFile)).build();
             SniTestServer server = new SniTestServer(TlsTestServer.Transport.EPOLL, 1, mapping)) {
            System.out.println("PORT " + server.port());
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                switch (line.trim()) {
                    case "ops" -> System.out.println("OPS " + mapping.metrics("a").operations());
                    case "reload" -> {
                        try {
                            TicketKeys keys = TicketKeys.read(ticketFile);
                            mapping.ticketKeys(keys);
                            System.out.println("RELOADED " + keys.names());
                        } catch (Exception e) {
                            System.out.println("REFUSED " + e.getMessage());
                        }
                    }
                    case "quit" -> {
                        return;
                    }
                    default -> System.out.println("UNKNOWN " + line);
                }
                System.out.flush();
            }
        }
    }
}
