package io.asyncctx.examples;

import io.netty.handler.ssl.OpenSsl;
import io.netty.util.Version;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/**
 * {@code -V}/{@code --version}: this project's version (from the build) and the Netty, TLS library and Java versions
 * found at run time.
 *
 * <p>Threading: called once by picocli on the main thread.
 */
final class VersionProvider implements IVersionProvider {

    @Override
    public String[] getVersion() throws IOException {
        Properties p = new Properties();
        try (InputStream in = VersionProvider.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                p.load(in);
            }
        }
        Version netty = Version.identify().get("netty-handler");
        return new String[] {
            "netty-async-ctx " + p.getProperty("version", "(unknown version)"),
            "Netty " + (netty == null ? "(unknown)" : netty.artifactVersion()) + ", TLS "
                    + (OpenSsl.isAvailable() ? OpenSsl.versionString() : "unavailable: " + OpenSsl.unavailabilityCause()),
            "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"
        };
    }
}
