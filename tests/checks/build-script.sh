#!/usr/bin/env bash
# scripts/build.sh on a tree with a compile error must print the compiler's
# message and exit non-zero, so that a test run never goes on with the
# binary of an earlier build. Runs on a copy of the tree in a temporary
# directory; the planted error is in the first file meson compiles.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
echo "1..2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -co --exclude-standard -z | grep -zv '^build' | xargs -0 tar -cf - | tar -xf - -C "$tmp"
marker="planted-build-failure-$$"
printf '#error "%s"\n' "$marker" | cat - common/currency.c >"$tmp/common/currency.c"
out=$("$tmp/scripts/build.sh" "$tmp/build" release 2>&1)
rc=$?
status=0
if [ "$rc" -ne 0 ]; then
    echo "ok 1 - build.sh exits non-zero (exit $rc) when a file does not compile"
else
    echo "not ok 1 - build.sh exited 0 although common/currency.c has an #error"
    status=1
fi
if printf '%s\n' "$out" | grep -q "$marker"; then
    echo "ok 2 - build.sh shows the compiler's error"
else
    echo "not ok 2 - build.sh did not show the compiler's error; it printed:"
    printf '%s\n' "$out" | sed 's/^/# /'
    status=1
fi
exit $status
