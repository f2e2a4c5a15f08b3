/**
 * The TLS load harness: {@link io.asyncctx.bench.load.LoadHarness} runs a handshake storm and established keep-alive
 * connections (the examples' {@code LoadClient}) against several servers side by side (the example server in each
 * mode, spawned as its own process or in-process, or any external HTTPS server such as nginx), measures the server
 * process's CPU time per handshake, and writes a CSV and a chart. {@link io.asyncctx.bench.load.H2loadCpuHarness}
 * measures server CPU per handshake under h2load storms, servers side by side and storms alternated over rounds
 * ({@link io.asyncctx.bench.load.ServerProcesses} starts the servers for both). {@link io.asyncctx.bench.load.PausedHandshakesProbe}
 * pauses many handshakes at once and measures the library's heap per paused connection.
 * {@link io.asyncctx.bench.load.HarnessOptions} holds what the command lines of these tools and of their servers
 * ({@link io.asyncctx.bench.load.LoadServer}, {@link io.asyncctx.bench.load.ReactorLoadServer}) share: enums, option
 * mixins and range converters, so that every option is checked before a tool does any work. May depend on the library,
 * the examples, HdrHistogram, JFreeChart and picocli; nothing depends on it.
 */
package io.asyncctx.bench.load;
