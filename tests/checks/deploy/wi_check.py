#!/usr/bin/python3
"""The Workload Identity component rendered on an overlay: ServiceAccount
annotated with the identity from environment.env, pods labelled for the AKS
webhook, no Kubernetes API token, HTTPS egress to Entra ID.

Usage: wi_check.py RENDERED.yaml ENVIRONMENT.env; exit 0 when right.
"""
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
env = dict(l.strip().split("=", 1) for l in open(sys.argv[2]) if "=" in l and not l.startswith("#"))
sa = [d for d in docs if d["kind"] == "ServiceAccount"][0]
dep = [d for d in docs if d["kind"] == "Deployment"][0]
np = [d for d in docs if d["kind"] == "NetworkPolicy"][0]
ann = sa["metadata"].get("annotations", {})
problems = []
if ann.get("azure.workload.identity/client-id") != env["WORKLOAD_CLIENT_ID"]:
    problems.append(f"client-id annotation {ann}")
if dep["spec"]["template"]["metadata"]["labels"].get("azure.workload.identity/use") != "true":
    problems.append("pod template lacks azure.workload.identity/use: \"true\"")
if dep["spec"]["template"]["spec"].get("automountServiceAccountToken") is not False:
    problems.append("the Kubernetes API token is mounted")
public = [r for r in np["spec"]["egress"] for t in r.get("to", [])
          if t.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" and "10.0.0.0/8" in t["ipBlock"].get("except", [])
          and [p["port"] for p in r["ports"]] == [443]]
if not public:
    problems.append("no HTTPS egress to public addresses (Entra ID)")
print("\n".join(problems))
sys.exit(1 if problems else 0)
