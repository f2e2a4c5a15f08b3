"""Per-round paired ratios of the H2loadCpuHarness rounds CSV: offloaded / stock, plain example server and Reactor."""
import csv
import statistics as st
import sys
from collections import defaultdict

PAIRS = [("offload-fd", "inline", "reactor-offload", "reactor-stock"),
         ("offload-fd-inline", "inline", "reactor-offload-inline", "reactor-stock")]

rows = list(csv.DictReader(open(sys.argv[1])))
by_round = defaultdict(dict)
for r in rows:
    by_round[(r["key"], int(r["round"]))][r["server"]] = float(r["cpu_us_per_handshake"])
for key in sorted({k for k, _ in by_round}):
    for plain_off, plain_stock, fw_off, fw_stock in PAIRS:
        rounds = [v for (k, _), v in by_round.items() if k == key and fw_off in v and plain_off in v]
        if not rounds:
            continue
        plain = [v[plain_off] / v[plain_stock] for v in rounds]
        fw = [v[fw_off] / v[fw_stock] for v in rounds]
        both = [f / p for f, p in zip(fw, plain)]
        print(f"{key} {plain_off}: plain {st.median(plain):.3f} [{min(plain):.2f}-{max(plain):.2f}], "
              f"reactor {st.median(fw):.3f} [{min(fw):.2f}-{max(fw):.2f}], reactor/plain per round "
              f"{st.median(both):.3f} [{min(both):.2f}-{max(both):.2f}], {len(rounds)} rounds")
