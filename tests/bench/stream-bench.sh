#!/usr/bin/env bash
# WebSocket stream benchmark (release build, fsync on):
#   latency   commit-to-receipt latency at RATE events/s with SUBS subscribers
#   saturate  raise the rate until p99 passes 50 ms (SUBS subscribers)
#   idle      server memory per idle subscriber with IDLE_SUBS connected
# Writers commit straight into PostgreSQL, shaped like the server's own
# writes (payment, then event + NOTIFY); see stream-bench.c.
#
# usage: tests/bench/stream-bench.sh [latency|saturate|idle|all]
#   env: SUBS (1000) RATE (1000) SECONDS_PER_RUN (20) WARMUP (3) IDLE_SUBS (10000)
#        WRITERS (16: concurrent writer connections; commits share WAL flushes)
#        SYNC_COMMIT (on; "off" measures the stream without waiting on the disk)
#        RATES ("2000 3000 4000 6000 8000 12000 16000")
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
what=${1:-all}
subs=${SUBS:-1000}
rate=${RATE:-1000}
secs=${SECONDS_PER_RUN:-20}
warmup=${WARMUP:-3}
idle_subs=${IDLE_SUBS:-10000}
rates=${RATES:-"2000 3000 4000 6000 8000 12000 16000"}
writers=${WRITERS:-16}

cd "$bench_root"
if [ ! -f build-release/build.ninja ]; then
    meson setup build-release -Dbuildtype=release >/dev/null
fi
ninja -C build-release server/paytrackr-server >/dev/null
bench_pg_start
client=$PGDIR/stream-bench
cleanup() { bench_server_stop 2>/dev/null || true; bench_pg_stop; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
read -ra pq_cflags <<<"$(pkg-config --cflags libpq)"
read -ra pq_libs <<<"$(pkg-config --libs libpq)"
cc -O2 -std=c11 -Wall -Wextra -Werror "${pq_cflags[@]}" -o "$client" \
    "$here/stream-bench.c" "${pq_libs[@]}" -lpthread
PAYTRACKR_DATABASE_URL=$DBURL build-release/server/paytrackr-server migrate 2>/dev/null
if [ "${SYNC_COMMIT:-on}" = off ]; then
    # Isolates the stream's own cost from the disk's WAL flush time.
    bench_psql -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export PAYTRACKR_MAX_CONNECTIONS=$((idle_subs + 1000))

echo "# machine: $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -r)"
echo "# server: build-release, PostgreSQL 15 (fsync on, synchronous_commit ${SYNC_COMMIT:-on}), auth off, loopback"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run_rate RATE: one measured run against a fresh server; prints the
# client's line plus the server's CPU use.
run_rate() {
    bench_server_start 4
    local t0 c0 line t1 c1
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "$SERVER_PID")
    line=$("$client" --port "$PORT" --conninfo "$DBURL" --subs "$subs" --rate "$1" \
        --writers "$writers" --warmup "$warmup" --seconds "$secs") || true
    c1=$(cpu_ticks "$SERVER_PID")
    t1=$(date +%s.%N)
    bench_server_stop
    echo "$line server_cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f%%", 100 * (b - a) / hz / (e - s)}')"
}

if [ "$what" = latency ] || [ "$what" = all ]; then
    echo "## latency: $subs subscribers, $rate events/s, ${secs}s after ${warmup}s warm-up"
    run_rate "$rate"
fi

if [ "$what" = saturate ] || [ "$what" = all ]; then
    echo "## saturation: $subs subscribers, rising rate until p99 > 50 ms"
    for r in $rates; do
        line=$(run_rate "$r")
        echo "$line"
        p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
        if ! grep -q "incomplete=0 disorder=0" <<<"$line" ||
            awk -v p="$p99" 'BEGIN {exit !(p > 50)}'; then
            break
        fi
    done
fi

if [ "$what" = idle ] || [ "$what" = all ]; then
    echo "## idle: $idle_subs subscribers connected and subscribed, nothing written"
    bench_server_start 4
    sleep 1
    before=$(rss_kib "$SERVER_PID")
    fifo=$PGDIR/idle.out
    "$client" --port "$PORT" --subs "$idle_subs" --idle 15 >"$fifo" &
    cpid=$!
    for _ in $(seq 1 1200); do
        grep -q '^ready' "$fifo" 2>/dev/null && break
        sleep 0.1
    done
    sleep 2
    after=$(rss_kib "$SERVER_PID")
    open=$(curl -fs "http://127.0.0.1:$ADMIN/metrics" | awk '/^paytrackr_ws_connections_total/ {print $2}')
    wait "$cpid" || true
    cat "$fifo"
    bench_server_stop
    echo "rss_before_kib=$before rss_after_kib=$after ws_connections=$open" \
        "per_subscriber_kib=$(awk -v a="$before" -v b="$after" -v n="$idle_subs" \
            'BEGIN {printf "%.2f", (b - a) / n}')"
fi
