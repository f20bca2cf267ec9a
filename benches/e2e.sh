#!/usr/bin/env bash
# A job of N customer emails (default 100,000) through all five stages on the embedded
# population of 1,000,000, end to end over HTTP: wall time from POST to `succeeded`, and the
# job's own per-stage view.   bash benches/e2e.sh [N]
#
# With --ranked-pairs K: K pairs of the same job without and with the ranked audiences
# (`?ranked=false|true`), interleaved on one server (the order inside a pair alternates), and
# the ratio with/without per pair and its median, then each kind's median seconds per stage.
#   bash benches/e2e.sh [N] --ranked-pairs K
# ICP_BIN=path runs that binary instead of building this tree (to measure an older build).
set -euo pipefail
cd "$(dirname "$0")/.."
N=100000
PAIRS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --ranked-pairs) PAIRS=$2; shift 2 ;;
        *) N=$1; shift ;;
    esac
done
WORK=$(mktemp -d)
if [ -z "${ICP_BIN:-}" ]; then
    cargo build --release --locked -q --bin icp
fi
BIN=${ICP_BIN:-${CARGO_TARGET_DIR:-target}/release/icp}
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" sample-customers --count "$N" --seed 1 -o "$WORK/customers.csv" 2>/dev/null
cut -d, -f1 "$WORK/customers.csv" > "$WORK/emails.csv"   # emails only
DATABASE_URL="sqlite://$WORK/icp.db" ICP_LISTEN=127.0.0.1:8097 RUST_LOG=warn "$BIN" serve &
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:8097/readyz >/dev/null && break; sleep 0.2; done

# Runs one job (query string $1); prints its wall time in seconds, leaves its id in $WORK/id.
run_job() {
    local start end id status
    start=$(date +%s.%N)
    id=$(curl -sf -X POST "http://127.0.0.1:8097/v1/jobs$1" -H 'content-type: text/csv' --data-binary @"$WORK/emails.csv" \
        | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
    while :; do
        status=$(curl -sf "http://127.0.0.1:8097/v1/jobs/$id" | python3 -c 'import json,sys;print(json.load(sys.stdin)["status"])')
        case "$status" in queued|running) sleep 0.05 ;; *) break ;; esac
    done
    end=$(date +%s.%N)
    [ "$status" = succeeded ] || { echo "job $id: $status" >&2; exit 1; }
    echo "$id" > "$WORK/id"
    python3 -c "print(f'{$end-$start:.3f}')"
}

# One job of a pair (`false` or `true`): prints its wall time, notes its id under its kind.
run_kind() {
    local secs
    secs=$(run_job "?ranked=$1")
    echo "$(cat "$WORK/id")" >> "$WORK/ids_$1"
    echo "$secs"
}

if [ "$PAIRS" -gt 0 ]; then
    run_job "?ranked=false" >/dev/null   # warm-up: the population's pages, the cluster cache
    : > "$WORK/pairs"; : > "$WORK/ids_false"; : > "$WORK/ids_true"
    for i in $(seq 1 "$PAIRS"); do
        if [ $((i % 2)) -eq 1 ]; then
            off=$(run_kind false); on=$(run_kind true)
        else
            on=$(run_kind true); off=$(run_kind false)
        fi
        echo "$off $on" >> "$WORK/pairs"
        python3 -c "print(f'pair $i: without {$off:.2f} s, with ranked {$on:.2f} s, ratio {$on/$off:.3f}')"
    done
    # Per stage, each kind's median seconds (from the jobs' own progress); the ranked result of
    # the last ranked job.
    python3 - "$WORK" <<'EOF_STAGES' || true
import json, statistics, sys, urllib.request
from datetime import datetime
work = sys.argv[1]
def get(path):
    with urllib.request.urlopen("http://127.0.0.1:8097" + path) as r:
        return json.load(r)
def at(s): return datetime.fromisoformat(s.rstrip("Z")[:26])
stages = ["resolve", "enrich", "analyze", "map", "find", "validate"]
for kind in ["false", "true"]:
    ids = open(f"{work}/ids_{kind}").read().split()
    per = {s: [] for s in stages}
    for i in ids:
        p = get(f"/v1/jobs/{i}")["progress"]
        for s in stages:
            if p[s].get("started_at") and p[s].get("finished_at"):
                per[s].append((at(p[s]["finished_at"]) - at(p[s]["started_at"])).total_seconds())
    print(("with ranked" if kind == "true" else "without   ") + ": median s per stage " +
          ", ".join(f"{s} {statistics.median(v):.3f}" for s, v in per.items() if v))
last = open(f"{work}/ids_true").read().split()[-1]
r = get(f"/v1/jobs/{last}/result").get("ranked")
if r:
    print("ranked:", r["model"], r["scope"], "eligible", r["eligible"], "weighted traits",
          r["weighted_traits"], "tiers", [(t["name"], t["size"]) for t in r["tiers"]])
EOF_STAGES
    python3 - "$WORK/pairs" "$N" <<'EOF'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
ratios = sorted(on / off for off, on in pairs)
print(f"{sys.argv[2]} customers, {len(pairs)} pairs: without {min(p[0] for p in pairs):.2f}–{max(p[0] for p in pairs):.2f} s, "
      f"with ranked {min(p[1] for p in pairs):.2f}–{max(p[1] for p in pairs):.2f} s, "
      f"ratio median {statistics.median(ratios):.3f} (range {ratios[0]:.3f}–{ratios[-1]:.3f})")
EOF
    exit 0
fi

secs=$(run_job "")
curl -sf "http://127.0.0.1:8097/v1/jobs/$(cat "$WORK/id")" | python3 -c '
import json,sys; j=json.load(sys.stdin)
print("status", j["status"], "resolution", j["resolution"])
print("progress", j["progress"])
from datetime import datetime
def at(s): return datetime.fromisoformat(s.rstrip("Z")[:26])
begun = at(j["progress"]["resolve"]["started_at"]) - at(j["created_at"])
print("resolve began %.3f s after the job was created" % begun.total_seconds())'
echo "$N customers, wall time POST→succeeded: $secs s"
