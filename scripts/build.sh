#!/usr/bin/env bash
# Builds paytrackr into a build directory: build.sh DIR [asan|release]
# Quiet when all goes well; on failure it prints what meson or the compiler
# said and exits non-zero, so nothing goes on with an earlier build's binary.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
kind=${2:-release}
case "$kind" in
    asan) opts=("-Db_sanitize=address,undefined" -Dbuildtype=debug -Db_lundef=false) ;;
    release) opts=(-Dbuildtype=release) ;;
    *) echo "build.sh: kind must be asan or release" >&2; exit 2 ;;
esac

# Runs a build step with its output kept, and shows it only on failure.
step() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "build.sh: failed: $*" >&2
        exit 1
    fi
}

if [ ! -f "$dir/build.ninja" ]; then
    step meson setup "$dir" "${opts[@]}"
fi
step ninja -C "$dir"
