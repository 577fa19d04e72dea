#!/usr/bin/env bash
# tests/bench/export-memory.sh - the CSV export's memory does not grow
# with the row count: exports 10,000 and then 1,000,000 payments, each
# from a freshly started release server, and compares the server's peak
# resident set (VmHWM) after each. Also prints the time and size of each
# export. A benchmark, not a pass/fail test (it takes minutes).
#
# usage: tests/bench/export-memory.sh [SMALL] [LARGE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
small=${1:-10000}
large=${2:-1000000}

trap 'bench_server_stop; bench_pg_stop' EXIT
bench_pg_start
PAYTRACKR_DATABASE_URL=$DBURL "$bench_root/build-release/server/paytrackr-server" migrate 2>/dev/null
# Rows one second apart, newest first: the SMALL newest ones are the
# export with created_gte at the SMALL-th row's time.
bench_psql -c "INSERT INTO payments (amount, currency, payer, payee, reference, description,
        method, status, metadata, created_at, updated_at)
    SELECT 100 + i % 100000, (ARRAY['EUR','JPY','KWD'])[1 + i % 3], 'payer ' || i, 'payee ' || (i % 101),
           'INV-' || i, 'invoice line ' || i, 'card', 'settled', jsonb_build_object('n', i::text),
           timestamptz '2026-06-01' - i * interval '1 second',
           timestamptz '2026-06-01' - i * interval '1 second'
    FROM generate_series(1, $large) i" >/dev/null
bench_psql -c "VACUUM ANALYZE" >/dev/null
since=$(bench_psql -c "SELECT to_char((timestamptz '2026-06-01' - $small * interval '1 second')
    AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")

printf '%12s %12s %10s %14s %14s\n' rows bytes seconds "RSS before" "peak RSS"
for case in small large; do
    bench_server_start 4
    query=""
    if [ "$case" = small ]; then query="?created_gte=$since"; fi
    before=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    start=$(date +%s.%N)
    bytes=$(curl -fsS -o "$PGDIR/export.csv" -w '%{size_download}' \
        "http://127.0.0.1:$PORT/v1/payments/export.csv$query")
    end=$(date +%s.%N)
    peak=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    rows=$(($(wc -l <"$PGDIR/export.csv") - 1))
    printf '%12s %12s %10.1f %11s KiB %11s KiB\n' "$rows" "$bytes" \
        "$(echo "$end - $start" | bc)" "$before" "$peak"
    bench_server_stop
done
