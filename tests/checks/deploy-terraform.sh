#!/usr/bin/env bash
# Offline checks of deploy/terraform (nothing here can reach Azure):
#  - terraform fmt -check, where terraform is installed (it is not in Debian);
#  - every file parses with Terraform's HCL parser (@cdktf/hcl2json, npm);
#  - every azurerm argument exists in the azurerm 4.x schema
#    (@cdktf/provider-azurerm, npm), since terraform validate needs the
#    provider binaries, which cannot be downloaded here;
#  - modules are documented and wired, and the topology is the design's.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=deploy/tap.sh
source tests/checks/deploy/tap.sh

node_dir=tests/checks/node

if command -v terraform >/dev/null 2>&1; then
  if diff_out=$(terraform fmt -check -recursive -diff deploy/terraform 2>/dev/null); then
    tap_ok "terraform fmt -check: deploy/terraform is formatted"
  else
    tap_not_ok "terraform fmt -check: deploy/terraform is formatted" "$diff_out"
  fi
else
  tap_skip "terraform fmt -check" "terraform is not installed (not packaged by Debian); the HCL parser checks below still run"
fi

if ! command -v node >/dev/null 2>&1; then
  tap_not_ok "node is installed (scripts/deps/deploy.txt: nodejs, npm)"
elif ! npm_err=$(tap_npm_ready "$node_dir" 2>&1); then
  tap_not_ok "npm ci in $node_dir (HCL parser and azurerm schema)" "$npm_err"
else
  tap_lines < <(node tests/checks/deploy/terraform-check.js "$PWD/deploy/terraform" "$PWD/$node_dir" "$PWD/deploy/k8s")
fi

tap_finish
