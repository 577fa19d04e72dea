#!/usr/bin/env bash
# clang-format (config: .clang-format) must leave every C file unchanged.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
mapfile -t files < <(git ls-files -co --exclude-standard '*.c' '*.h' | sort)
echo "1..${#files[@]}"
n=0
rc=0
for f in "${files[@]}"; do
    n=$((n + 1))
    if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "ok $n - clang-format $f"
    else
        echo "not ok $n - clang-format $f (run: clang-format -i $f)"
        rc=1
    fi
done
exit $rc
