#!/bin/bash
# usage: curve.sh JAR STORMS mode -> per-storm CPU us/hs
JAR=$1; STORMS=$2; MODE=$3; shift 3
K=${KEY:?set KEY to a PEM stem: KEY-cert.pem and KEY-key.pem (for example the files H2loadCpuHarness writes)}
LOG=$(mktemp)
java -cp $JAR io.asyncctx.bench.load.LoadServer --mode $MODE --engine software --workers 2 --threads 1 --inline-below-us 30 --cert $K-cert.pem --key $K-key.pem --port 0 "$@" < <(sleep 100000) > $LOG 2>&1 &
SP=$!
for i in $(seq 100); do grep -q listening $LOG && break; sleep 0.2; done
PORT=$(grep -oE '127.0.0.1:[0-9]+' $LOG | head -1 | cut -d: -f2)
out=""
for i in $(seq $STORMS); do T0=$(awk '{print $14+$15}' /proc/$SP/stat); h2load -c 1000 -n 1000 --h1 https://127.0.0.1:$PORT/ >/dev/null 2>&1; T1=$(awk '{print $14+$15}' /proc/$SP/stat); out="$out $(( (T1-T0)*10 ))"; done
echo "$MODE:$out"
kill $SP; wait $SP 2>/dev/null; pkill -f "sleep 100000"  # the server's standard input
