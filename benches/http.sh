#!/usr/bin/env bash
# GET /v1/jobs/{id} against Postgres at 64 concurrent connections, beside a bare axum handler
# (the ceiling) measured in the same run with the same load tool.
#   bash benches/http.sh            (needs wrk: apt-get install -y wrk; Postgres at 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
DURATION=${DURATION:-10s}
DB=icp_bench_http
PG=postgres://postgres@127.0.0.1:5432
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
cargo build --release -q --bin icp --example bare_axum
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true' EXIT

DATABASE_URL="$PG/$DB" ICP_POPULATION_SIZE=10000 ICP_LISTEN=127.0.0.1:8098 RUST_LOG=warn \
    target/release/icp serve --workers 1 &
target/release/examples/bare_axum 127.0.0.1:8099 &
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8098/readyz >/dev/null && break; sleep 0.2; done

ID=$(curl -sf -X POST http://127.0.0.1:8098/v1/jobs -H 'content-type: application/json' \
    -d '{"multi_identifiers":[{"id_type":"email","hash_type":"plaintext","values":["someone@example.com"]}]}' \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
sleep 2

run() { wrk -t2 -c64 -d"$DURATION" --latency "$1" | tee /dev/stderr; }
echo "== bare axum handler (ceiling)"
bare=$(run "http://127.0.0.1:8099/v1/jobs/$ID")
echo "== icp GET /v1/jobs/{id} on Postgres"
real=$(run "http://127.0.0.1:8098/v1/jobs/$ID")
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
p99() { echo "$1" | awk '$1=="99%" {print $2}'; }
echo
printf 'bare axum: %s req/s, p99 %s\n' "$(rps "$bare")" "$(p99 "$bare")"
printf 'icp (Postgres): %s req/s, p99 %s\n' "$(rps "$real")" "$(p99 "$real")"
python3 -c "print(f'icp / bare = {float(\"$(rps "$real")\")/float(\"$(rps "$bare")\"):.3f}')"
