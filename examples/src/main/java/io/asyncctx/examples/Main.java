package io.asyncctx.examples;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the examples jar: {@code java -jar netty-async-ctx-examples.jar server|demo [flags]}.
 *
 * <p>Threading: runs on the main thread; each command starts and stops its own threads.
 */
@Command(name = "netty-async-ctx-examples", mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "TLS handshakes offloaded from Netty's event loops: an example server and a demo.",
        subcommands = {ServerCommand.class, DemoCommand.class})
public final class Main implements Runnable {

    /** Runs the command line; exits with the command's code. */
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The command line with its error handling: a {@link BadFlagException} or a flag picocli refuses prints its message
     * and a pointer to --help, exit code 2.
     */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((e, cmd, parseResult) -> {
            if (e instanceof BadFlagException) {
                cmd.getErr().println(e.getMessage());
                cmd.getErr().println("Run '" + cmd.getCommandSpec().qualifiedName() + " --help' for the flags.");
                return 2;
            }
            throw e;
        });
        // A flag picocli refuses (an unknown option, a value no converter takes) gets the same two lines, not the
        // whole usage: the converters' messages already say what to write.
        cl.setParameterExceptionHandler((e, args) -> {
            CommandLine cmd = e.getCommandLine();
            cmd.getErr().println(e.getMessage());
            cmd.getErr().println("Run '" + cmd.getCommandSpec().qualifiedName() + " --help' for the flags.");
            return 2;
        });
        return cl;
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
