#!/usr/bin/env bash
# Shared by the benchmark scripts: a throwaway PostgreSQL cluster and a
# release build of the server, both on free loopback ports. Source it.
# shellcheck disable=SC2034  # variables are used by the sourcing scripts

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pgbin=/usr/lib/postgresql/15/bin

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# bench_pg_start: creates and starts a cluster; sets PGPORT, PGDIR, DBURL.
bench_pg_start() {
    PGDIR=$(mktemp -d /tmp/paytrackr-bench-pg.XXXXXX)
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$PGDIR"; fi
    PGPORT=$(free_port)
    as_postgres "$pgbin/initdb" -D "$PGDIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # Durable settings (fsync on), a little more memory than the default.
    as_postgres "$pgbin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -o \
        "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=512MB" \
        start >/dev/null
    psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE paytrackr"
    DBURL="postgresql://postgres@127.0.0.1:$PGPORT/paytrackr"
}

bench_pg_stop() {
    as_postgres "$pgbin/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
}

bench_psql() {
    psql -X -q -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d paytrackr "$@"
}

# bench_server_start POOL: starts the release server; sets PORT, ADMIN, SERVER_PID.
# With BENCH_AUTH=on it runs as deployed: bearer tokens required (BENCH_TOKEN,
# an operator), one log line per request (to $PGDIR/server.log), and the
# per-token rate limit off so that it does not cap the load generator.
BENCH_TOKEN=bench-token-0123456789abcdef
bench_server_start() {
    PORT=$(free_port)
    ADMIN=$(free_port)
    while [ "$ADMIN" = "$PORT" ]; do ADMIN=$(free_port); done
    local auth=(PAYTRACKR_AUTH=off)
    if [ "${BENCH_AUTH:-off}" = on ]; then
        auth=(PAYTRACKR_AUTH=required PAYTRACKR_RATE_LIMIT_RPS=0
              "PAYTRACKR_TOKENS=operator:$(printf '%s' "$BENCH_TOKEN" | sha256sum | cut -d' ' -f1)")
    fi
    env "${auth[@]}" PAYTRACKR_LISTEN="127.0.0.1:$PORT" PAYTRACKR_ADMIN_LISTEN="127.0.0.1:$ADMIN" \
        PAYTRACKR_DATABASE_URL="$DBURL" PAYTRACKR_DB_POOL_SIZE="$1" \
        PAYTRACKR_DB_QUEUE_SIZE=4096 PAYTRACKR_LOG_FORMAT=json \
        "${BENCH_BUILD:-$bench_root/build-release}/server/paytrackr-server" >/dev/null 2>"$PGDIR/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    echo "server did not become ready" >&2
    return 1
}

# bench_peer_start POOL: starts the Node.js peer (tests/bench/peer) with
# the same token, logging one line per request; sets PEER_PORT, PEER_PID.
bench_peer_start() {
    PEER_PORT=$(free_port)
    PEER_PORT=$PEER_PORT PEER_DATABASE_URL=$DBURL PEER_POOL=$1 \
        PEER_TOKENS="operator:$(printf '%s' "$BENCH_TOKEN" | sha256sum | cut -d' ' -f1)" \
        node "$bench_root/tests/bench/peer/server.js" >/dev/null 2>"$PGDIR/peer.log" &
    PEER_PID=$!
    for _ in $(seq 1 200); do
        if curl -s -o /dev/null "http://127.0.0.1:$PEER_PORT/"; then
            return 0
        fi
        sleep 0.05
    done
    echo "peer did not become ready" >&2
    return 1
}

bench_peer_stop() {
    kill -TERM "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
}

# bench_tools: what the load generators need, installed like everything
# else the project needs (never by the test command).
bench_tools() {
    if ! command -v wrk >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
    if [ ! -d "$bench_root/tests/bench/peer/node_modules" ]; then
        (cd "$bench_root/tests/bench/peer" && npm ci --no-audit --no-fund >/dev/null)
    fi
}

bench_server_stop() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# bench_preload ROWS: payments with predictable ids (…-000000000001 up),
# one second apart, for the read cases; then VACUUM ANALYZE.
bench_preload() {
    bench_psql -c "INSERT INTO payments (id, amount, currency, payer, payee, reference, method, status, created_at, updated_at)
      SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, i, 'EUR', 'payer ' || i, 'payee', 'R-' || i,
             'card', 'pending', now() - i * interval '1 second', now() - i * interval '1 second'
      FROM generate_series(1, $1) i" >/dev/null
    bench_psql -c "VACUUM ANALYZE" >/dev/null
}
