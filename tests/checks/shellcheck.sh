#!/usr/bin/env bash
# Runs shellcheck on every shell script in the repository.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
mapfile -t files < <(git ls-files -co --exclude-standard '*.sh' .ci/run | grep -v node_modules | sort)
echo "1..${#files[@]}"
n=0
rc=0
for f in "${files[@]}"; do
    n=$((n + 1))
    if out=$(shellcheck -x "$f" 2>&1); then
        echo "ok $n - shellcheck $f"
    else
        echo "not ok $n - shellcheck $f"
        printf '%s\n' "$out" | sed 's/^/# /'
        rc=1
    fi
done
exit $rc
