"""Side-by-side benchmark: the Rust engine against mlxtend and Borgelt's FIM (pyfim) on the same
generated dataset, in one run.

    python peers/bench_peers.py --rust-bin /path/to/icp_bench [--customers 100000 1000000]
        [--min-support 0.02] [--max-len 5] [--mlxtend-max 100000] [--attributes 50]

For each size it generates the dataset with `icp_bench generate` (same seed every time), then
times:
- rust: `icp_bench run` — ingest (reading and interning the file) and finish (mining every
  frequent itemset to --max-len, ranking pairs, closed clusters), reported separately;
- pyfim fpgrowth / eclat: the mining call alone, on transactions already in memory;
- mlxtend fpgrowth: the mining call alone, on the one-hot DataFrame already built (skipped above
  --mlxtend-max customers: it is pure Python and slow).
It checks that every engine found the same number of frequent itemsets, then prints one JSON line
per size with the times and the ratios peer / rust (finish).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time


def read_transactions(path):
    with open(path, encoding="utf-8") as f:
        return [[t for t in line.rstrip("\n").split("\t") if t] for line in f]


def time_pyfim(transactions, min_count, max_len):
    import fim

    out = {}
    for name, miner in (("pyfim_fpgrowth", fim.fpgrowth), ("pyfim_eclat", fim.eclat)):
        started = time.perf_counter()
        found = miner(transactions, target="s", supp=-min_count, zmin=1, zmax=max_len, report="a")
        out[name] = (time.perf_counter() - started, len(found))
    return out


def time_mlxtend(transactions, min_support, max_len):
    import pandas as pd
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    encoder = TransactionEncoder()
    df = pd.DataFrame(encoder.fit(transactions).transform(transactions), columns=encoder.columns_)
    started = time.perf_counter()
    found = fpgrowth(df, min_support=min_support, max_len=max_len)
    return time.perf_counter() - started, len(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rust-bin", required=True)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--min-support", type=float, default=0.02)
    parser.add_argument("--max-len", type=int, default=5)
    parser.add_argument("--mlxtend-max", type=int, default=100_000)
    parser.add_argument("--attributes", type=int, default=50, help="attributes in the synthetic schema")
    args = parser.parse_args()

    failed = False
    with tempfile.TemporaryDirectory(prefix="icp-bench-") as tmp:
        for customers in args.customers:
            path = os.path.join(tmp, f"data-{customers}.tsv")
            subprocess.run(
                [args.rust_bin, "generate", str(customers), path, "42", "0", str(args.attributes)],
                check=True,
            )
            rust = json.loads(
                subprocess.run(
                    [args.rust_bin, "run", path, str(args.min_support), str(args.max_len)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            transactions = read_transactions(path)
            min_count = max(1, math.ceil(args.min_support * len(transactions)))
            row = {
                "customers": customers,
                "attributes": args.attributes,
                "min_support": args.min_support,
                "max_len": args.max_len,
                "itemsets": rust["itemsets"],
                "rust_ingest_s": rust["ingest_s"],
                "rust_finish_s": rust["finish_s"],
                "rust_peak_rss_mb": rust["peak_rss_mb"],
            }
            peers = time_pyfim(transactions, min_count, args.max_len)
            if customers <= args.mlxtend_max:
                peers["mlxtend_fpgrowth"] = time_mlxtend(transactions, args.min_support, args.max_len)
            for name, (seconds, found) in peers.items():
                row[f"{name}_s"] = round(seconds, 4)
                row[f"{name}_vs_rust"] = round(seconds / rust["finish_s"], 2)
                if found != rust["itemsets"]:
                    failed = True
                    row[f"{name}_itemsets_MISMATCH"] = found
            print(json.dumps(row), flush=True)
    if failed:
        sys.exit("itemset counts differ between engines")


if __name__ == "__main__":
    main()
