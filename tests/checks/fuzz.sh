#!/bin/sh
# tests/checks/fuzz.sh - build each libFuzzer target in tests/fuzz with
# clang (ASan + UBSan, no meson), run it for FUZZ_TIME seconds (default 10)
# on a scratch copy of its seed corpus, and report TAP. The query, cursor
# and wsmsg targets also compile server/query.c, and wsmsg server/wsmsg.c.
# The long
# runs and their findings are recorded in docs/fuzzing.md. Exits non-zero if
# any target fails to build or finds a problem; the failing input is kept
# in tests/fuzz/corpus-work/ (ignored by git) to reproduce with
#   <binary> tests/fuzz/corpus-work/<name>-crash-...
# Needs Debian's clang and libclang-rt-14-dev (see scripts/deps/common.txt);
# without clang it reports a skip.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz_time=${FUZZ_TIME:-10}
targets="money payment patch query cursor wsmsg"
cc=${FUZZ_CC:-clang}

count=0
for name in $targets; do
    count=$((count + 1))
done

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "1..0 # SKIP $cc not available"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pt-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
artifacts="$root/tests/fuzz/corpus-work"
mkdir -p "$artifacts" || exit 1

cjson_cflags=$(pkg-config --cflags libcjson 2>/dev/null || echo "-I/usr/include/cjson")
cjson_libs=$(pkg-config --libs libcjson 2>/dev/null || echo "-lcjson")

echo "1..$count"
n=0
failed=0
for name in $targets; do
    n=$((n + 1))
    bin="$work/fuzz-$name"
    log="$work/$name.log"
    corpus="$work/corpus-$name"

    case $name in
    query | cursor) extra="$root/server/query.c" ;;
    wsmsg) extra="$root/server/query.c $root/server/wsmsg.c" ;;
    *) extra= ;;
    esac
    mkdir "$corpus" && cp "$root/tests/fuzz/corpus/$name/"* "$corpus/" 2>"$log"
    # shellcheck disable=SC2086 # the pkg-config flags and $extra are meant to split
    if ! "$cc" -std=c11 -g -O1 -Wall -Wextra -Werror \
        -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$root/common" -I"$root/server" $cjson_cflags \
        "$root/tests/fuzz/fuzz-$name.c" "$root"/common/*.c $extra \
        $cjson_libs -o "$bin" >>"$log" 2>&1; then
        echo "not ok $n - fuzz $name # build failed"
        sed 's/^/# /' "$log"
        failed=1
        continue
    fi
    if "$bin" -max_total_time="$fuzz_time" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/$name-" "$corpus" >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1)
        echo "ok $n - fuzz $name${runs:+ # $runs}"
    else
        echo "not ok $n - fuzz $name"
        tail -n 40 "$log" | sed 's/^/# /'
        failed=1
    fi
done
exit "$failed"
