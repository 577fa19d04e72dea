#!/usr/bin/env bash
# Webhook delivery benchmark (release build, fsync on, everything on
# loopback): for each endpoint count in ENDPOINTS,
#   latency     RATE payments/s for SECONDS_PER_RUN through the HTTP API, every
#               endpoint receiving every event: commit-to-receipt p50/p99
#               (receipt time minus the event's "at"), lost, reordered, repeated
#   throughput  a backlog of BACKLOG events per endpoint (endpoints disabled
#               while it is written), then enabled: deliveries per second until
#               every endpoint has every event
# The receiver (answers 204, checks order, measures latency) is
# tests/bench/webhook-receiver.c: it stands for endpoints on other machines
# but shares the two cores here, so it must cost little CPU;
# RECEIVER=node runs the Node.js one (webhook-receiver.js, same checks and
# figures), which takes about as much CPU per delivery as the server.
#
# usage: tests/bench/webhook-bench.sh
#   env: ENDPOINTS ("10 100") RATE (100) SECONDS_PER_RUN (20) BACKLOG (500)
#        RECEIVER (c): c or node
#        WARMUP (3): seconds at RATE before each latency run, not measured
#        (the receiver's JIT, the new endpoints' first claims, caches), as
#        the stream benchmark does
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
counts=${ENDPOINTS:-"10 100"}
rate=${RATE:-100}
secs=${SECONDS_PER_RUN:-20}
backlog=${BACKLOG:-500}
warmup=${WARMUP:-3}

cd "$bench_root"
if [ ! -f build-release/build.ninja ]; then
    meson setup build-release -Dbuildtype=release >/dev/null
fi
ninja -C build-release server/paytrackr-server >/dev/null
bench_pg_start
RECEIVER_PID=
cleanup() {
    bench_server_stop 2>/dev/null || true
    if [ -n "$RECEIVER_PID" ]; then kill "$RECEIVER_PID" 2>/dev/null || true; fi
    bench_pg_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

RPORT=$(free_port)
case ${RECEIVER:-c} in
c)
    cc -O2 -std=c11 -Wall -Wextra -Werror -o "$PGDIR/webhook-receiver" "$here/webhook-receiver.c"
    RECEIVER_PORT=$RPORT "$PGDIR/webhook-receiver" &
    ;;
node) RECEIVER_PORT=$RPORT node "$here/webhook-receiver.js" & ;;
*)
    echo "RECEIVER must be c or node" >&2
    exit 2
    ;;
esac
RECEIVER_PID=$!
export PAYTRACKR_WEBHOOK_ALLOW_PRIVATE=on
bench_server_start 8

stats() { curl -fsS "http://127.0.0.1:$RPORT/stats"; }
for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$RPORT/stats"; then break; fi
    sleep 0.05
done
# The receiver's count: /count, not /stats (which sorts every latency),
# read without a Python per poll (that took a tenth of the machine that
# the measured processes share).
received() { curl -fsS "http://127.0.0.1:$RPORT/count"; }

# wait_count N: until the receiver has N deliveries (at most 600 s).
wait_count() {
    for _ in $(seq 1 6000); do
        if [ "$(received)" -ge "$1" ]; then return 0; fi
        sleep 0.1
    done
    echo "timed out: $(stats)" >&2
    return 1
}

report() { # LABEL EXPECTED
    stats | /usr/bin/python3 -c "
import json, sys
s = json.load(sys.stdin)
lost = $2 - s['count'] + s['dups']
print('%-34s deliveries %6d  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  lost %d  reordered %d  repeated %d' % (
    '$1', s['count'], s['p50_ms'], s['p99_ms'], s['max_ms'], lost, s['reordered'], s['dups']))"
}

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB"
for n in $counts; do
    bench_psql -c "DELETE FROM webhook_endpoints"
    for i in $(seq 1 "$n"); do
        curl -fsS -o /dev/null -H 'Content-Type: application/json' \
            -d "{\"url\":\"http://127.0.0.1:$RPORT/e$i\"}" "http://127.0.0.1:$PORT/v1/webhook_endpoints"
    done
    # latency at a steady rate, after a warm-up at that rate
    curl -fsS -X POST "http://127.0.0.1:$RPORT/reset"
    if [ "$warmup" -gt 0 ]; then
        made=$(THREADS=4 /usr/bin/python3 "$here/webhook-writer.py" "$PORT" "$rate" "$warmup")
        wait_count $((made * n))
    fi
    curl -fsS -X POST "http://127.0.0.1:$RPORT/reset"
    made=$(THREADS=4 /usr/bin/python3 "$here/webhook-writer.py" "$PORT" "$rate" "$secs")
    wait_count $((made * n))
    report "$n endpoints, $rate events/s" $((made * n))
    # throughput from a backlog
    bench_psql -c "UPDATE webhook_endpoints SET enabled = false"
    sleep 1
    curl -fsS -X POST "http://127.0.0.1:$RPORT/reset"
    made=$(THREADS=8 COUNT=$backlog /usr/bin/python3 "$here/webhook-writer.py" "$PORT" 0 0)
    start=$(date +%s.%N)
    bench_psql -c "UPDATE webhook_endpoints SET enabled = true, next_attempt_at = now(), config_version = config_version + 1"
    wait_count $((made * n))
    end=$(date +%s.%N)
    /usr/bin/python3 -c "print('%-34s %d deliveries in %.2f s: %.0f deliveries/s' % ('$n endpoints, backlog of $made', $made * $n, $end - $start, $made * $n / ($end - $start)))"
    report "  (latency is from commit)" $((made * n))
done
