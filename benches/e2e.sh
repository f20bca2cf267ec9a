#!/usr/bin/env bash
# A job of N customer emails (default 100,000) through all five stages on the embedded
# population of 1,000,000, end to end over HTTP: wall time from POST to `succeeded`, and the
# job's own per-stage view.   bash benches/e2e.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
WORK=$(mktemp -d)
cargo build --release -q --bin icp
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
target/release/icp sample-customers --count "$N" --seed 1 -o "$WORK/customers.csv" 2>/dev/null
cut -d, -f1 "$WORK/customers.csv" > "$WORK/emails.csv"   # emails only
DATABASE_URL="sqlite://$WORK/icp.db" ICP_LISTEN=127.0.0.1:8097 RUST_LOG=warn target/release/icp serve &
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:8097/readyz >/dev/null && break; sleep 0.2; done
start=$(date +%s.%N)
ID=$(curl -sf -X POST http://127.0.0.1:8097/v1/jobs -H 'content-type: text/csv' --data-binary @"$WORK/emails.csv" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
while :; do
    STATUS=$(curl -sf "http://127.0.0.1:8097/v1/jobs/$ID" | python3 -c 'import json,sys;print(json.load(sys.stdin)["status"])')
    case "$STATUS" in queued|running) sleep 0.05 ;; *) break ;; esac
done
end=$(date +%s.%N)
curl -sf "http://127.0.0.1:8097/v1/jobs/$ID" | python3 -c '
import json,sys; j=json.load(sys.stdin)
print("status", j["status"], "resolution", j["resolution"])
print("progress", j["progress"])
from datetime import datetime
def at(s): return datetime.fromisoformat(s.rstrip("Z")[:26])
begun = at(j["progress"]["resolve"]["started_at"]) - at(j["created_at"])
print("resolve began %.3f s after the job was created" % begun.total_seconds())'
python3 -c "print(f'{$N} customers, wall time POST→succeeded: {$end-$start:.2f} s')"
