package io.asyncctx.frameworks;

import java.util.Arrays;

/**
 * {@code java -jar netty-async-ctx-framework-examples.jar reactor|grpc|vertx|sni [port]}: starts that example.
 *
 * <p>Threading: the main thread, which the example then blocks until the server stops.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        String which = args.length > 0 ? args[0] : "";
        String[] rest = args.length > 0 ? Arrays.copyOfRange(args, 1, args.length) : args;
        switch (which) {
            case "reactor" -> ReactorTlsServer.main(rest);
            case "grpc" -> GrpcTlsServer.main(rest);
            case "sni" -> SniTlsServer.main(rest);
            case "vertx" -> VertxTlsServer.main(rest);
            default -> {
                System.err.println("usage: java -jar netty-async-ctx-framework-examples.jar reactor|grpc|vertx|sni [port]");
                System.exit(2);
            }
        }
    }
}
