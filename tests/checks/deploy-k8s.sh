#!/usr/bin/env bash
# Offline checks of deploy/k8s: every overlay renders with kustomize, every
# rendered object passes the structural checks in deploy/k8s_check.py, the
# optional Key Vault CSI component renders on top of the base, and no real
# secret is in git.
#
# Rendering needs kubectl >= 1.27 (kustomize v5 "labels", "replacements",
# matchLabelKeys). The machine image has it at /usr/bin/kubectl; Debian's
# kubernetes-client (1.20) is too old and npm has no kustomize package, so
# where kubectl is missing the render checks are reported as SKIP with that
# reason rather than passing silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=deploy/tap.sh
source tests/checks/deploy/tap.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The overlays' secretGenerators read secrets/ (git-ignored); render a copy
# with the documented placeholders from secrets.example/ in their place.
cp -r deploy/k8s "$work/k8s"
for ex in "$work"/k8s/overlays/*/secrets.example; do
  rm -rf "$(dirname "$ex")/secrets"
  cp -r "$ex" "$(dirname "$ex")/secrets"
done

# No secrets in git: nothing under overlays/*/secrets/ is tracked, and the
# templates hold placeholders only (no token hash, no private key, no
# connection string with a password).
tracked=$(git ls-files -- 'deploy/k8s/overlays/*/secrets/*' || true)
leaks=$(grep -rlEi -e '[0-9a-f]{64}' -e 'BEGIN [A-Z ]*PRIVATE KEY' -e 'password=' deploy/k8s || true)
if [[ -z $tracked && -z $leaks ]]; then
  tap_ok "no secret values in deploy/k8s (secrets/ untracked, templates are placeholders)"
else
  tap_not_ok "no secret values in deploy/k8s (secrets/ untracked, templates are placeholders)" "$tracked $leaks"
fi

kubectl_ok=0
if command -v kubectl >/dev/null 2>&1; then
  minor=$(kubectl version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))' || echo 0)
  if [[ $minor -ge 27 ]]; then kubectl_ok=1; fi
fi

for dir in "$work"/k8s/overlays/*/; do
  overlay=$(basename "$dir")
  if [[ $kubectl_ok -eq 0 ]]; then
    tap_skip "overlay $overlay renders and passes the structural checks" "kubectl >= 1.27 not installed (Debian's kubernetes-client is too old)"
    continue
  fi
  if err=$(kubectl kustomize "$dir" 2>&1 >"$work/$overlay.yaml"); then
    tap_ok "overlay $overlay renders with kubectl kustomize"
    tap_lines < <(/usr/bin/python3 tests/checks/deploy/k8s_check.py "$overlay" "$work/$overlay.yaml" 2>&1)
  else
    tap_not_ok "overlay $overlay renders with kubectl kustomize" "$err"
  fi
done

# The Key Vault CSI alternative: base + component must render, and the
# SecretProviderClass must produce the two Secrets the Deployment reads.
if [[ $kubectl_ok -eq 1 ]]; then
  mkdir -p "$work/k8s/csi-test"
  printf 'resources: [../base]\ncomponents: [../components/keyvault-csi]\n' >"$work/k8s/csi-test/kustomization.yaml"
  if err=$(kubectl kustomize "$work/k8s/csi-test" 2>&1 >"$work/csi.yaml"); then
    csi_what="component keyvault-csi renders and syncs paytrackr-secrets and paytrackr-tls"
    if /usr/bin/python3 - "$work/csi.yaml" <<'PY'; then tap_ok "$csi_what"; else tap_not_ok "$csi_what"; fi
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
spc = [d for d in docs if d["kind"] == "SecretProviderClass"]
dep = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]
synced = {s["secretName"] for s in spc[0]["spec"]["secretObjects"]} if spc else set()
csi = [v for v in dep["volumes"] if v.get("csi", {}).get("volumeAttributes", {}).get("secretProviderClass") == "paytrackr"]
mounted = [m for m in dep["containers"][0]["volumeMounts"] if csi and m["name"] == csi[0]["name"]]
sys.exit(0 if synced == {"paytrackr-secrets", "paytrackr-tls"} and csi and mounted else 1)
PY
  else
    tap_not_ok "component keyvault-csi renders" "$err"
  fi
else
  tap_skip "component keyvault-csi renders" "kubectl >= 1.27 not installed"
fi

# The Workload Identity alternative: the prod overlay plus the component must
# render with the ServiceAccount annotated with the identity's client id
# from environment.env, the pods labelled for the webhook, and HTTPS egress
# to Entra ID (public addresses only).
if [[ $kubectl_ok -eq 1 ]]; then
  wi="$work/k8s/overlays/wi-test"
  cp -r "$work/k8s/overlays/prod" "$wi"
  printf 'components:\n  - ../../components/workload-identity\n' >>"$wi/kustomization.yaml"
  if err=$(kubectl kustomize "$wi" 2>&1 >"$work/wi.yaml"); then
    wi_what="component workload-identity: ServiceAccount client-id from environment.env, pods labelled azure.workload.identity/use, HTTPS egress to public addresses"
    if wi_err=$(/usr/bin/python3 tests/checks/deploy/wi_check.py "$work/wi.yaml" "$wi/environment.env" 2>&1); then
      tap_ok "$wi_what"
    else
      tap_not_ok "$wi_what" "$wi_err"
    fi
  else
    tap_not_ok "component workload-identity renders on the prod overlay" "$err"
  fi
else
  tap_skip "component workload-identity renders" "kubectl >= 1.27 not installed"
fi

tap_finish
