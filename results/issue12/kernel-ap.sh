#!/bin/bash
# usage: ap.sh JAR MODE STORMS -> async-profiler collapsed stacks of the server during STORMS storms after warm-up
JAR=$1; MODE=$2; STORMS=$3; OUT=${OUTDIR:-.}/ap-$MODE; rm -rf $OUT; mkdir -p $OUT
LIB=${AP_LIB:?path to libasyncProfiler.so (unzip tools.profiler:async-profiler:3.0)}
java -cp $JAR io.asyncctx.bench.load.LoadServer --mode $MODE --engine software --workers 2 --threads 1 --inline-below-us 30 --cert ${CERT:-ec-cert.pem} --key ${KEY:-ec-key.pem} --port 0 < <(sleep 100000) > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 100); do grep -q listening $OUT/server.log && break; sleep 0.2; done
PORT=$(grep -oE '127.0.0.1:[0-9]+' $OUT/server.log | head -1 | cut -d: -f2)
URL=https://127.0.0.1:$PORT
for i in $(seq ${WARM:-20}); do h2load -c 1000 -n 1000 --h1 $URL/ > /dev/null 2>&1; done
jcmd $SP JVMTI.agent_load $LIB "\"start,event=${EVENT:-itimer},interval=${INTERVAL:-1ms},threads\"" > /dev/null
for i in $(seq $STORMS); do h2load -c 1000 -n 1000 --h1 $URL/ | grep -E 'succeeded' >> $OUT/h2load.txt; done
jcmd $SP JVMTI.agent_load $LIB "\"stop,file=$OUT/collapsed.txt,collapsed\"" > /dev/null
kill $SP; wait $SP 2>/dev/null
