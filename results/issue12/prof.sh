#!/bin/bash
# usage: prof.sh NAME JAR STORMS mode [extra server args]
NAME=$1; JAR=$2; STORMS=$3; MODE=$4; shift 4
OUT=${OUTDIR:-/tmp/prof}/$NAME; rm -rf $OUT; mkdir -p $OUT
LIB=${LIB:-/tmp/perf/ap/linux-x64/libasyncProfiler.so}  # unzip tools.profiler:async-profiler:3.0 to /tmp/perf/ap
K=${KEY:?set KEY to a PEM stem: KEY-cert.pem and KEY-key.pem (for example the files H2loadCpuHarness writes)}
java -cp $JAR io.asyncctx.bench.load.LoadServer --mode $MODE --engine software --workers 2 --threads 1 --inline-below-us 30 --cert $K-cert.pem --key $K-key.pem --port 0 "$@" < <(sleep 100000) > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 100); do grep -q listening $OUT/server.log && break; sleep 0.2; done
sleep 1
PORT=$(grep -oE '127.0.0.1:[0-9]+' $OUT/server.log | head -1 | cut -d: -f2)
URL=https://127.0.0.1:$PORT
for i in $(seq ${WARM:-25}); do h2load -c 1000 -n 1000 --h1 $URL/ > /dev/null 2>&1; done
snap() { for t in /proc/$SP/task/*; do echo "$(basename $t):$(cat $t/comm | tr ' ' _) $(awk '{print $14+$15}' $t/stat) $(grep -E '^(voluntary|nonvoluntary)_ctxt' $t/status | awk '{print $2}' | tr '\n' ' ')"; done | sort; }
snap > $OUT/t0.txt
[ -n "$PROFILE" ] && jcmd $SP JVMTI.agent_load $LIB "\"start,event=itimer,interval=1ms,threads\"" > /dev/null
T0=$(awk '{print $14+$15}' /proc/$SP/stat)
for i in $(seq $STORMS); do h2load -c 1000 -n 1000 --h1 $URL/ | grep -E 'succeeded' >> $OUT/h2load.txt; done
T1=$(awk '{print $14+$15}' /proc/$SP/stat)
[ -n "$PROFILE" ] && jcmd $SP JVMTI.agent_load $LIB "\"stop,file=$OUT/collapsed.txt,collapsed\"" > /dev/null
snap > $OUT/t1.txt
echo "$NAME cpu_us_per_hs=$(( (T1-T0)*10000/(STORMS*1000) ))" | tee $OUT/cpu.txt
join $OUT/t0.txt $OUT/t1.txt 2>/dev/null | awk -v n=$((STORMS*1000)) '{d=$5-$2; if (d>0) printf "%-28s cpu %6.1f us/hs  vcs %5.2f  nvcs %5.2f\n", $1, d*10000/n, ($6-$3)/n, ($7-$4)/n}' | tee $OUT/threads.txt
kill $SP; wait $SP 2>/dev/null; pkill -f "sleep 100000"  # the server's standard input
