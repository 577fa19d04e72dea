#!/usr/bin/env bash
# HTTP throughput side by side, in one run, on one database: paytrackr as
# deployed (bearer tokens, one log line per request, rate limit off), the
# Node.js server a user would write instead (tests/bench/peer: http + pg +
# ws, pool of 8), and pgbench running the same SQL with the same client
# count (-M prepared, the ceiling, and -M extended beside it). Prints one
# row per case with the medians over ROUNDS rounds and the ratios
# server/peer and server/pgbench. The create-idem case sends an
# Idempotency-Key with every create (the peer has none: its column repeats
# the plain create's figure for reference).
#
# The server runs with its default pool of 8 database connections (set
# BENCH_POOL to change it), and so does the peer.
#
# BENCH_CASES (an extended regex, e.g. '^create') keeps only the matching
# cases; BENCH_BUILD names another release build directory to measure
# (for before/after figures of one change).
#
# usage: tests/bench/http-bench.sh [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
secs=${1:-10}
rounds=${2:-3}
rows=100000
pool=${BENCH_POOL:-8}
export BENCH_AUTH=on

bench_tools
"$bench_root/scripts/build.sh" "$bench_root/build-release" release
bench_pg_start
trap 'bench_server_stop 2>/dev/null; bench_peer_stop 2>/dev/null; bench_pg_stop' EXIT
PAYTRACKR_DATABASE_URL=$DBURL "$bench_root/build-release/server/paytrackr-server" migrate 2>/dev/null

bench_preload "$rows"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print (b > 0) ? a / b : 0}'; }

run_wrk() { # port clients script path [idempotency]
    local port=$1 c=$2 script=$3 path=$4
    cat "$here/auth.lua" "$here/$script" "$here/report.lua" >"$PGDIR/wrk.lua"
    BENCH_TOKEN=$BENCH_TOKEN BENCH_IDEMPOTENCY=${5:-0} BENCH_ROWS=$rows \
        wrk -t2 -c"$c" -d"${secs}s" --latency -s "$PGDIR/wrk.lua" \
        "http://127.0.0.1:$port$path" | grep '^WRK'
}

run_pgbench() { # clients sqlfile mode
    pgbench -n -M "$3" -c "$1" -j2 -T "$secs" -f "$here/$2" -h 127.0.0.1 -p "$PGPORT" \
        -U postgres paytrackr 2>"$PGDIR/pgbench.err" >"$PGDIR/pgbench.out" || { cat "$PGDIR/pgbench.err" >&2; return 1; }
    awk '/^tps/ {print $3; exit}' "$PGDIR/pgbench.out"
}

rps() { sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$1"; }
# Answers other than 2xx and socket errors: a figure made of refusals is
# no figure, so every row shows them (server and peer, all rounds).
errs() { sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$1"; }

printf '%-12s %7s %10s %8s %9s %7s %12s %7s %12s %7s %7s\n' case clients "server/s" "p99 ms" \
    "peer/s" "x peer" "prepared/s" ratio "extended/s" ratio errors
for spec in "create:16:create.lua:/:pgbench-create.sql:0" "create:64:create.lua:/:pgbench-create.sql:0" \
            "create-idem:16:create.lua:/:pgbench-create.sql:1" "create-idem:64:create.lua:/:pgbench-create.sql:1" \
            "get:16:get.lua:/:pgbench-get.sql:0" "get:64:get.lua:/:pgbench-get.sql:0" \
            "list50:16::/v1/payments?limit=50:pgbench-list.sql:0" "list50:64::/v1/payments?limit=50:pgbench-list.sql:0"; do
    IFS=: read -r name clients script path sql idem <<<"$spec"
    [[ $name =~ ${BENCH_CASES:-.} ]] || continue
    [ -n "$script" ] || script=report.lua
    srv=(); p99=(); peer=(); pgb=(); pgx=(); errors=0
    for _ in $(seq 1 "$rounds"); do
        bench_server_start "$pool"
        line=$(run_wrk "$PORT" "$clients" "$script" "$path" "$idem")
        bench_server_stop
        srv+=("$(rps "$line")")
        errors=$((errors + $(errs "$line")))
        p99+=("$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")")
        bench_peer_start "$pool"
        line=$(run_wrk "$PEER_PORT" "$clients" "$script" "$path" 0)
        peer+=("$(rps "$line")")
        errors=$((errors + $(errs "$line")))
        bench_peer_stop
        pgb+=("$(run_pgbench "$clients" "$sql" prepared)")
        pgx+=("$(run_pgbench "$clients" "$sql" extended)")
    done
    s=$(printf '%s\n' "${srv[@]}" | median)
    p=$(printf '%s\n' "${p99[@]}" | median)
    n=$(printf '%s\n' "${peer[@]}" | median)
    g=$(printf '%s\n' "${pgb[@]}" | median)
    x=$(printf '%s\n' "${pgx[@]}" | median)
    printf '%-12s %7s %10.0f %8.2f %9.0f %7.2f %12.0f %7.2f %12.0f %7.2f %7d\n' "$name" "$clients" "$s" "$p" \
        "$n" "$(ratio "$s" "$n")" "$g" "$(ratio "$s" "$g")" "$x" "$(ratio "$s" "$x")" "$errors"
done
