#!/bin/bash
# usage: sys.sh JAR MODE STORMS  -> strace -c of the server during STORMS storms after 20 warm-up storms
JAR=$1; MODE=$2; STORMS=$3; OUT=${OUTDIR:-.}/$MODE; rm -rf $OUT; mkdir -p $OUT
java -cp $JAR io.asyncctx.bench.load.LoadServer --mode $MODE --engine software --workers 2 --threads 1 --inline-below-us 30 --cert ${CERT:-ec-cert.pem} --key ${KEY:-ec-key.pem} --port 0 < <(sleep 100000) > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 100); do grep -q listening $OUT/server.log && break; sleep 0.2; done
PORT=$(grep -oE '127.0.0.1:[0-9]+' $OUT/server.log | head -1 | cut -d: -f2)
URL=https://127.0.0.1:$PORT
for i in $(seq ${WARM:-20}); do h2load -c 1000 -n 1000 --h1 $URL/ > /dev/null 2>&1; done
if [ -n "$PERF" ]; then
  perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p $SP -o $OUT/perf.txt &
else
  strace -c -f -p $SP -o $OUT/strace.txt &
fi
TP=$!; sleep 1
for i in $(seq $STORMS); do h2load -c 1000 -n 1000 --h1 $URL/ | grep -E 'succeeded' >> $OUT/h2load.txt; done
kill -INT $TP; wait $TP
kill $SP; wait $SP 2>/dev/null
