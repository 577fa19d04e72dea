#!/usr/bin/python3
"""The ConfigMap and Secret feed the server exactly the settings it reads.

Usage: config_keys.py RENDERED_DEV.yaml [RENDERED_OTHER.yaml ...]
Reads server/config-keys.txt (one env var name per line, kept by the server
side), compares it with the keys of the ConfigMap and Secret that the
Deployment's container takes through envFrom, in every rendered overlay.

Then, if $PAYTRACKR_BUILD_DIR/server/paytrackr-server exists and
$PAYTRACKR_TEST_DATABASE_URL is set, runs the server the way the pod does:
`paytrackr-server migrate` (the init container) and then the server, with
exactly the rendered env, overriding only what cannot hold outside a
cluster: the database URL (and the migrate-only Key Vault secret), the listen addresses (127.0.0.1, free ports),
the token list (a test hash) and the TLS file paths (a throw-away
self-signed pair). It must become ready (GET /readyz on the admin port
answers 200, polled with a deadline) and stop cleanly on SIGTERM within its
drain period, as Kubernetes would stop it.
"""
import base64
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

READY_TIMEOUT = 60.0


def emit(ok, what, problems=()):
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        for p in problems:
            print("# " + str(p))


def settings_of(path):
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "paytrackr")
    cm_names = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    sec_names = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
    cm, sec = {}, {}
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] in cm_names:
            cm.update(d.get("data", {}))
        if d["kind"] == "Secret" and d["metadata"]["name"] in sec_names:
            for k, v in d.get("data", {}).items():
                sec[k] = base64.b64decode(v).decode()
            sec.update(d.get("stringData", {}))
    return cm, sec


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def run_server(cm, sec):
    build = os.environ.get("PAYTRACKR_BUILD_DIR", "")
    binary = os.path.join(build, "server", "paytrackr-server") if build else ""
    db = os.environ.get("PAYTRACKR_TEST_DATABASE_URL", "")
    what = "server starts with the env rendered from the dev overlay and /readyz answers 200"
    if not build or not os.access(binary, os.X_OK):
        print(f"skip - {what} # PAYTRACKR_BUILD_DIR unset or no server/paytrackr-server in it")
        return
    if not db:
        print(f"skip - {what} # PAYTRACKR_TEST_DATABASE_URL unset")
        return

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        gen = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
            capture_output=True, text=True, check=False)
        if gen.returncode != 0:
            emit(False, what, ["openssl could not make a test certificate", gen.stderr])
            return
        token = secrets.token_urlsafe(32)
        public, admin = free_port(), free_port()
        while admin == public:
            admin = free_port()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": tmp}
        env.update(cm)
        env.update(sec)
        env.update({
            "PAYTRACKR_DATABASE_URL": db,
            # No Key Vault here: migrate runs as the test database's role,
            # without the separate administrator login.
            "PAYTRACKR_MIGRATE_KEYVAULT_SECRET": "",
            "PAYTRACKR_LISTEN": f"127.0.0.1:{public}",
            "PAYTRACKR_ADMIN_LISTEN": f"127.0.0.1:{admin}",
            "PAYTRACKR_TOKENS": "operator:" + hashlib.sha256(token.encode()).hexdigest(),
            "PAYTRACKR_TLS_CERT": cert,
            "PAYTRACKR_TLS_KEY": key,
        })

        mig = subprocess.run([binary, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False)
        emit(mig.returncode == 0, "`paytrackr-server migrate` (the init container) succeeds with the rendered env",
             [f"exit {mig.returncode}", mig.stderr[-2000:]])
        if mig.returncode != 0:
            return

        log = open(os.path.join(tmp, "server.log"), "w+", encoding="utf-8")
        proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            status = None
            delay = 0.05
            while time.monotonic() < deadline and proc.poll() is None:
                status = get(f"http://127.0.0.1:{admin}/readyz")
                if status == 200:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            log.flush()
            log.seek(0)
            tail = log.read()[-3000:].splitlines()
            emit(status == 200, what,
                 [f"last /readyz status {status}, exit status {proc.poll()}"] + tail)
            if status != 200:
                return
            emit(get(f"http://127.0.0.1:{admin}/healthz") == 200, "/healthz answers 200 on the admin port")

            grace = int(env.get("PAYTRACKR_SHUTDOWN_GRACE_SECONDS", "25"))
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                rc = None
            emit(rc == 0, f"SIGTERM stops the server with status 0 within PAYTRACKR_SHUTDOWN_GRACE_SECONDS ({grace} s) + 5 s",
                 [f"exit status {rc}"])
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    keys_file = os.path.join(here, "..", "..", "..", "server", "config-keys.txt")
    # One setting per line; "NAME injected" marks a setting that the
    # platform sets in the pod (the AKS Workload Identity webhook), which
    # the ConfigMap/Secret may leave out.
    wanted, injected = set(), set()
    with open(keys_file, encoding="utf-8") as f:
        for ln in f:
            words = ln.split()
            if not words or words[0].startswith("#"):
                continue
            (injected if words[1:] == ["injected"] else wanted).add(words[0])
    dev_env = None
    for path in sys.argv[1:]:
        overlay = os.path.basename(path).rsplit(".", 1)[0]
        cm, sec = settings_of(path)
        have = set(cm) | set(sec)
        both = set(cm) & set(sec)
        problems = [f"missing from ConfigMap/Secret: {k}" for k in sorted(wanted - have)]
        problems += [f"not a server setting: {k}" for k in sorted(have - wanted - injected)]
        problems += [f"in both ConfigMap and Secret: {k}" for k in sorted(both)]
        emit(not problems and bool(wanted),
             f"{overlay}: ConfigMap keys + Secret keys are exactly server/config-keys.txt ({len(wanted)} settings, {len(injected)} injected by the platform)", problems)
        secret_side = {"PAYTRACKR_TOKENS", "PAYTRACKR_DATABASE_URL"}
        emit(secret_side <= set(sec) and not (secret_side & set(cm)),
             f"{overlay}: token hashes and the database URL are in the Secret, not the ConfigMap")
        if overlay == "dev":
            dev_env = (cm, sec)
    if dev_env is None:
        emit(False, "the dev overlay was rendered")
        return
    run_server(*dev_env)


if __name__ == "__main__":
    main()
