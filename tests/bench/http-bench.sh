#!/usr/bin/env bash
# HTTP throughput against PostgreSQL's own ceiling: wrk against the server,
# and pgbench running the same SQL with the same client count, on the same
# database, in the same run. The server runs its statements prepared, so
# the ceiling is pgbench -M prepared; pgbench -M extended (parsed and
# planned every time, as PQexecParams does) is shown beside it. Prints one
# table row per case with the medians over ROUNDS rounds and the ratios
# server/pgbench.
#
# The server runs with its default pool of 8 database connections (set
# BENCH_POOL to change it): on a small machine, more connections than
# cores times a few only add context switches (see BENCHMARKS.md).
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

"$bench_root/scripts/build.sh" "$bench_root/build-release" release
bench_pg_start
trap 'bench_server_stop 2>/dev/null; bench_pg_stop' EXIT
PAYTRACKR_DATABASE_URL=$DBURL "$bench_root/build-release/server/paytrackr-server" migrate 2>/dev/null

bench_preload "$rows"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_wrk() { # clients script path
    local c=$1 script=$2 path=$3
    cat "$here/$script" "$here/report.lua" >"$PGDIR/wrk.lua"
    BENCH_ROWS=$rows wrk -t2 -c"$c" -d"${secs}s" --latency -s "$PGDIR/wrk.lua" \
        "http://127.0.0.1:$PORT$path" | grep '^WRK'
}

run_pgbench() { # clients sqlfile mode
    pgbench -n -M "$3" -c "$1" -j2 -T "$secs" -f "$here/$2" -h 127.0.0.1 -p "$PGPORT" \
        -U postgres paytrackr 2>"$PGDIR/pgbench.err" >"$PGDIR/pgbench.out" || { cat "$PGDIR/pgbench.err" >&2; return 1; }
    awk '/^tps/ {print $3; exit}' "$PGDIR/pgbench.out"
}

printf '%-10s %7s %10s %8s %14s %7s %14s %7s\n' case clients "server/s" "p99 ms" \
    "prepared/s" ratio "extended/s" ratio
for spec in "create:16:create.lua:/:pgbench-create.sql" "create:64:create.lua:/:pgbench-create.sql" \
            "get:16:get.lua:/:pgbench-get.sql" "get:64:get.lua:/:pgbench-get.sql" \
            "list50:16::/v1/payments?limit=50:pgbench-list.sql" "list50:64::/v1/payments?limit=50:pgbench-list.sql"; do
    IFS=: read -r name clients script path sql <<<"$spec"
    [ -n "$script" ] || script=report.lua
    bench_server_start "$pool"
    srv=(); p99=(); pgb=(); pgx=()
    for _ in $(seq 1 "$rounds"); do
        line=$(run_wrk "$clients" "$script" "$path")
        srv+=("$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")")
        p99+=("$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")")
        pgb+=("$(run_pgbench "$clients" "$sql" prepared)")
        pgx+=("$(run_pgbench "$clients" "$sql" extended)")
    done
    bench_server_stop
    s=$(printf '%s\n' "${srv[@]}" | median)
    p=$(printf '%s\n' "${p99[@]}" | median)
    g=$(printf '%s\n' "${pgb[@]}" | median)
    x=$(printf '%s\n' "${pgx[@]}" | median)
    printf '%-10s %7s %10.0f %8.2f %14.0f %7.2f %14.0f %7.2f\n' "$name" "$clients" "$s" "$p" \
        "$g" "$(awk -v a="$s" -v b="$g" 'BEGIN {print (b > 0) ? a / b : 0}')" \
        "$x" "$(awk -v a="$s" -v b="$x" 'BEGIN {print (b > 0) ? a / b : 0}')"
done
