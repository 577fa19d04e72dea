#!/usr/bin/env bash
# Soak with faults (tests/bench/soak.py, docs/soak.md): builds the release
# server and runs mixed HTTP and WebSocket load for DURATION seconds
# (default 600) while listener backends are killed, server b is restarted
# and PostgreSQL is restarted once. Exits 0 when every check passed.
#
# First, the ping proof (tests/integration/test_stream_pings.py) for
# PING_PROOF_SECONDS (default 45).
#
# usage: [DURATION=600] [PING_PROOF_SECONDS=45] [PAYTRACKR_BUILD_DIR=build-release]
#        tests/bench/soak.sh [soak.py options]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PAYTRACKR_BUILD_DIR:-build-release}
case "$build" in
    /*) ;;
    *) build="$root/$build" ;;
esac
"$root/scripts/build.sh" "$build" release
echo "machine: $(nproc) cores; $(free -h | awk '/^Mem:/ {print $2 " memory, " $7 " available"}')"
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
export PAYTRACKR_BUILD_DIR=$build
# Every PONG must answer one of the client's own PINGs: 45 s of raw
# clients pinging every millisecond against PAYTRACKR_WS_PING_SECONDS=1.
echo "ping proof: ${PING_PROOF_SECONDS:-45} s of client PINGs every millisecond"
PAYTRACKR_PING_PROOF_SECONDS=${PING_PROOF_SECONDS:-45} /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider "$root/tests/integration/test_stream_pings.py" -k every_pong
exec /usr/bin/python3 "$root/tests/bench/soak.py" --duration "${DURATION:-600}" "$@"
