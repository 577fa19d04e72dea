#!/usr/bin/env bash
# tests/bench/stats-bench.sh - how long GET /v1/stats (totals for a filter,
# v1.1) takes with PAYTRACKR_BENCH_PAYMENTS payments (default 100,000), for
# a few typical filters. A benchmark, not a pass/fail test: the target is
# under 100 ms per answer.
#
# A throwaway cluster, the release server (build-release), payments spread
# over 4 currencies, 5 statuses and 5 methods, one per minute; then each
# query is asked PAYTRACKR_BENCH_RUNS times (default 21) after one warm-up,
# one at a time, and curl's total time is reported (median and worst).
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

rows=${PAYTRACKR_BENCH_PAYMENTS:-100000}
runs=${PAYTRACKR_BENCH_RUNS:-21}

trap 'bench_server_stop; bench_pg_stop' EXIT
bench_pg_start
PAYTRACKR_DATABASE_URL=$DBURL "$bench_root/build-release/server/paytrackr-server" migrate 2>/dev/null
bench_psql -c "INSERT INTO payments (amount, currency, payer, payee, reference, method, status,
        amount_refunded, created_at, updated_at)
    SELECT 100 + i % 100000, (ARRAY['EUR','USD','JPY','KWD'])[1 + i % 4], 'payer ' || (i % 997),
           'payee ' || (i % 101), 'R-' || i,
           (ARRAY['card','bank_transfer','cash','wallet','other'])[1 + i % 5],
           (ARRAY['pending','settled','failed','cancelled','refunded'])[1 + (i / 7) % 5],
           CASE WHEN (i / 7) % 5 = 4 THEN 100 + i % 100000 ELSE 0 END,
           timestamptz '2026-01-01' + i * interval '1 minute',
           timestamptz '2026-01-01' + i * interval '1 minute'
    FROM generate_series(1, $rows) i" >/dev/null
bench_psql -c "VACUUM ANALYZE" >/dev/null
bench_server_start 4

queries=(
    ""
    "currency=EUR"
    "status=settled&currency=USD"
    "created_gte=2026-01-15T00:00:00Z&created_lt=2026-02-01T00:00:00Z"
    "payer=payer%2042"
    "q=payee%2017"
    "min_amount=50000&max_amount=60000&method=card"
)
printf '%-70s %10s %10s %8s\n' "query ($rows payments)" "median ms" "worst ms" "count"
for q in "${queries[@]}"; do
    url="http://127.0.0.1:$PORT/v1/stats${q:+?$q}"
    count=$(curl -fs "$url" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
    times=()
    for _ in $(seq 1 "$runs"); do
        times+=("$(curl -fs -o /dev/null -w '%{time_total}' "$url")")
    done
    printf '%s\n' "${times[@]}" | /usr/bin/python3 -c '
import statistics, sys
t = sorted(float(x) * 1000 for x in sys.stdin)
print("%-70s %10.1f %10.1f %8s" % (sys.argv[1] or "(no filter)", statistics.median(t), t[-1], sys.argv[2]))
' "$q" "$count"
done
