#!/usr/bin/env bash
# Issue 21 "done when": abusive clients beside normal h2load traffic against the example server, then SIGTERM.
# Usage: results/issue21/abuse.sh [SECONDS=600] [OUTDIR=results/issue21/run]
# Needs the built jar (mvn -B -q -DskipTests package), openssl, curl, h2load. Bounded: each abuser loops with a pause.
# Prints: failed handshakes by reason, server log lines, fds and RSS sampled every 10 s, h2load's results.
set -uo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-600}
OUT=${2:-results/issue21/run}
mkdir -p "$OUT"
JAR=examples/target/netty-async-ctx-examples.jar
PORT=${PORT:-18999}
java -Xmx256m -jar "$JAR" server --port "$PORT" --idle-timeout 5 --handshake-timeout 5 >"$OUT/server.log" 2>&1 &
SRV=$!
until grep -q "listening on" "$OUT/server.log"; do sleep 0.2; kill -0 $SRV || exit 1; done
URL=https://127.0.0.1:$PORT/
END=$((SECONDS + DUR))
pids=()
# normal traffic: h2 and HTTP/1.1, rate-limited so the abusers get CPU too
h2load -D "$DUR" -c 2 -m 4 "$URL" >"$OUT/h2load-h2.txt" 2>&1 & pids+=($!)
h2load -D "$DUR" -c 4 --h1 "$URL" >"$OUT/h2load-h1.txt" 2>&1 & pids+=($!)
# failed handshakes: old protocol, no shared cipher, plain HTTP
( while [ $SECONDS -lt $END ]; do
    echo | openssl s_client -connect 127.0.0.1:$PORT -tls1_1 -cipher DEFAULT@SECLEVEL=0 >/dev/null 2>&1
    echo | openssl s_client -connect 127.0.0.1:$PORT -tls1_2 -cipher AES128-SHA >/dev/null 2>&1
    curl -s --max-time 5 http://127.0.0.1:$PORT/ >/dev/null
  done ) & pids+=($!)
# stalls: half a ClientHello, then silence (closed by the handshake timeout); 20 at a time
( while [ $SECONDS -lt $END ]; do
    for i in $(seq 20); do (printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' | timeout 8 openssl s_client \
        -connect 127.0.0.1:$PORT -quiet >/dev/null 2>&1 </dev/null; exec 3<>/dev/tcp/127.0.0.1/$PORT; \
        printf '\x16\x03\x01\x02\x00\x01' >&3; sleep 7; exec 3>&-) & done; wait
  done ) & pids+=($!)
# idle: complete the handshake, send nothing (closed by the idle timeout); 20 at a time
( while [ $SECONDS -lt $END ]; do
    for i in $(seq 20); do (sleep 8 | openssl s_client -connect 127.0.0.1:$PORT -quiet >/dev/null 2>&1) & done; wait
  done ) & pids+=($!)
# floods: 2 MB of junk after a ClientHello-looking header, 5 at a time
( while [ $SECONDS -lt $END ]; do
    for i in $(seq 5); do (head -c 2000000 /dev/urandom | sed '1s/^/\x16\x03\x01/' \
        | timeout 5 curl -s --max-time 5 -T - telnet://127.0.0.1:$PORT >/dev/null 2>&1) & done; wait
  done ) & pids+=($!)
echo "t_s fds rss_kb open_conns" >"$OUT/samples.txt"
while [ $SECONDS -lt $END ]; do
  echo "$((DUR - END + SECONDS)) $(ls /proc/$SRV/fd | wc -l) $(awk '/VmRSS/{print $2}' /proc/$SRV/status) \
$(curl -sk --max-time 5 "$URL"metrics | awk '/^server_connections_open /{print $2}')" >>"$OUT/samples.txt"
  sleep 10
done
wait "${pids[@]}" 2>/dev/null
curl -sk "$URL"metrics | grep -E '^server_(handshakes_failed|requests)' >"$OUT/metrics.txt"
kill -TERM $SRV; wait $SRV; echo "server exit $?" >>"$OUT/metrics.txt"
failed=$(awk '/handshakes_failed/{s+=$2} END{print s}' "$OUT/metrics.txt")
lines=$(wc -l <"$OUT/server.log")
echo "failed handshakes: $failed, server log lines: $lines ($(grep -c 'handshake failed' "$OUT/server.log") about failures)"
echo "stack trace lines: $(grep -c $'^\tat ' "$OUT/server.log")"
grep -h "requests:" "$OUT"/h2load-*.txt
head -2 "$OUT/samples.txt"; tail -1 "$OUT/samples.txt"
