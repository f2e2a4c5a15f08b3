#!/bin/bash
cd /tmp/bench/b2
for r in 1 2 3 4 5 6 7 8; do
  if [ $((r % 2)) -eq 1 ]; then order="base new2"; else order="new2 base"; fi
  for v in $order; do
    java -jar ../$v.jar SharedFdBatchBenchmark -p transport=EPOLL -p gapMicros=0 -p batch=64 -p idle=0 -p timeout=10s \
      -f 1 -wi 2 -w 2s -i 3 -r 2s -rf json -rff r$r-$v.json > r$r-$v.log 2>&1
  done
done
echo finished
