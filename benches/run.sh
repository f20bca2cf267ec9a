#!/usr/bin/env bash
# The headline benchmarks in one command, printed as the table in BENCHMARKS.md.
#
#   bash benches/run.sh                  the headline set (≈ 6–8 min on the 2-core machine, once built)
#   bash benches/run.sh --quick          a smoke run on smaller inputs (< 3 min once built)
#   bash benches/run.sh --compare A B [--quick] [--reps N]
#                                        builds commits A and B, runs the set A B, B A, A B … (N
#                                        pairs, default 4 quick / 2 full), prints each figure's ratio
#                                        B/A: the median over the pairs and their min–max.
#
# Headline set: the population engine against PostgreSQL (1M persons), the analysis engine
# against pyfim and mlxtend (100k customers), a 100k-customer job end to end over HTTP, the same
# job over MCP at 100 ms a call at concurrency 2 and 8 against its ideal, GET /v1/jobs/{id} under
# wrk against a bare axum handler, and ranked scoring of 10M persons against its 2 s target.
#
# Needs: cargo, python3 (with venv), Postgres at 127.0.0.1:5432 as user postgres (psql), wrk
# (installed with apt-get if missing). The Python peers go into a virtual environment under the
# target directory (target/bench-venv), from PyPI. Raw output of every bench is kept under
# target/bench-results/<time>/; its path is printed at the end.
set -eEuo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_INCREMENTAL=0

QUICK=0 COMPARE=() REPS=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --compare) [ $# -ge 3 ] || { echo "--compare needs two commits: --compare A B" >&2; exit 2; }
                   COMPARE=("$2" "$3"); shift 2 ;;
        --reps) REPS=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    PG_PERSONS=100000 AN_CUSTOMERS=10000 JOB_CUSTOMERS=10000 JOB_POPULATION=100000
    WRK_DURATION=3s RANK_PERSONS=1000000 RANK_ARGS=(--quick)
else
    PG_PERSONS=1000000 AN_CUSTOMERS=100000 JOB_CUSTOMERS=100000 JOB_POPULATION=1000000
    WRK_DURATION=10s RANK_PERSONS=10000000 RANK_ARGS=()
fi
PG=postgres://postgres@127.0.0.1:5432
HTTP_DB=icp_bench_run

# --- preconditions, checked before anything is built -----------------------------------------
command -v psql >/dev/null || { echo "psql not found: Postgres client and server at 127.0.0.1:5432 are needed" >&2; exit 1; }
psql "$PG/postgres" -qtAc 'SELECT 1' >/dev/null 2>&1 \
    || { echo "Postgres is not reachable at $PG/postgres (user postgres, no password)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    echo "wrk not found: installing Debian's wrk" >&2
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
        || { echo "wrk is missing and apt-get could not install it: apt-get install wrk, then run again" >&2; exit 1; }
fi

# --- build: the binaries a set needs, copied to a directory of their own ----------------------
# build DIR_OF_SOURCE OUT_DIR: one release build of every bench target the set runs.
build() {
    local src=$1 out=$2
    mkdir -p "$out"
    echo "building $(git -C "$src" rev-parse --short HEAD) in $src" >&2
    (cd "$src" && cargo build --release --locked --message-format=json-render-diagnostics \
        -p icp --bin icp --example bare_axum --bench remote_job \
        -p icp-population --example pg_compare --bench population \
        -p icp-analysis --example icp_bench) \
    | python3 -c '
import json, shutil, sys
out = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        name = m["target"]["name"]
        shutil.copy2(m["executable"], f"{out}/{name}")
' "$out"
    for b in icp bare_axum remote_job pg_compare population icp_bench; do
        [ -x "$out/$b" ] || { echo "build of $src did not produce $b" >&2; exit 1; }
    done
    cp "$src/crates/analysis/peers/bench_peers.py" "$out/"
}

# --- the Python peers, in a virtual environment of their own ----------------------------------
VENV=$CARGO_TARGET_DIR/bench-venv
REQS=$ROOT/crates/analysis/peers/requirements.txt
peers() {
    if ! cmp -s "$REQS" "$VENV/requirements.installed" 2>/dev/null; then
        echo "installing the Python peers into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
        cp "$REQS" "$VENV/requirements.installed"
    fi
}

# Servers started by a bench, stopped on any exit; a failed step says where its output is.
PIDS=()
stop() { [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }; PIDS=(); }
trap 'echo "failed at line $LINENO; raw output in ${LOG:-$CARGO_TARGET_DIR/bench-results}" >&2' ERR
trap 'stop; cleanup' EXIT
cleanup() { :; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The benches; each takes the directory of binaries, leaves its raw output in $LOG and hands it
# to figures.py, which appends figures to $FIGS and rows of the table to $ROWS.
parse() { python3 "$ROOT/benches/figures.py" parse "$1" "$LOG" "$FIGS" "$ROWS" "$2"; }
size() { if [ "$1" -ge 1000000 ]; then echo "$(($1 / 1000000))M"; else echo "$(($1 / 1000))k"; fi; }

bench_population() {
    "$1/pg_compare" "$PG_PERSONS" > "$LOG/population.txt" 2>&1
    parse population "$(size "$PG_PERSONS")"
}

bench_analysis() {
    "$VENV/bin/python" "$1/bench_peers.py" --rust-bin "$1/icp_bench" --customers "$AN_CUSTOMERS" \
        > "$LOG/analysis.txt" 2>&1
    parse analysis "$(size "$AN_CUSTOMERS")"
}

bench_job() {
    local bin=$1 port dir
    port=$(free_port) dir=$(mktemp -d)
    ICP_POPULATION_SIZE=$JOB_POPULATION "$bin/icp" sample-customers --count "$JOB_CUSTOMERS" --seed 1 \
        -o "$dir/customers.csv" 2>/dev/null
    cut -d, -f1 "$dir/customers.csv" > "$dir/emails.csv"
    DATABASE_URL="sqlite://$dir/icp.db" ICP_LISTEN=127.0.0.1:$port ICP_POPULATION_SIZE=$JOB_POPULATION \
        RUST_LOG=warn "$bin/icp" serve > "$LOG/job-serve.txt" 2>&1 &
    PIDS+=($!)
    python3 - "$port" "$dir/emails.csv" > "$LOG/job.txt" <<'PY'
import json, sys, time, urllib.request
port, path = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(600):
    try:
        urllib.request.urlopen(base + "/readyz")
        break
    except OSError:
        time.sleep(0.2)
body = open(path, "rb").read()
start = time.monotonic()
req = urllib.request.Request(base + "/v1/jobs", data=body, headers={"content-type": "text/csv"})
job = json.load(urllib.request.urlopen(req))
while job["status"] in ("queued", "running"):
    time.sleep(0.05)
    job = json.load(urllib.request.urlopen(f"{base}/v1/jobs/{job['id']}"))
wall = time.monotonic() - start
assert job["status"] == "succeeded", job["status"]
print(json.dumps({"wall": wall, "progress": job["progress"]}))
PY
    stop; rm -rf "$dir"
    parse job "$(size "$JOB_CUSTOMERS")"
}

bench_remote() {
    BENCH_CUSTOMERS=$JOB_CUSTOMERS BENCH_POPULATION=$JOB_POPULATION BENCH_CONCURRENCY=2,8 \
        "$1/remote_job" > "$LOG/remote_job.txt" 2>&1
    parse remote "$(size "$JOB_CUSTOMERS")"
}

bench_http() {
    local bin=$1 port bare_port id
    port=$(free_port) bare_port=$(free_port)
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $HTTP_DB WITH (FORCE)" -c "CREATE DATABASE $HTTP_DB" >/dev/null
    DATABASE_URL="$PG/$HTTP_DB" ICP_POPULATION_SIZE=10000 ICP_LISTEN=127.0.0.1:$port RUST_LOG=warn \
        "$bin/icp" serve --workers 1 > "$LOG/http-serve.txt" 2>&1 &
    PIDS+=($!)
    "$bin/bare_axum" "127.0.0.1:$bare_port" > /dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
    id=$(curl -sf -X POST "http://127.0.0.1:$port/v1/jobs" -H 'content-type: application/json' \
        -d '{"multi_identifiers":[{"id_type":"email","hash_type":"plaintext","values":["someone@example.com"]}]}' \
        | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
    sleep 2
    wrk -t2 -c64 -d"$WRK_DURATION" --latency "http://127.0.0.1:$bare_port/v1/jobs/$id" > "$LOG/wrk-bare.txt"
    wrk -t2 -c64 -d"$WRK_DURATION" --latency "http://127.0.0.1:$port/v1/jobs/$id" > "$LOG/wrk-icp.txt"
    stop
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $HTTP_DB WITH (FORCE)" >/dev/null
    parse http "$WRK_DURATION"
}

bench_rank() {
    ICP_BENCH_PERSONS=$RANK_PERSONS "$1/population" --bench --warm-up-time 1 "${RANK_ARGS[@]}" rank \
        > "$LOG/rank.txt" 2>&1
    parse rank "$(size "$RANK_PERSONS")"
}

# run_set BIN_DIR OUT_PREFIX: the whole set once; figures in OUT_PREFIX.tsv, rows of the table
# in OUT_PREFIX.rows, raw output in OUT_PREFIX-log/.
run_set() {
    local bin=$1 step t0
    FIGS=$2.tsv ROWS=$2.rows LOG=$2-log
    mkdir -p "$LOG"; : > "$FIGS"; : > "$ROWS"
    printf 'load at start\t%s\t\tlower\n' "$(cut -d' ' -f1 /proc/loadavg)" >> "$FIGS"
    for step in population analysis job remote http rank; do
        t0=$SECONDS
        "bench_$step" "$bin"
        echo "  $step: $((SECONDS - t0)) s" >&2
    done
    printf 'load at end\t%s\t\tlower\n' "$(cut -d' ' -f1 /proc/loadavg)" >> "$FIGS"
}

RESULTS=$CARGO_TARGET_DIR/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS"
header() {
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), mode $([ "$QUICK" = 1 ] && echo quick || echo full)"
}

if [ ${#COMPARE[@]} -eq 0 ]; then
    COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo '+changes')
    START=$SECONDS
    build "$ROOT" "$RESULTS/bin"
    echo "built in $((SECONDS - START)) s" >&2
    peers
    RUN_START=$SECONDS
    run_set "$RESULTS/bin" "$RESULTS/run"
    echo
    header
    echo "commit $COMMIT; benches ran $((SECONDS - RUN_START)) s (whole command $((SECONDS - START)) s)"
    echo
    python3 "$ROOT/benches/figures.py" table "$RESULTS/run.rows"
    echo
    echo "load average $(cut -f2 "$RESULTS/run.tsv" | head -1) at start, $(cut -f2 "$RESULTS/run.tsv" | tail -1) at end; raw output: $RESULTS/run-log"
    exit 0
fi

# --- compare two commits -------------------------------------------------------------------
[ -n "$REPS" ] || { [ "$QUICK" = 1 ] && REPS=4 || REPS=2; }
SHA_A=$(git rev-parse --verify "${COMPARE[0]}^{commit}") SHA_B=$(git rev-parse --verify "${COMPARE[1]}^{commit}")
# Fixed source slots under the target directory: cargo reuses the dependencies' artifacts and
# rebuilds only the workspace's crates when a slot moves to another commit.
SRC=$CARGO_TARGET_DIR/bench-src
cleanup() { for s in a b; do git worktree remove --force "$SRC/$s" 2>/dev/null || true; done; }
START=$SECONDS
for s in a b; do
    sha=$([ $s = a ] && echo "$SHA_A" || echo "$SHA_B")
    git worktree remove --force "$SRC/$s" 2>/dev/null || rm -rf "$SRC/$s"
    git worktree prune
    git worktree add -q --detach "$SRC/$s" "$sha"
    build "$SRC/$s" "$RESULTS/bin-$s"
done
echo "built both in $((SECONDS - START)) s" >&2
peers
RUN_START=$SECONDS
A_FIGS=() B_FIGS=()
for rep in $(seq 1 "$REPS"); do
    # A B, then B A, and so on: a load that drifts over the run weighs on both commits alike
    # instead of always on the one that runs second.
    order="a b"; [ $((rep % 2)) = 0 ] && order="b a"
    for s in $order; do
        echo "pair $rep of $REPS: ${s^^}" >&2
        run_set "$RESULTS/bin-$s" "$RESULTS/$s-$rep"
        [ $s = a ] && A_FIGS+=("$RESULTS/$s-$rep.tsv") || B_FIGS+=("$RESULTS/$s-$rep.tsv")
    done
done
echo
header
echo "A = ${COMPARE[0]} ($(git rev-parse --short "$SHA_A")), B = ${COMPARE[1]} ($(git rev-parse --short "$SHA_B")); runs interleaved A B, B A, A B …; benches ran $((SECONDS - RUN_START)) s (whole command $((SECONDS - START)) s)"
echo
python3 "$ROOT/benches/figures.py" compare "$(IFS=,; echo "${A_FIGS[*]}")" "$(IFS=,; echo "${B_FIGS[*]}")"
echo
echo "raw output: $RESULTS"
