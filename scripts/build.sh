#!/usr/bin/env bash
# Builds paytrackr into a build directory: build.sh DIR [asan|release]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
kind=${2:-release}
case "$kind" in
    asan) opts=("-Db_sanitize=address,undefined" -Dbuildtype=debug -Db_lundef=false) ;;
    release) opts=(-Dbuildtype=release) ;;
    *) echo "build.sh: kind must be asan or release" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
