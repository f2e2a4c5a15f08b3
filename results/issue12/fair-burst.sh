#!/bin/bash
# The fair loop under handshake bursts (issue 12's stretch), for a quiet machine: the commands behind the
# fair-*-final* files. Run from the repository root after `mvn -B -q -DskipTests package`. About 35 minutes in all.
set -euo pipefail
H="java -cp benchmarks/target/benchmarks.jar io.asyncctx.bench.load.LoadHarness"
OUT=${OUT:-results/issue12}
STEPS=${STEPS:-4}
uptime

# 1. Saturation: 256 closed-loop handshaking clients on one server loop, 20 ms simulated engine, 4 keep-alive
#    connections doing GET / every 10 ms; offload fd with and without the bound, 15 alternated rounds of 6 s.
#    The summary CSV has the established p99 and the handshakes/s against offload-fd, paired by round.
for KEY in rsa ec; do
  $H --engine simulated --latency-ms 20 --threads 1 --key-type $KEY \
     --modes offload-fd,offload-fd-fair --handshake-steps-per-turn "$STEPS" --baseline offload-fd \
     --concurrency 256 --established 4 --request-interval-ms 10 \
     --rounds 15 --duration 6 --warmup 2 --out "$OUT" --name fair-storm-$KEY-s$STEPS-final 2>&1 \
     | grep -v '^WARNING' > "$OUT"/fair-storm-$KEY-s$STEPS-final.txt
done

# 2. Open-loop bursts: 20 new full TLS 1.3 handshakes (one GET each) at once every second; established p99 against
#    blocking (the engine called on the loop), 7 alternated rounds of 20 s (goal: <= 0.05x blocking).
for KEY in rsa ec; do
  $H --engine simulated --latency-ms 20 --threads 1 --key-type $KEY \
     --modes blocking,offload-fd,offload-fd-fair --handshake-steps-per-turn "$STEPS" \
     --concurrency 0 --burst 20 --burst-interval-ms 1000 --established 4 --request-interval-ms 10 \
     --rounds 7 --duration 20 --warmup 3 --out "$OUT" --name fair-burst-$KEY-s$STEPS-final 2>&1 \
     | grep -v '^WARNING' > "$OUT"/fair-burst-$KEY-s$STEPS-final.txt
done
uptime
