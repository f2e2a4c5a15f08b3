#!/bin/bash
# usage: perfrec.sh JAR MODE STORMS -> perf record (cpu-clock, kernel+user) of the server during STORMS storms after warm-up
JAR=$1; MODE=$2; STORMS=$3; OUT=${OUTDIR:-.}/p-$MODE; rm -rf $OUT; mkdir -p $OUT
java -XX:+UnlockDiagnosticVMOptions -XX:+PreserveFramePointer -cp $JAR io.asyncctx.bench.load.LoadServer --mode $MODE --engine software --workers 2 --threads 1 --inline-below-us 30 --cert ${CERT:-ec-cert.pem} --key ${KEY:-ec-key.pem} --port 0 < <(sleep 100000) > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 100); do grep -q listening $OUT/server.log && break; sleep 0.2; done
PORT=$(grep -oE '127.0.0.1:[0-9]+' $OUT/server.log | head -1 | cut -d: -f2)
URL=https://127.0.0.1:$PORT
for i in $(seq ${WARM:-20}); do h2load -c 1000 -n 1000 --h1 $URL/ > /dev/null 2>&1; done
snap() { for t in /proc/$SP/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(awk '{print $14, $15}' $t/stat)"; done | sort; }
snap > $OUT/t0.txt
perf record -e cpu-clock -F 2000 -g -p $SP -o $OUT/perf.data > /dev/null 2>&1 &
TP=$!; sleep 1
for i in $(seq $STORMS); do h2load -c 1000 -n 1000 --h1 $URL/ | grep -E 'succeeded' >> $OUT/h2load.txt; done
kill -INT $TP; wait $TP
snap > $OUT/t1.txt
join $OUT/t0.txt $OUT/t1.txt | awk -v n=$((STORMS*1000)) '{u=$6-$3; s=$7-$4; if (u+s>0) printf "%-8s %-18s user %6.1f sys %6.1f us/hs\n", $1, $2, u*10000/n, s*10000/n}' > $OUT/threads.txt
kill $SP; wait $SP 2>/dev/null
