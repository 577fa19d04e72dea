#!/usr/bin/env bash
# cppcheck over every C directory: warnings, style, performance, portability.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
dirs=()
for d in common server tui tests/unit tests/kvtest tests/shims tests/fuzz tests/bench; do
    if compgen -G "$d/*.c" >/dev/null; then
        dirs+=("$d")
    fi
done
echo "1..${#dirs[@]}"
n=0
rc=0
for d in "${dirs[@]}"; do
    n=$((n + 1))
    if out=$(cppcheck --enable=warning,style,performance,portability --inline-suppr \
        --error-exitcode=1 -q --std=c11 -Icommon -Iserver \
        --suppress=missingIncludeSystem "$d" 2>&1); then
        echo "ok $n - cppcheck $d"
    else
        echo "not ok $n - cppcheck $d"
        printf '%s\n' "$out" | sed 's/^/# /'
        rc=1
    fi
done
exit $rc
