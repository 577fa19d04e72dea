#!/usr/bin/env bash
# The ConfigMap's and Secret's keys are exactly the settings the server reads
# (server/config-keys.txt), and the server comes up ready with the env
# rendered from the dev overlay (when a build and a test database are given:
# PAYTRACKR_BUILD_DIR, PAYTRACKR_TEST_DATABASE_URL; otherwise that is SKIP).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=deploy/tap.sh
source tests/checks/deploy/tap.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r deploy/k8s "$work/k8s"
for ex in "$work"/k8s/overlays/*/secrets.example; do
  rm -rf "$(dirname "$ex")/secrets"
  cp -r "$ex" "$(dirname "$ex")/secrets"
done

if [[ ! -s server/config-keys.txt ]]; then
  tap_not_ok "server/config-keys.txt lists the server's settings"
elif ! command -v kubectl >/dev/null 2>&1; then
  tap_skip "ConfigMap/Secret keys equal server/config-keys.txt" "kubectl not installed (see deploy-k8s.sh)"
else
  rendered=()
  for overlay in dev prod; do
    if err=$(kubectl kustomize "$work/k8s/overlays/$overlay" 2>&1 >"$work/$overlay.yaml"); then
      rendered+=("$work/$overlay.yaml")
    else
      tap_not_ok "overlay $overlay renders" "$err"
    fi
  done
  if [[ ${#rendered[@]} -gt 0 ]]; then
    tap_lines < <(/usr/bin/python3 tests/checks/deploy/config_keys.py "${rendered[@]}" 2>&1)
  fi
fi

tap_finish
