"""ISLP's Caravan data set (5,822 Dutch households, 85 socio-demographic and product-ownership
attributes, whether they bought caravan insurance) as a population CSV the embedded provider
imports, and the label kept apart.

    pip install --no-deps ISLP   # the data ships in the package; its model dependencies are not needed
    python3 crates/analysis/examples/quality/caravan.py OUT_DIR

writes OUT_DIR/population.csv (an `email` column, made up, and one trait column per attribute,
values as the data codes them) and OUT_DIR/labels.csv (`row,label`, 1 for a buyer). The label is
not in the population: the `quality` example takes half the buyers as customers and measures how
each audience holds the other half.
"""

import csv
import importlib.util
import os
import sys


def caravan_path():
    spec = importlib.util.find_spec("ISLP")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("ISLP is not installed: pip install --no-deps ISLP")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "Caravan.csv")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with open(caravan_path(), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    label = header.index("Purchase")
    traits = [i for i in range(len(header)) if i != label]
    with open(os.path.join(out, "population.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["email"] + [header[i].lower() for i in traits])
        for n, row in enumerate(body):
            w.writerow([f"household{n}@caravan.example"] + [row[i] for i in traits])
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "label"])
        for n, row in enumerate(body):
            w.writerow([n, 1 if row[label] == "Yes" else 0])
    buyers = sum(1 for row in body if row[label] == "Yes")
    print(f"{len(body)} households, {buyers} buyers, {len(traits)} attributes -> {out}")


if __name__ == "__main__":
    main()
