#!/bin/bash
# The fair loop under handshake bursts (issue 12's stretch), for a quiet machine.
# Run from the repository root after `mvn -B -q -DskipTests package`. About 10 minutes in all.
set -euo pipefail
H="java -cp benchmarks/target/benchmarks.jar io.asyncctx.bench.load.LoadHarness"
OUT=${OUT:-results/issue12}
STEPS=${STEPS:-2}
uptime

# 1. Established p99 during open-loop bursts: 20 new full TLS 1.3 handshakes (one GET each) at once every second on
#    one server loop, 20 ms simulated engine; 4 keep-alive connections doing GET / every 10 ms measure round trips
#    (corrected for coordinated omission). Servers side by side, order rotating over 7 rounds; the summary CSV has
#    the medians and each mode's p99 against blocking paired by round (goal: offload-fd-fair <= 0.05x).
#    3 servers x 7 rounds x (3 s warm-up + 20 s) = about 8 minutes.
$H --engine simulated --latency-ms 20 --threads 1 --key-type rsa \
   --modes blocking,offload-fd,offload-fd-fair --handshake-steps-per-turn "$STEPS" \
   --concurrency 0 --burst 20 --burst-interval-ms 1000 --established 4 --request-interval-ms 10 \
   --rounds 7 --duration 20 --warmup 3 --out "$OUT" --name fair-burst-rsa-s"$STEPS" 2>&1 | grep -v '^WARNING' \
   | tee "$OUT"/fair-burst-rsa-s"$STEPS".txt

# 2. Handshakes/s at saturation with and without the bound (closed-loop storm of 256 clients, same engine):
#    "without costing handshakes/s". 2 servers x 7 rounds x (2 s + 6 s) = about 2 minutes.
$H --engine simulated --latency-ms 20 --threads 1 --key-type rsa \
   --modes offload-fd,offload-fd-fair --handshake-steps-per-turn "$STEPS" --baseline offload-fd \
   --concurrency 256 --established 4 --request-interval-ms 10 \
   --rounds 7 --duration 6 --warmup 2 --out "$OUT" --name fair-storm-rsa-s"$STEPS" 2>&1 | grep -v '^WARNING' \
   | tee "$OUT"/fair-storm-rsa-s"$STEPS".txt
uptime
