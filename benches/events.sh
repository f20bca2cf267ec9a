#!/usr/bin/env bash
# GET /v1/jobs/{id}/events on Postgres: how long a change takes from its write to a client of
# the stream (the event's `at` against the moment curl hands the line over, same clock), and
# how many database transactions one idle stream costs per second (pg_stat_database, against
# the same service with no stream open).
#   bash benches/events.sh   (Postgres at 127.0.0.1:5432; ICP_BIN=path/to/icp to skip the build;
#                              EVENTS_POLL_MS=250 is the service's default)
set -euo pipefail
cd "$(dirname "$0")/.."
DB=icp_bench_events
PG=postgres://postgres@127.0.0.1:5432
POLL=${EVENTS_POLL_MS:-250}
BIN=${ICP_BIN:-}
if [ -z "$BIN" ]; then cargo build --release -q --bin icp; BIN=target/release/icp; fi
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true' EXIT
TMP=$(mktemp -d)
"$BIN" sample-customers --count 5000 --population-size 100000 > "$TMP/customers.csv"

serve() { # $1 port, $2 workers
    DATABASE_URL="$PG/$DB" ICP_POPULATION_SIZE=100000 ICP_LISTEN=127.0.0.1:$1 RUST_LOG=warn \
        ICP_EVENTS_POLL_MS=$POLL "$BIN" serve --workers "$2" &
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.2; done
    echo "the service on $1 did not start" >&2; exit 1
}
post() { curl -sf -X POST "http://127.0.0.1:$1/v1/jobs" -H 'content-type: text/csv' \
    --data-binary @"$TMP/customers.csv" | jq -r .id; }
commits() { psql "$PG/postgres" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }

# Idle: a service without workers, so the job stays queued and its stream has nothing to send.
serve 8096 0
IDLE=$(post 8096)
sleep 2
a=$(commits); sleep 10; b=$(commits)
curl -sN "http://127.0.0.1:8096/v1/jobs/$IDLE/events" > /dev/null &
STREAM=$!
sleep 1
c=$(commits); sleep 10; d=$(commits)
kill $STREAM
python3 -c "print(f'idle stream: {(($d-$c)-($b-$a))/10:.1f} transactions/s more than no stream ({($b-$a)/10:.1f}/s without)')"

# Latency: a second process runs jobs; the client reads the stream of the first (a replica
# that does not run the job), as a dashboard would.
serve 8097 2
LIVE=$(post 8096)
curl -sN "http://127.0.0.1:8096/v1/jobs/$LIVE/events" | while IFS= read -r line; do
    case "$line" in data:*) printf '%s %s\n' "$(date +%s%3N)" "${line#data: }";; esac
done > "$TMP/received"
python3 - "$TMP/received" <<'PY'
import json, sys, datetime, statistics
lat = []
for line in open(sys.argv[1]):
    got, data = line.split(" ", 1)
    at = datetime.datetime.fromisoformat(json.loads(data)["at"].replace("Z", "+00:00"))
    lat.append(int(got) - at.timestamp() * 1000)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"write to client over {len(lat)} events: mean {statistics.mean(lat):.0f} ms, "
      f"p50 {q(0.5):.0f} ms, p95 {q(0.95):.0f} ms, max {lat[-1]:.0f} ms")
PY
