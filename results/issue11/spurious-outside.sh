#!/bin/bash
# A healthy example server counts no spurious wake-ups, seen from outside: for every transport and notification path,
# start the server, drive it with h2load (1,000 HTTP/1.1 connections and 500 HTTP/2 connections, each a new TLS 1.3 handshake), read /metrics with curl and
# sum the resumed jobs and the spurious wake-ups over all loops.
# usage: spurious-outside.sh [EXAMPLES_JAR]   (default examples/target/netty-async-ctx-examples.jar)
JAR=${1:-examples/target/netty-async-ctx-examples.jar}
sum() { awk -v m="$1" '$1 ~ "^"m"\\{" {s += $2} END {printf "%d", s}'; }
for cfg in "epoll fd shared" "epoll fd per-ctx" "epoll callback shared" "io_uring fd shared" "io_uring fd per-ctx" \
           "io_uring callback shared" "nio callback shared"; do
  set -- $cfg
  java -jar "$JAR" server --port 0 --mode offload --transport $1 --notify $2 --fd-mode $3 > /tmp/spurious-server.log 2>&1 &
  SP=$!
  for i in $(seq 150); do grep -q listening /tmp/spurious-server.log && break; sleep 0.2; done
  PORT=$(grep -oE '127.0.0.1:[0-9]+' /tmp/spurious-server.log | head -1 | cut -d: -f2)
  kill -0 $SP && [ -n "$PORT" ] || { echo "server did not start:"; cat /tmp/spurious-server.log; exit 1; }
  h1=$(h2load -c 1000 -n 1000 --h1 https://127.0.0.1:$PORT/ | grep -oE '[0-9]+ succeeded')
  h2=$(h2load -c 500 -n 5000 -m 10 https://127.0.0.1:$PORT/ | grep -oE '[0-9]+ succeeded')
  M=$(curl -sk https://127.0.0.1:$PORT/metrics)
  printf "%-9s %-8s %-7s h1 %s, h2 %s; jobs resumed %s, spurious wake-ups %s\n" $1 $2 $3 "$h1" "$h2" \
    "$(echo "$M" | sum asyncctx_jobs_resumed_total)" "$(echo "$M" | sum asyncctx_wakeups_spurious_total)"
  kill $SP; wait $SP 2>/dev/null
done
