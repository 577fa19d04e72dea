#!/usr/bin/env bash
# Checks of the Dockerfile without a Docker engine (there is none on these
# machines): its stages, base images, packages, user, healthcheck and
# command, and - when PAYTRACKR_BUILD_DIR holds the built binaries - that the
# runtime stage installs exactly the Debian packages whose libraries the
# binaries link (ldd + dpkg -S). Also lints the deploy shell scripts.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=deploy/tap.sh
source tests/checks/deploy/tap.sh

tap_lines < <(/usr/bin/python3 tests/checks/deploy/dockerfile_check.py Dockerfile deploy/k8s/base/deployment.yaml "${PAYTRACKR_BUILD_DIR:-}" 2>&1)

if command -v shellcheck >/dev/null 2>&1; then
  if sc_out=$(shellcheck -x tests/checks/deploy-*.sh tests/checks/deploy/tap.sh 2>&1); then
    tap_ok "shellcheck: deploy check scripts are clean"
  else
    tap_not_ok "shellcheck: deploy check scripts are clean" "$sc_out"
  fi
else
  tap_skip "shellcheck: deploy check scripts are clean" "shellcheck not installed"
fi

tap_finish
