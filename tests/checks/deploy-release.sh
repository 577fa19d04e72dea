#!/usr/bin/env bash
# Release hardening and licensing, checked offline:
#  - the release build (scripts/build.sh DIR release, the setup the
#    Dockerfile uses) produces binaries with PIE, full RELRO (GNU_RELRO +
#    BIND_NOW), the stack protector and _FORTIFY_SOURCE (readelf: program
#    headers, dynamic section, __stack_chk_fail and __*_chk imports);
#  - the Dockerfile builds with that release setup;
#  - LICENSE is the MIT licence that meson.build and the image label claim.
# PAYTRACKR_RELEASE_BUILD_DIR names an existing release build to reuse;
# otherwise build-release/ is built (incrementally) here.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=deploy/tap.sh
source tests/checks/deploy/tap.sh

# LICENSE: MIT, as meson.build's license and the OCI label say.
if [[ -f LICENSE ]] && grep -q "^MIT License" LICENSE &&
  grep -q "Permission is hereby granted, free of charge" LICENSE &&
  grep -q "license : 'MIT'" meson.build &&
  grep -q 'org.opencontainers.image.licenses="MIT"' Dockerfile; then
  tap_ok "LICENSE is the MIT licence named by meson.build and the image label"
else
  tap_not_ok "LICENSE is the MIT licence named by meson.build and the image label"
fi

# The Dockerfile's build stage uses the release setup (which carries the
# hardening flags) and does not override them.
if grep -Eq 'meson setup [^&]*-Dbuildtype=release' Dockerfile &&
  ! grep -Eq 'b_pie=false|-fno-stack-protector|_FORTIFY_SOURCE=0|-z,?norelro|-z,?lazy' Dockerfile; then
  tap_ok "Dockerfile builds with meson's hardened release setup"
else
  tap_not_ok "Dockerfile builds with meson's hardened release setup"
fi

if ! command -v readelf >/dev/null 2>&1; then
  tap_not_ok "readelf is installed (binutils)"
  tap_finish
fi

dir=${PAYTRACKR_RELEASE_BUILD_DIR:-build-release}
if [[ -z ${PAYTRACKR_RELEASE_BUILD_DIR:-} ]]; then
  if ! out=$(scripts/build.sh "$dir" release 2>&1); then
    tap_not_ok "release build (scripts/build.sh $dir release)" "$out"
    tap_finish
  fi
fi

for bin in server/paytrackr-server tui/paytrackr-tui; do
  f=$dir/$bin
  if [[ ! -x $f ]]; then
    tap_not_ok "$bin: built in $dir"
    continue
  fi
  problems=()
  header=$(readelf -W -h "$f")
  dynamic=$(readelf -W -d "$f")
  segments=$(readelf -W -l "$f")
  imports=$(readelf -W --dyn-syms "$f")
  grep -q 'Type:[[:space:]]*DYN' <<<"$header" && grep -Eq 'FLAGS_1.*PIE' <<<"$dynamic" ||
    problems+=("not a PIE executable")
  grep -q 'GNU_RELRO' <<<"$segments" || problems+=("no GNU_RELRO segment")
  grep -Eq 'BIND_NOW|FLAGS_1.*NOW' <<<"$dynamic" || problems+=("no BIND_NOW: RELRO is only partial")
  grep -q '__stack_chk_fail' <<<"$imports" || problems+=("no __stack_chk_fail import: built without the stack protector")
  grep -Eq ' __[a-z_]+_chk(@|$)' <<<"$(grep -v __stack_chk_fail <<<"$imports")" ||
    problems+=("no __*_chk import: built without _FORTIFY_SOURCE")
  if [[ ${#problems[@]} -eq 0 ]]; then
    tap_ok "$bin: PIE, full RELRO, stack protector and _FORTIFY_SOURCE (readelf)"
  else
    tap_not_ok "$bin: PIE, full RELRO, stack protector and _FORTIFY_SOURCE (readelf)" "$(printf '%s\n' "${problems[@]}")"
  fi
done

tap_finish
