#!/usr/bin/python3
"""Structural checks of rendered paytrackr manifests (kubectl kustomize output).

Usage: k8s_check.py OVERLAY_NAME RENDERED.yaml
Prints "ok - ..." / "not ok - ..." lines (tap.sh numbers them). Each check
states a property the design asks for; a failure lists what is wrong.
"""
import re
import sys

import yaml

PROBE_PATHS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
ANN = "service.beta.kubernetes.io/"
MI = 1024 * 1024
LOG_BUDGET_BYTES = 5 * 50 * MI
# AKS managed Prometheus (the ama-metrics add-on): it reads PodMonitors of
# this API group, and its scraping pods run in kube-system with this label.
AMA_GROUP = "azmonitoring.coreos.com/v1"
AMA_POD_LABELS = {"rsName": "ama-metrics"}
UNITS = {"Ki": 1024, "Mi": MI, "Gi": 1024 * MI, "k": 1000, "M": 1000**2, "G": 1000**3}


def quantity_bytes(q):
    m = re.fullmatch(r"([0-9]+)([KMG]i?|k)?", str(q))
    if not m:
        return 0
    return int(m.group(1)) * UNITS.get(m.group(2) or "", 1)


def main():
    overlay, rendered = sys.argv[1], sys.argv[2]
    with open(rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    out = []

    def check(cond, what, problems=()):
        out.append(("ok - " if cond else "not ok - ") + f"{overlay}: {what}")
        if not cond:
            out.extend("# " + p for p in problems)

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def only(kind, pred=lambda _: True):
        found = [d for d in by_kind.get(kind, []) if pred(d)]
        return found[0] if len(found) == 1 else None

    dep = only("Deployment")
    if dep is None:
        print(f"not ok - {overlay}: exactly one Deployment rendered")
        return
    pod = dep["spec"]["template"]["spec"]
    containers = pod.get("containers", [])
    inits = pod.get("initContainers", [])
    main_c = next((c for c in containers if c["name"] == "paytrackr"), None)
    if main_c is None:
        print(f"not ok - {overlay}: Deployment has a container named paytrackr")
        return
    ports = {p["name"]: p["containerPort"] for p in main_c.get("ports", [])}

    # Settings: the ConfigMap referenced by envFrom.
    cm_names = [e["configMapRef"]["name"] for e in main_c.get("envFrom", []) if "configMapRef" in e]
    sec_names = [e["secretRef"]["name"] for e in main_c.get("envFrom", []) if "secretRef" in e]
    cm = only("ConfigMap", lambda d: d["metadata"]["name"] in cm_names) or {}
    settings = cm.get("data", {})

    expected_kinds = ["Namespace", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service",
                      "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"]
    missing = [k for k in expected_kinds if k not in by_kind]
    check(not missing, "renders Namespace, ServiceAccount, ConfigMap, Secrets, Deployment, Services, PDB, HPA and NetworkPolicy",
          [f"missing {k}" for k in missing])

    # Images: pinned, never latest.
    bad = []
    for c in containers + inits:
        img = c.get("image", "")
        name = img.split("@")[0].rsplit("/", 1)[-1]
        if "@sha256:" not in img and (":" not in name or name.endswith(":latest")):
            bad.append(f"{c['name']}: image {img!r} has no tag/digest or uses latest")
    check(not bad, "every image is pinned to a tag or digest, none is latest", bad)

    # Replicas and the autoscaler. The HPA alone owns the count: a
    # `replicas` field would reset it on every `kubectl apply` and drop the
    # WebSocket clients of the pods scaled away.
    hpa = only("HorizontalPodAutoscaler")
    problems = []
    if "replicas" in dep["spec"]:
        problems.append(f"Deployment sets replicas {dep['spec']['replicas']}: leave the count to the HPA")
    if hpa is None:
        problems.append("no HorizontalPodAutoscaler")
    else:
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") != dep["metadata"]["name"]:
            problems.append(f"HPA targets {ref}")
        if hpa["spec"].get("minReplicas", 1) < 2 or hpa["spec"]["maxReplicas"] < hpa["spec"]["minReplicas"]:
            problems.append("HPA minReplicas < 2 or maxReplicas < minReplicas")
    replicas = (hpa or {}).get("spec", {}).get("minReplicas", 1)
    check(not problems, "no replicas in the Deployment; the HPA (minReplicas >= 2) owns the count", problems)

    # Init container runs migrations with the same settings.
    mig = next((c for c in inits if c["name"] == "migrate"), None)
    cmd = (mig or {}).get("command", []) + (mig or {}).get("args", [])
    check(mig is not None and cmd[-2:] == ["/usr/local/bin/paytrackr-server", "migrate"] and mig.get("envFrom") == main_c.get("envFrom"),
          "init container runs `paytrackr-server migrate` with the server's envFrom", [f"command {cmd}"])

    # Probes on the admin port.
    problems = []
    for probe, path in PROBE_PATHS.items():
        p = main_c.get(probe)
        if not p or "httpGet" not in p:
            problems.append(f"{probe} missing or not httpGet")
            continue
        port = p["httpGet"]["port"]
        port = ports.get(port, port)
        if port != ports.get("admin") or p["httpGet"]["path"] != path:
            problems.append(f"{probe} is {p['httpGet']}, want {path} on admin port {ports.get('admin')}")
    admin_listen = settings.get("PAYTRACKR_ADMIN_LISTEN", "")
    if not admin_listen.endswith(f":{ports.get('admin')}"):
        problems.append(f"PAYTRACKR_ADMIN_LISTEN {admin_listen!r} does not match container port admin {ports.get('admin')}")
    if not settings.get("PAYTRACKR_LISTEN", "").endswith(f":{ports.get('https')}"):
        problems.append(f"PAYTRACKR_LISTEN does not match container port https {ports.get('https')}")
    check(not problems, "startup/liveness (/healthz) and readiness (/readyz) probes on the admin port from PAYTRACKR_ADMIN_LISTEN", problems)

    # Resources.
    problems = []
    for c in containers + inits:
        r = c.get("resources", {})
        for section in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in r.get(section, {}):
                    problems.append(f"{c['name']}: no {section}.{res}")
    check(not problems, "every container has cpu and memory requests and limits", problems)

    # Container logs count against the container's ephemeral-storage limit.
    # AKS rotates them at 50 MiB x 5 files (kubelet containerLogMaxSizeMB /
    # containerLogMaxFiles, set in Terraform), so a pod logging one INFO
    # line per request reaches 250 MiB of logs before rotation caps it; a
    # lower limit evicts a busy pod.
    problems = []
    for c in containers + inits:
        lim = c.get("resources", {}).get("limits", {}).get("ephemeral-storage")
        if lim is None or quantity_bytes(lim) < LOG_BUDGET_BYTES + 64 * MI:
            problems.append(f"{c['name']}: ephemeral-storage limit {lim} < 250Mi of rotated logs + 64Mi")
    check(not problems, "ephemeral-storage limits hold the rotated container logs (5 x 50Mi) plus headroom", problems)

    # Security context.
    problems = []
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problems.append("pod runAsNonRoot is not true")
    if not isinstance(psc.get("runAsUser"), int) or psc.get("runAsUser") == 0:
        problems.append("pod runAsUser is not a non-zero uid")
    if psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile is not RuntimeDefault/Localhost")
    for c in containers + inits:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: readOnlyRootFilesystem not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation not false")
        if sc.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{c['name']}: capabilities not drop [ALL] / adds some")
        if sc.get("runAsUser") == 0:
            problems.append(f"{c['name']}: runAsUser 0")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        vol = next((v for v in pod.get("volumes", []) if v["name"] == mounts.get("/tmp")), None)
        if vol is None or "emptyDir" not in vol:
            problems.append(f"{c['name']}: /tmp is not a writable emptyDir")
    check(not problems, "runAsNonRoot, numeric uid, seccomp RuntimeDefault, read-only root with /tmp emptyDir, no privilege escalation, all capabilities dropped", problems)

    # Service account: no API token.
    sa = only("ServiceAccount", lambda d: d["metadata"]["name"] == pod.get("serviceAccountName"))
    check(sa is not None and sa.get("automountServiceAccountToken") is False and pod.get("automountServiceAccountToken") is False,
          "dedicated ServiceAccount; no API token mounted (ServiceAccount and pod)")

    # Topology spread.
    keys = {t["topologyKey"]: t for t in pod.get("topologySpreadConstraints", [])}
    sel = dep["spec"]["selector"]["matchLabels"]
    problems = [f"no spread over {k}" for k in ("topology.kubernetes.io/zone", "kubernetes.io/hostname") if k not in keys]
    problems += [f"{k} spread selects {t['labelSelector'].get('matchLabels')}, not the pods"
                 for k, t in keys.items() if t.get("labelSelector", {}).get("matchLabels") != sel]
    check(not problems, "topology spread across zones and nodes, selecting the Deployment's pods", problems)

    # Graceful WebSocket drain. The Azure LoadBalancer probes every 5 s and
    # needs 2 misses, and kube-proxy/endpoint propagation adds a few seconds:
    # the preStop sleep must be 15-20 s, and the grace period must cover
    # preStop + the server's drain (PAYTRACKR_SHUTDOWN_GRACE_SECONDS) + 5 s.
    problems = []
    pre = main_c.get("lifecycle", {}).get("preStop", {})
    sleep = pre.get("sleep", {}).get("seconds")
    if sleep is None:
        problems.append("no preStop sleep action")
        sleep = 0
    elif not 15 <= sleep <= 20:
        problems.append(f"preStop sleep {sleep} s is not 15-20 s (the LoadBalancer's probe window)")
    try:
        grace = int(settings.get("PAYTRACKR_SHUTDOWN_GRACE_SECONDS", "25"))
    except ValueError:
        grace = 10**6
        problems.append("PAYTRACKR_SHUTDOWN_GRACE_SECONDS is not an integer")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps < sleep + grace + 5:
        problems.append(f"terminationGracePeriodSeconds {tgps} < preStop {sleep} + drain {grace} + 5")
    check(not problems, "preStop sleep 15-20 s and terminationGracePeriodSeconds cover it plus the server's WebSocket drain", problems)

    # Settings and secrets referenced exist; TLS files come from the TLS Secret mount.
    problems = []
    if not cm:
        problems.append(f"ConfigMap {cm_names} not rendered")
    for n in sec_names:
        if not only("Secret", lambda d, n=n: d["metadata"]["name"] == n):
            problems.append(f"Secret {n} not rendered")
    mounts = {m["mountPath"]: m["name"] for m in main_c.get("volumeMounts", [])}
    for key in ("PAYTRACKR_TLS_CERT", "PAYTRACKR_TLS_KEY"):
        val = settings.get(key, "")
        if not val:
            continue
        mp = next((p for p in mounts if val.startswith(p.rstrip("/") + "/")), None)
        vol = next((v for v in pod.get("volumes", []) if mp and v["name"] == mounts[mp]), None)
        sec = vol and vol.get("secret", {}).get("secretName")
        tls = sec and only("Secret", lambda d, s=sec: d["metadata"]["name"] == s)
        fname = val.rsplit("/", 1)[-1]
        if not tls or fname not in tls.get("data", {}) or tls.get("type") != "kubernetes.io/tls":
            problems.append(f"{key}={val} is not a key of a mounted kubernetes.io/tls Secret")
    check(not problems, "envFrom ConfigMap and Secrets are rendered; TLS paths point into the mounted TLS Secret", problems)

    # Public LoadBalancer Service.
    svcs = by_kind.get("Service", [])
    lb = [s for s in svcs if s["spec"].get("type") == "LoadBalancer"]
    problems = []
    if len(lb) != 1:
        problems.append(f"{len(lb)} LoadBalancer Services")
    else:
        s = lb[0]
        ann = s["metadata"].get("annotations", {})
        sp = s["spec"]["ports"]
        if [p["port"] for p in sp] != [443] or ports.get(sp[0]["targetPort"], sp[0]["targetPort"]) != ports.get("https"):
            problems.append(f"ports {sp}: want only 443 -> the https container port")
        if s["spec"].get("selector") != sel:
            problems.append("selector does not match the Deployment's pods")
        idle = ann.get(ANN + "azure-load-balancer-tcp-idle-timeout", "")
        if not idle.isdigit() or not 4 <= int(idle) <= 30:
            problems.append(f"tcp-idle-timeout {idle!r} is not 4..30 minutes")
        if not ann.get(ANN + "azure-load-balancer-health-probe-request-path", "").startswith("/"):
            problems.append("no health-probe-request-path annotation")
        if ann.get(ANN + "azure-load-balancer-health-probe-protocol") not in ("http", "https"):
            problems.append("health-probe-protocol is not http/https (the path would be ignored)")
    check(not problems, "one LoadBalancer Service, 443 -> public port only, with Azure idle-timeout and health-probe annotations", problems)

    admin = [s for s in svcs if any(ports.get(p["targetPort"], p["targetPort"]) == ports.get("admin") for p in s["spec"]["ports"])]
    check(len(admin) == 1 and admin[0]["spec"].get("type", "ClusterIP") == "ClusterIP" and admin[0]["spec"].get("selector") == sel,
          "the admin port is exposed only by a ClusterIP Service",
          [f"{s['metadata']['name']}: {s['spec'].get('type')}" for s in admin])

    # PodDisruptionBudget.
    pdb = only("PodDisruptionBudget")
    ok = pdb is not None and pdb["spec"]["selector"].get("matchLabels") == sel
    if ok and "minAvailable" in pdb["spec"]:
        ok = isinstance(pdb["spec"]["minAvailable"], int) and pdb["spec"]["minAvailable"] < replicas
    check(ok, "PodDisruptionBudget selects the pods and still lets a drain proceed")

    # NetworkPolicy.
    problems = []
    np = only("NetworkPolicy")
    if np is None:
        problems.append("no single NetworkPolicy")
    else:
        spec = np["spec"]
        if spec.get("podSelector", {}).get("matchLabels") != sel:
            problems.append("podSelector does not select the pods")
        if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
            problems.append("policyTypes is not Ingress+Egress")

        def port_of(p):
            return ports.get(p["port"], p["port"])

        for rule in spec.get("ingress", []):
            rports = [port_of(p) for p in rule.get("ports", [])]
            if not rports:
                problems.append(f"ingress rule without ports: {rule}")
            elif rports == [ports.get("https")]:
                pass
            elif rports == [ports.get("admin")]:
                if not rule.get("from") or any("ipBlock" in f for f in rule["from"]):
                    problems.append("admin port open beyond a namespace/pod selector")
            else:
                problems.append(f"unexpected ingress ports {rports}")
        ing_ports = sorted(port_of(p) for r in spec.get("ingress", []) for p in r.get("ports", []))
        if ing_ports != sorted([ports.get("https"), ports.get("admin")]):
            problems.append(f"ingress ports {ing_ports}")
        seen = set()
        for rule in spec.get("egress", []):
            to = rule.get("to", [])
            rp = sorted((p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", []))
            if not to or not rp:
                problems.append(f"egress rule open to anything: {rule}")
                continue
            cidrs = [t["ipBlock"]["cidr"] for t in to if "ipBlock" in t]
            if any(c.endswith("/0") for c in cidrs):
                problems.append(f"egress to {cidrs}")
            if ("UDP", 53) in rp and all("ipBlock" not in t for t in to):
                seen.add("dns")
            elif rp == [("TCP", 5432)] and cidrs:
                seen.add("postgres")
            elif rp == [("TCP", 443)] and cidrs:
                seen.add("keyvault")
            elif rp == [("TCP", 80)] and cidrs == ["169.254.169.254/32"]:
                seen.add("imds")
            else:
                problems.append(f"unexpected egress rule {rule}")
        for need in ("dns", "postgres", "keyvault", "imds"):
            if need not in seen:
                problems.append(f"no egress rule for {need}")
    check(not problems, "NetworkPolicy: ingress to the public port and, from monitoring, the admin port; egress only to DNS, PostgreSQL, Key Vault and IMDS", problems)

    # Metrics reach AKS managed Prometheus: a PodMonitor of the group the
    # ama-metrics add-on reads, for the admin port's /metrics, and a
    # NetworkPolicy rule that admits the ama-metrics pods to that port.
    problems = []
    pms = [d for d in by_kind.get("PodMonitor", []) if d.get("apiVersion") == AMA_GROUP]
    if len(pms) != 1:
        problems.append(f"{len(pms)} PodMonitors of {AMA_GROUP} (want 1)")
    else:
        pm = pms[0]["spec"]
        if pm.get("selector", {}).get("matchLabels") != sel:
            problems.append(f"PodMonitor selects {pm.get('selector')}, not the pods")
        eps = pm.get("podMetricsEndpoints", [])
        if not any(ports.get(e.get("port"), e.get("port")) == ports.get("admin") and e.get("path", "/metrics") == "/metrics"
                   for e in eps):
            problems.append(f"no podMetricsEndpoint for /metrics on the admin port: {eps}")
    admitted = False
    for rule in (np or {}).get("spec", {}).get("ingress", []):
        rports = [ports.get(p["port"], p["port"]) for p in rule.get("ports", [])]
        if ports.get("admin") not in rports:
            continue
        for f in rule.get("from", []):
            ns_ok = f.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
            pod_ok = f.get("podSelector", {}).get("matchLabels") == AMA_POD_LABELS
            admitted = admitted or (ns_ok and pod_ok)
    if not admitted:
        problems.append(f"NetworkPolicy does not admit kube-system pods {AMA_POD_LABELS} to the admin port")
    check(not problems, "metrics: PodMonitor (azmonitoring.coreos.com/v1) for /metrics on the admin port, and the NetworkPolicy admits ama-metrics to it", problems)

    # Namespace enforces Pod Security "restricted".
    ns = only("Namespace")
    check(ns is not None and ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted"
          and all(d["metadata"].get("namespace") == ns["metadata"]["name"] for d in docs if d["kind"] != "Namespace"),
          "everything is in one Namespace that enforces Pod Security \"restricted\"")

    # Settings values that must stay coherent.
    problems = []
    if settings.get("PAYTRACKR_AUTH") != "required":
        problems.append("PAYTRACKR_AUTH is not required")
    kv = settings.get("PAYTRACKR_KEYVAULT_URL", "")
    if not re.fullmatch(r"https://[a-z0-9-]+\.vault\.azure\.net/?", kv):
        problems.append(f"PAYTRACKR_KEYVAULT_URL {kv!r} is not an https Key Vault URL")
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", settings.get("AZURE_CLIENT_ID", "")):
        problems.append("AZURE_CLIENT_ID is not a GUID")
    check(not problems, "ConfigMap: auth required, Key Vault URL and kubelet client id well-formed", problems)

    print("\n".join(out))


if __name__ == "__main__":
    main()
