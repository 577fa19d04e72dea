#!/usr/bin/env bash
# Where a request's CPU goes: runs one read case with wrk against the
# server, then pgbench -M prepared with the same SQL, and prints the CPU
# time per request of wrk, the server and PostgreSQL, and per transaction
# of pgbench and PostgreSQL. On a machine where all of them share the
# cores, these figures bound the throughput ratio http-bench.sh reports.
#
# usage: tests/bench/http-cpu.sh [get|list50] [CLIENTS] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
case_name=${1:-get}
clients=${2:-16}
secs=${3:-10}
case $case_name in
get) script=get.lua path=/ sql=pgbench-get.sql ;;
list50) script=report.lua path='/v1/payments?limit=50' sql=pgbench-list.sql ;;
*) echo "usage: $0 [get|list50] [CLIENTS] [SECONDS]" >&2; exit 2 ;;
esac

"$bench_root/scripts/build.sh" "$bench_root/build-release" release >/dev/null
bench_pg_start
trap 'bench_server_stop 2>/dev/null; bench_pg_stop' EXIT
PAYTRACKR_DATABASE_URL=$DBURL "$bench_root/build-release/server/paytrackr-server" migrate 2>/dev/null
bench_preload 100000
bench_server_start "${BENCH_POOL:-8}"

hz=$(getconf CLK_TCK)
# CPU ticks (user + system) of one process, or of every postgres process.
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
postgres_ticks() {
    local total=0 pid
    for pid in $(pgrep -u postgres -x postgres); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# Microseconds per operation, from CPU seconds and a count.
per_op() { awk -v t="$1" -v n="$2" 'BEGIN {printf "%.1f", (n > 0) ? t * 1e6 / n : 0}'; }

cat "$here/$script" "$here/report.lua" >"$PGDIR/wrk.lua"
s0=$(ticks_of "$SERVER_PID")
p0=$(postgres_ticks)
BENCH_ROWS=100000 /usr/bin/time -f 'CPU %U %S' -o "$PGDIR/wrk.time" \
    wrk -t2 -c"$clients" -d"${secs}s" --latency -s "$PGDIR/wrk.lua" \
    "http://127.0.0.1:$PORT$path" >"$PGDIR/wrk.out"
s1=$(ticks_of "$SERVER_PID")
p1=$(postgres_ticks)
rps=$(sed -nE 's/^WRK rps=([0-9.]+).*/\1/p' "$PGDIR/wrk.out")
requests=$(awk -v r="$rps" -v s="$secs" 'BEGIN {print r * s}')
wrk_cpu=$(awk '/^CPU/ {print $2 + $3}' "$PGDIR/wrk.time")
bench_server_stop

# pgbench's own backends have exited by the time they could be sampled,
# so PostgreSQL's share is the cores' time left over, assuming the run
# kept them busy (it does: every client always has a query in flight).
/usr/bin/time -f 'CPU %U %S' -o "$PGDIR/pgbench.time" \
    pgbench -n -M prepared -c "$clients" -j2 -T "$secs" -f "$here/$sql" -h 127.0.0.1 \
    -p "$PGPORT" -U postgres paytrackr >"$PGDIR/pgbench.out" 2>&1
tps=$(awk '/^tps/ {print $3; exit}' "$PGDIR/pgbench.out")
txs=$(awk -v r="$tps" -v s="$secs" 'BEGIN {print r * s}')
pgbench_cpu=$(awk '/^CPU/ {print $2 + $3}' "$PGDIR/pgbench.time")
cores=$(nproc)

printf 'case %s, %s clients, %s s, %s cores, pool %s\n' "$case_name" "$clients" "$secs" "$cores" \
    "${BENCH_POOL:-8}"
printf 'server:  %.0f req/s; CPU per request: wrk %s us, server %s us, postgres %s us\n' "$rps" \
    "$(per_op "$wrk_cpu" "$requests")" \
    "$(per_op "$(awk -v a="$s0" -v b="$s1" -v h="$hz" 'BEGIN {print (b - a) / h}')" "$requests")" \
    "$(per_op "$(awk -v a="$p0" -v b="$p1" -v h="$hz" 'BEGIN {print (b - a) / h}')" "$requests")"
printf 'pgbench: %.0f tx/s; CPU per transaction: pgbench %s us, postgres (the rest of the cores) %s us\n' \
    "$tps" "$(per_op "$pgbench_cpu" "$txs")" \
    "$(per_op "$(awk -v c="$cores" -v s="$secs" -v p="$pgbench_cpu" 'BEGIN {print c * s - p}')" "$txs")"
