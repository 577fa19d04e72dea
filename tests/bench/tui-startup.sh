#!/usr/bin/env bash
# tests/bench/tui-startup.sh - how long paytrackr-tui takes from launch to
# its first screen showing rows, against a real server and PostgreSQL
# holding 100,000 payments (a benchmark, not a pass/fail test; the target
# is under 300 ms).
#
# It makes a throwaway PostgreSQL cluster, applies the migrations with
# `paytrackr-server migrate`, seeds the payments with one generate_series
# INSERT, starts the server, then launches the TUI in tmux several times.
# The TUI writes the milliseconds from the start of main() to the first
# drawn screen with rows into PAYTRACKR_TUI_TIMING_FILE; the script also
# measures from just before tmux spawns it to that moment.
#
# Environment: PAYTRACKR_BUILD_DIR (default build), PAYTRACKR_PG_BIN
# (default /usr/lib/postgresql/15/bin), PAYTRACKR_BENCH_PAYMENTS (default
# 100000), PAYTRACKR_BENCH_RUNS (default 5).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PAYTRACKR_BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
server_bin=$build/server/paytrackr-server
tui_bin=$build/tui/paytrackr-tui
pg_bin=${PAYTRACKR_PG_BIN:-/usr/lib/postgresql/15/bin}
count=${PAYTRACKR_BENCH_PAYMENTS:-100000}
runs=${PAYTRACKR_BENCH_RUNS:-5}
token=bench-token

for f in "$server_bin" "$tui_bin" "$pg_bin/initdb"; do
    if [[ ! -x $f ]]; then
        echo "tui-startup: $f is missing (build first, or set PAYTRACKR_BUILD_DIR)" >&2
        exit 2
    fi
done
command -v tmux >/dev/null || { echo "tui-startup: tmux is missing" >&2; exit 2; }

work=$(mktemp -d /tmp/paytrackr-bench-XXXXXX)
sock=pt-bench-$$
server_pid=
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$work"
    as_pg=(runuser -u postgres --)
fi

cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -d $work/data ]]; then
        "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ms() {
    date +%s%3N
}

# -- PostgreSQL
pg_port=$(free_port)
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/data" --auth=trust -U postgres --encoding=UTF8 \
    --locale=C.UTF-8 >"$work/initdb.log" 2>&1
"${as_pg[@]}" mkdir "$work/sock"
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
    -o "-p $pg_port -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
psql_do() {
    "$pg_bin/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"
}
psql_do -d postgres -c "CREATE DATABASE paytrackr"
db_url="postgresql://postgres@127.0.0.1:$pg_port/paytrackr"

hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
export PAYTRACKR_DATABASE_URL=$db_url
export PAYTRACKR_TOKENS="operator:$hash"
export PAYTRACKR_LOG_FORMAT=text
"$server_bin" migrate >"$work/migrate.log" 2>&1

echo "tui-startup: seeding $count payments..."
seed_start=$(now_ms)
psql_do -d paytrackr <<SQL
INSERT INTO payments (amount, currency, payer, payee, reference, method, status,
                      created_at, updated_at)
SELECT 100 + (i * 37) % 100000,
       (ARRAY['EUR', 'USD', 'JPY', 'KWD'])[1 + i % 4],
       'Payer ' || (i % 997),
       'Payee ' || (i % 991),
       'INV-' || lpad(i::text, 7, '0'),
       (ARRAY['card', 'bank_transfer', 'cash', 'wallet', 'other'])[1 + i % 5],
       (ARRAY['pending', 'settled', 'failed', 'cancelled', 'refunded'])[1 + i % 5],
       now() - make_interval(secs => i * 3),
       now() - make_interval(secs => i * 3)
FROM generate_series(1, $count) AS i;
ANALYZE payments;
SQL
echo "tui-startup: seeded in $(( $(now_ms) - seed_start )) ms"

# -- server
port=$(free_port)
admin_port=$(free_port)
PAYTRACKR_LISTEN=127.0.0.1:$port PAYTRACKR_ADMIN_LISTEN=127.0.0.1:$admin_port \
    "$server_bin" >"$work/server.log" 2>&1 &
server_pid=$!
deadline=$(( $(now_ms) + 20000 ))
until curl -fsS -o /dev/null "http://127.0.0.1:$admin_port/readyz" 2>/dev/null; do
    if (( $(now_ms) > deadline )) || ! kill -0 "$server_pid" 2>/dev/null; then
        echo "tui-startup: the server did not become ready; its log:" >&2
        tail -20 "$work/server.log" >&2
        exit 1
    fi
    sleep 0.05
done

# -- the TUI, several times
inner=()
outer=()
for run in $(seq 1 "$runs"); do
    timing=$work/timing.$run
    started=$(now_ms)
    tmux -L "$sock" -f /dev/null new-session -d -s "run$run" -x 120 -y 40 \
        "env LANG=C.UTF-8 PAYTRACKR_TOKEN=$token PAYTRACKR_TUI_TIMING_FILE=$timing \
         $tui_bin --url ws://127.0.0.1:$port; sleep 60"
    deadline=$(( $(now_ms) + 30000 ))
    until [[ -s $timing ]]; do
        if (( $(now_ms) > deadline )); then
            echo "tui-startup: run $run showed no rows within 30 s; its screen:" >&2
            tmux -L "$sock" capture-pane -p -t "run$run" >&2 || true
            exit 1
        fi
        sleep 0.005
    done
    outer+=($(( $(now_ms) - started )))
    inner+=("$(cat "$timing")")
    if ! tmux -L "$sock" capture-pane -p -t "run$run" | grep -q 'INV-'; then
        echo "tui-startup: run $run reported rows but none are on screen" >&2
        exit 1
    fi
    tmux -L "$sock" send-keys -t "run$run" q
    tmux -L "$sock" kill-session -t "run$run" 2>/dev/null || true
    echo "tui-startup: run $run: ${inner[-1]} ms in the TUI, ${outer[-1]} ms from the launch"
done

median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
echo "tui-startup: $count payments, $runs runs: median $(median "${inner[@]}") ms from main()" \
     "to the first rows, median $(median "${outer[@]}") ms from the launch in tmux" \
     "(target: under 300 ms)"
