#!/usr/bin/env bash
# Handshakes/s of the example server with the key on SoftHSM2: local module vs p11-kit-client, 1/2/4 workers.
set -u
# Needs the token of the README recipe ("Serving TLS with a key in an HSM") and the packaged jars; run from the repo root.
J=${REPO:-$PWD}; HSM=${HSM:-$HOME/hsm}; export SOFTHSM2_CONF=$HSM/softhsm2.conf; mkdir -p /tmp/bench
ROUNDS=${ROUNDS:-5}; DUR=${DUR:-4}
SOCK=$HSM/bench-p11kit.sock; rm -f $SOCK
XDG_RUNTIME_DIR=$HSM p11-kit server -f -n $SOCK --provider /usr/lib/softhsm/libsofthsm2.so "pkcs11:token=web" > /tmp/bench/p11kit.log 2>&1 &
P11=$!; sleep 1
for r in $(seq 1 $ROUNDS); do
  for v in local-1 remote-1 local-2 remote-2 local-4 remote-4; do
    kind=${v%-*}; w=${v#*-}
    if [ $kind = local ]; then MOD=/usr/lib/softhsm/libsofthsm2.so; ENV=(); else MOD=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so; ENV=(P11_KIT_SERVER_ADDRESS=unix:path=$SOCK); fi
    env "${ENV[@]}" java -jar $J/examples/target/netty-async-ctx-examples.jar server --port 0 --threads 1 --workers $w \
      --cert $HSM/cert.pem --key "pkcs11:token=web;object=tls-key;type=private?module-path=$MOD&pin-source=file:$HSM/token.pin" > /tmp/bench/srv.out 2>&1 &
    SP=$!
    for i in $(seq 1 50); do grep -q listening /tmp/bench/srv.out && break; sleep 0.2; done
    PORT=$(grep -o '127.0.0.1:[0-9]*' /tmp/bench/srv.out | cut -d: -f2)
    java -cp $J/benchmarks/target/benchmarks.jar io.asyncctx.bench.load.LoadHarness --modes none --target 127.0.0.1:$PORT \
      --target-name $v --server-pid $SP --duration $DUR --warmup 1 --concurrency 16 --established 0 --out /tmp/bench/out --name r$r-$v > /tmp/bench/lh.out 2>&1
    HS=$(python3 -c "import csv,sys; rows=list(csv.DictReader(open('/tmp/bench/out/r$r-$v.csv'))); print(rows[-1].get('handshakes_per_s') or rows[-1])")
    echo "$r $v $HS" | tee -a /tmp/bench/results.txt
    kill $SP; wait $SP 2>/dev/null
  done
done
kill $P11; pkill -P $P11 2>/dev/null
