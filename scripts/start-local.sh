#!/usr/bin/env bash
# Starts paytrackr locally: installs what is missing, builds, keeps a
# throwaway PostgreSQL cluster in .local/ (created on first run, reused
# after), applies migrations, seeds a few sample payments, starts the server
# and opens the TUI attached to it. Quitting the TUI stops everything.
#
# Environment: PAYTRACKR_PORT (default 8080), PAYTRACKR_ADMIN_PORT (9090),
# PAYTRACKR_PG_PORT (54329), NO_TUI=1 to keep the server in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${PAYTRACKR_PORT:-8080}
admin_port=${PAYTRACKR_ADMIN_PORT:-9090}
pg_port=${PAYTRACKR_PG_PORT:-54329}
state="$root/.local"
pgdata="$state/pgdata"
sockdir="$state/run"
pgbin=/usr/lib/postgresql/15/bin

scripts/install-deps.sh
scripts/build.sh build release

# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` system user, which needs to reach the project folder.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
    dir="$root"
    while [ "$dir" != "/" ]; do
        if ! runuser -u postgres -- test -x "$dir"; then
            echo "start-local: letting the postgres user traverse $dir (ACL u:postgres:x)"
            setfacl -m u:postgres:x "$dir"
        fi
        dir=$(dirname "$dir")
    done
fi
mkdir -p "$state" "$sockdir"
if [ "${#as_pg[@]}" -gt 0 ]; then
    chown postgres "$state" "$sockdir"
fi

if [ ! -f "$pgdata/PG_VERSION" ]; then
    echo "start-local: creating a PostgreSQL cluster in $pgdata"
    "${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log"
fi
if ! "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -w -l "$state/postgres.log" \
        -o "-p $pg_port -k $sockdir -c listen_addresses=127.0.0.1" start >/dev/null
fi
psql_cmd=(psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres)
if ! "${psql_cmd[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'paytrackr'" | grep -q 1; then
    "${psql_cmd[@]}" -d postgres -c "CREATE DATABASE paytrackr"
fi
export PAYTRACKR_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/paytrackr"
export PAYTRACKR_LISTEN="127.0.0.1:$port"
export PAYTRACKR_ADMIN_LISTEN="127.0.0.1:$admin_port"
export PAYTRACKR_AUTH=off
export PAYTRACKR_LOG_FORMAT=text

build/server/paytrackr-server migrate

# A few sample payments, once.
if [ "$("${psql_cmd[@]}" -d paytrackr -tAc "SELECT count(*) FROM payments")" = "0" ]; then
    echo "start-local: seeding sample payments"
    build/server/paytrackr-server serve >"$state/seed-server.log" 2>&1 &
    seed_pid=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    while IFS= read -r body; do
        curl -fs -X POST "http://127.0.0.1:$port/v1/payments" \
            -H 'Content-Type: application/json' -d "$body" >/dev/null
    done <<'JSON'
{"amount":125000,"currency":"EUR","payer":"ACME GmbH","payee":"Globex Ltd","reference":"INV-2026-0042","description":"November invoice","method":"bank_transfer"}
{"amount":4999,"currency":"USD","payer":"Jane Doe","payee":"Corner Café","method":"card","status":"settled"}
{"amount":150000,"currency":"JPY","payer":"山田商事","payee":"Tokyo Supplies","reference":"PO-7781","method":"bank_transfer"}
{"amount":12345,"currency":"KWD","payer":"Gulf Trading","payee":"Desert Logistics","method":"wallet","metadata":{"cost_center":"42"}}
{"amount":2500,"currency":"GBP","payer":"Initech","payee":"Chotchkie's","method":"cash","status":"settled"}
JSON
    kill -TERM "$seed_pid"
    wait "$seed_pid" || true
fi

build/server/paytrackr-server serve >"$state/server.log" 2>&1 &
server_pid=$!
cleanup() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
cat <<MSG
paytrackr is running:
  web page http://127.0.0.1:$port/   (open it in a browser)
  API      http://127.0.0.1:$port/v1/payments   (auth off: local use only)
  WebSocket ws://127.0.0.1:$port/v1/stream
  admin    http://127.0.0.1:$admin_port/metrics
  database $PAYTRACKR_DATABASE_URL
  logs     $state/server.log
MSG
if [ -x build/tui/paytrackr-tui ] && [ -z "${NO_TUI:-}" ] && [ -t 0 ]; then
    build/tui/paytrackr-tui --url "ws://127.0.0.1:$port"
else
    echo "Press Ctrl-C to stop."
    wait "$server_pid"
fi
