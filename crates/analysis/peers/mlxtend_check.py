"""Reference itemsets for the exactness check, computed by mlxtend.

Reads a dataset (one customer per line, tab-separated `attribute=value` traits; an empty line is
a customer without traits), mines it with mlxtend's fpgrowth and association_rules, and writes
JSON:

    {"customers": N,
     "itemsets": [{"items": [...], "support": s, "lift": supp(S) / prod supp(i)}, ...],
     "pair_rules": [{"items": [a, b], "lift": l}, ...]}

`lift` of an itemset is computed from fpgrowth's own supports; `pair_rules` holds the lift
association_rules reports for every one-to-one rule.

usage: mlxtend_check.py INPUT MIN_SUPPORT MAX_LEN OUTPUT
"""

import json
import sys

import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder


def read_transactions(path):
    with open(path, encoding="utf-8") as f:
        return [[t for t in line.rstrip("\n").split("\t") if t] for line in f]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    path, min_support, max_len, output = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    transactions = read_transactions(path)
    encoder = TransactionEncoder()
    onehot = encoder.fit(transactions).transform(transactions)
    df = pd.DataFrame(onehot, columns=encoder.columns_)
    frequent = fpgrowth(df, min_support=min_support, use_colnames=True, max_len=max_len)

    single = {
        next(iter(row.itemsets)): row.support
        for row in frequent.itertuples()
        if len(row.itemsets) == 1
    }
    itemsets = []
    for row in frequent.itertuples():
        expected = 1.0
        for item in row.itemsets:
            expected *= single[item]
        itemsets.append(
            {"items": sorted(row.itemsets), "support": float(row.support), "lift": float(row.support / expected)}
        )

    pair_rules = []
    if any(len(s) > 1 for s in frequent.itemsets):
        rules = association_rules(frequent, num_itemsets=len(df), metric="lift", min_threshold=0.0)
        for row in rules.itertuples():
            if len(row.antecedents) == 1 and len(row.consequents) == 1:
                pair_rules.append(
                    {"items": sorted(row.antecedents | row.consequents), "lift": float(row.lift)}
                )

    with open(output, "w", encoding="utf-8") as f:
        json.dump({"customers": len(transactions), "itemsets": itemsets, "pair_rules": pair_rules}, f)


if __name__ == "__main__":
    main()
