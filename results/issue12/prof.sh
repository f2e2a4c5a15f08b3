#!/bin/bash
# usage: prof.sh NAME STORMS server-args...
NAME=$1; STORMS=$2; shift 2
OUT=/tmp/perf/$NAME; mkdir -p $OUT
LIB=/tmp/perf/ap/linux-x64/libasyncProfiler.so
java -Xms512m -Xmx512m -jar /work/wt/perf/examples/target/netty-async-ctx-examples.jar server --port 0 --threads 1 "$@" > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 100); do grep -q 'listening on' $OUT/server.log && break; sleep 0.2; done
URL=$(grep -o 'https://[^ ]*' $OUT/server.log | head -1)
for i in $(seq ${WARM:-3}); do h2load -c 1000 -n 1000 --h1 $URL/ > /dev/null 2>&1; done
jcmd $SP JVMTI.agent_load $LIB "\"start,event=itimer,interval=1ms,threads\"" > /dev/null
T0=$(awk '{print $14+$15}' /proc/$SP/stat)
for i in $(seq $STORMS); do h2load -c 1000 -n 1000 --h1 $URL/ | grep -E 'succeeded|finished in' >> $OUT/h2load.txt; done
T1=$(awk '{print $14+$15}' /proc/$SP/stat)
jcmd $SP JVMTI.agent_load $LIB "\"stop,file=$OUT/collapsed.txt,collapsed\"" > /dev/null
echo "$NAME cpu_us_per_hs=$(( (T1-T0)*10000/(STORMS*1000) ))" | tee $OUT/cpu.txt
kill $SP; wait $SP 2>/dev/null
