"""Reads the raw output of the benches `benches/run.sh` runs, and prints what it found.

    figures.py parse BENCH LOG_DIR FIGS ROWS LABEL   one bench's output → figures and table rows
    figures.py table ROWS                            the headline table, as in BENCHMARKS.md
    figures.py compare A1.tsv,A2.tsv… B1.tsv,B2.tsv…  each figure's ratio B/A over the pairs

FIGS gets one line a figure (name, value, unit, which way is better) for --compare; ROWS one
line a row of the headline table (area, what, figure, set against, ratio).
"""

import json
import os
import re
import statistics
import sys


def num(v):
    return f"{v:,.3f}" if abs(v) < 1 else f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


class Out:
    def __init__(self, figs, rows):
        self.figs, self.rows = open(figs, "a"), open(rows, "a")

    def fig(self, name, value, unit, better):
        self.figs.write(f"{name}\t{value}\t{unit}\t{better}\n")

    def row(self, area, what, figure, against, ratio):
        self.rows.write(f"{area}\t{what}\t{figure}\t{against}\t{ratio}\n")


def population(log, out, n):
    # | AND of 3 | 0.035 ms | 211.0 ms | 6085× | 123 |
    for line in open(os.path.join(log, "population.txt")):
        m = re.match(r"\| ([^|]+?) \| ([\d.]+) ms \| ([\d.]+) ms \|", line)
        if not m:
            continue
        q, ours, theirs = m.group(1), float(m.group(2)), float(m.group(3))
        out.fig(f"population {n}: {q}, engine", ours, "ms", "lower")
        out.fig(f"population {n}: {q}, PostgreSQL", theirs, "ms", "higher")
        out.row(f"population, {n} persons", q, f"{num(ours)} ms", f"PostgreSQL {num(theirs)} ms",
                f"{theirs / ours:,.0f}× faster")


def analysis(log, out, n):
    path = os.path.join(log, "analysis.txt")
    row = json.loads([line for line in open(path) if line.startswith("{")][-1])
    finish = row["rust_finish_s"]
    out.fig(f"analysis {n}: Rust ingest", row["rust_ingest_s"], "s", "lower")
    out.fig(f"analysis {n}: Rust finish", finish, "s", "lower")
    what = f"every itemset to size 5 at 2 % ({row['itemsets']:,}), pairs ranked, closed clusters"
    for peer, label in (("pyfim_fpgrowth", "pyfim fpgrowth"), ("pyfim_eclat", "pyfim eclat"),
                        ("mlxtend_fpgrowth", "mlxtend fpgrowth")):
        if f"{peer}_s" in row:
            out.fig(f"analysis {n}: {label}", row[f"{peer}_s"], "s", "higher")
            out.row(f"analysis, {n} customers", what,
                    f"{num(finish)} s (+ ingest {num(row['rust_ingest_s'])} s)",
                    f"{label} {num(row[peer + '_s'])} s", f"{row[peer + '_s'] / finish:,.0f}× faster")


def job(log, out, n):
    wall = json.load(open(os.path.join(log, "job.txt")))["wall"]
    out.fig(f"job {n} over HTTP", round(wall, 3), "s", "lower")
    out.row("job end to end", f"{n} customers, POST → succeeded over HTTP, 5 stages, SQLite",
            f"{wall:.2f} s", "target 10 s", f"{wall / 10:.2f} of it")


def remote(log, out, n):
    text = open(os.path.join(log, "remote_job.txt")).read()
    m = re.search(r"^embedded provider.*?wall ([\d.]+) s", text, re.M)
    embedded = float(m.group(1))
    out.fig(f"job {n} in process, embedded provider", embedded, "s", "lower")
    out.row("job end to end", f"{n} customers in process, embedded provider", f"{embedded:.2f} s",
            "—", "—")
    for m in re.finditer(r"^concurrency +(\d+): wall ([\d.]+) s, (\d+) calls.*?ideal ([\d.]+) s",
                         text, re.M):
        c, wall, calls, ideal = m.group(1), float(m.group(2)), m.group(3), float(m.group(4))
        out.fig(f"job {n} over MCP, concurrency {c}", wall, "s", "lower")
        out.row("remote upstream", f"{n} customers over MCP at 100 ms a call, concurrency {c}",
                f"{wall:.2f} s", f"ideal {ideal:.2f} s ({calls} calls ÷ {c} × 100 ms)",
                f"{wall / ideal:.2f}× ideal")


def wrk(path):
    rps = p99 = None
    for line in open(path):
        f = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(f[1])
        if f[:1] == ["99%"]:
            v, scale = f[1], 1.0
            for unit, s in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                if v.endswith(unit):
                    v, scale = v[: -len(unit)], s
                    break
            p99 = float(v) * scale
    return rps, p99


def http(log, out, duration):
    (rps, p99), (bare, bare_p99) = wrk(os.path.join(log, "wrk-icp.txt")), wrk(os.path.join(log, "wrk-bare.txt"))
    out.fig("GET /v1/jobs/{id} req/s", rps, "req/s", "higher")
    out.fig("GET /v1/jobs/{id} p99", p99, "ms", "lower")
    out.fig("bare axum req/s", bare, "req/s", "higher")
    out.row("HTTP", f"GET /v1/jobs/{{id}} on Postgres, wrk -t2 -c64 -d{duration}",
            f"{rps:,.0f} req/s, p99 {p99:.1f} ms",
            f"bare axum {bare:,.0f} req/s, p99 {bare_p99:.1f} ms; target 5,000 req/s, p99 20 ms",
            f"{rps / bare:.3f} of bare")


def rank(log, out, n):
    name = None
    for line in open(os.path.join(log, "rank.txt")):
        if line.startswith("rank "):
            name = re.sub(r"^rank \([^)]*\)/", "", line.strip())
        m = re.search(r"time: +\[[\d.]+ \S+ ([\d.]+) (\S+)", line)
        if m and name:
            v = float(m.group(1)) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}[m.group(2)]
            out.fig(f"rank {n}: {name}", round(v * 1000, 1), "ms", "lower")
            out.row(f"ranked scoring, {n} persons", name, f"{v:.2f} s", "target 2 s", f"{v / 2:.2f} of it")
            name = None


def table(rows):
    print("| area | what | figure | set against | ratio |")
    print("|---|---|---:|---|---:|")
    for line in open(rows):
        print("| " + " | ".join(line.rstrip("\n").split("\t")) + " |")


def read(path):
    rows = []
    for line in open(path):
        k, v, unit, better = line.rstrip("\n").split("\t")
        rows.append((k, float(v), unit, better))
    return rows


def compare(a_paths, b_paths):
    a_runs, b_runs = [read(p) for p in a_paths], [read(p) for p in b_paths]
    print(f"| figure | A (median) | B (median) | B/A (median of {len(a_runs)} pairs) | B/A min–max | better |")
    print("|---|---:|---:|---:|---:|---|")
    loads = []
    for k, _, unit, better in a_runs[0]:
        a = [dict((r[0], r[1]) for r in run).get(k) for run in a_runs]
        b = [dict((r[0], r[1]) for r in run).get(k) for run in b_runs]
        if k.startswith("load"):
            loads += [v for v in a + b if v is not None]
            continue
        pairs = [y / x for x, y in zip(a, b) if x and y is not None]
        if not pairs:
            print(f"| {k} | {num(statistics.median(a))} {unit} | missing in B | | | {better} |")
            continue
        print(f"| {k} | {num(statistics.median(a))} {unit} | {num(statistics.median(b))} {unit} | "
              f"{statistics.median(pairs):.3f} | {min(pairs):.3f}–{max(pairs):.3f} | {better} |")
    if loads:
        print(f"\nload average (1 min) over the runs: {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores")


PARSERS = {"population": population, "analysis": analysis, "job": job, "remote": remote,
           "http": http, "rank": rank}

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "parse":
        bench, log, figs, rows, label = sys.argv[2:7]
        PARSERS[bench](log, Out(figs, rows), label)
    elif cmd == "table":
        table(sys.argv[2])
    elif cmd == "compare":
        compare(sys.argv[2].split(","), sys.argv[3].split(","))
    else:
        sys.exit(__doc__)
