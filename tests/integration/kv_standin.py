#!/usr/bin/env python3
"""Local stand-in for Azure IMDS, the Entra ID token endpoint and Azure Key
Vault, on one loopback port.

It speaks the real REST shapes:

  GET /metadata/identity/oauth2/token?api-version=2018-02-01
      &resource=https://vault.azure.net[&client_id=<id>]   (header Metadata: true)
      -> {"access_token": "...", "expires_in": "86399", "token_type": "Bearer", ...}
  POST /<tenant>/oauth2/v2.0/token                          (Workload Identity)
      Content-Type: application/x-www-form-urlencoded, body with exactly
      client_id, scope=https://vault.azure.net/.default,
      client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
      client_assertion=<the federated token>, grant_type=client_credentials
      -> {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
          "access_token": "..."}
  GET /secrets/<name>?api-version=7.4                       (Authorization: Bearer <token>)
      -> {"value": "...", "id": "<base>/secrets/<name>/<version>", "attributes": {...}}

A request whose shape is wrong (method, path, query parameters or their
values, the Metadata header, the bearer token it issued) gets 400 with a
JSON error naming the problem. Every request is recorded.

Scripting, per route ("imds", "entra" or "vault"): `standin.plan(route, action, ...)`
queues actions used by the next well-formed requests, one each; once the
queue is empty the normal answer is given. An action is a dict with any of:
  status       answer this status with an Azure-style error body (or `json`)
  retry_after  a Retry-After header value (seconds)
  delay        seconds to sleep before answering (a slow server)
  raw          bytes to send as the body instead of JSON (malformed JSON)
  json         an object to send as the JSON body (e.g. one missing "value")
  headers      extra response headers
  close        drop the connection without answering

Standalone: `python3 kv_standin.py --port 0` prints the chosen port on the
first line of stdout and serves until SIGINT/SIGTERM. Other processes then
script it over HTTP: POST /_standin/plan {"route": ..., "actions": [...]},
GET /_standin/requests, POST /_standin/reset, GET /_standin/info.

Standard library only.
"""

import argparse
import base64
import json
import re
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

IMDS_PATH = "/metadata/identity/oauth2/token"
IMDS_API_VERSION = "2018-02-01"
VAULT_API_VERSION = "7.4"
RESOURCE = "https://vault.azure.net"
ENTRA_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
ENTRA_SCOPE = RESOURCE + "/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ROUTES = ("imds", "entra", "vault")


def _fake_jwt():
    """A token shaped like an Azure access token (three base64url parts)."""

    def part(obj):
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part({"typ": "JWT", "alg": "RS256", "kid": "standin"})
    body = part({"aud": RESOURCE, "iss": "standin", "nonce": secrets.token_hex(16)})
    return f"{head}.{body}.{secrets.token_urlsafe(48)}"


class StandIn:
    """The server plus its state; usable from tests or from main()."""

    def __init__(self, host="127.0.0.1", port=0, client_id=None,
                 secret_name="postgres-connection-string", secret_value=None,
                 token=None, tenant_id=None, assertion=None):
        self.client_id = client_id
        # Entra ID: the tenant in the path and the client_assertion expected
        # (None: any non-empty one).
        self.tenant_id = tenant_id
        self.assertion = assertion
        self.secret_name = secret_name
        self.secret_value = secret_value or (
            "host=db.example.internal port=5432 dbname=paytrackr user=paytrackr "
            f"password={secrets.token_urlsafe(24)} sslmode=require")
        self.token = token or _fake_jwt()
        self._lock = threading.Lock()
        self._plans = {r: [] for r in ROUTES}
        self._requests = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = None

    # ---- lifecycle ----
    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()  # wakes handlers sleeping in a `delay`
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- scripting and records ----
    def plan(self, route, *actions):
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}")
        with self._lock:
            self._plans[route].extend(dict(a) for a in actions)

    def reset(self):
        with self._lock:
            for r in ROUTES:
                self._plans[r].clear()
            self._requests.clear()

    def requests(self, route=None):
        with self._lock:
            return [dict(r) for r in self._requests
                    if route is None or r["route"] == route]

    def _next_action(self, route):
        with self._lock:
            return self._plans[route].pop(0) if self._plans[route] else None

    def _record(self, rec):
        with self._lock:
            rec["index"] = len(self._requests)
            self._requests.append(rec)

    def info(self):
        return {"port": self.port, "url": self.url, "client_id": self.client_id,
                "secret_name": self.secret_name}

    # ---- request shape checks ----
    @staticmethod
    def _query_problems(pairs, expected):
        problems = []
        names = [k for k, _ in pairs]
        for k in sorted(set(names)):
            if names.count(k) > 1:
                problems.append(f"query parameter {k} is repeated")
        got = dict(pairs)
        for k, v in expected.items():
            if k not in got:
                problems.append(f"query parameter {k} is missing")
            elif got[k] != v:
                problems.append(f"query parameter {k} is {got[k]!r}, expected {v!r}")
        for k in got:
            if k not in expected:
                problems.append(f"unexpected query parameter {k}")
        return problems

    def check_imds(self, method, pairs, headers):
        problems = []
        if method != "GET":
            problems.append(f"method is {method}, expected GET")
        expected = {"api-version": IMDS_API_VERSION, "resource": RESOURCE}
        if self.client_id is not None:
            expected["client_id"] = self.client_id
        problems += self._query_problems(pairs, expected)
        if headers.get("metadata") != "true":
            problems.append("header Metadata: true is missing")
        return problems

    def check_entra(self, method, tenant, pairs, body_pairs, headers):
        problems = []
        if method != "POST":
            problems.append(f"method is {method}, expected POST")
        if pairs:
            problems.append("unexpected query string")
        if self.tenant_id is not None and tenant != self.tenant_id:
            problems.append(f"tenant is {tenant!r}, expected {self.tenant_id!r}")
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            problems.append(f"Content-Type is {ctype!r}, expected application/x-www-form-urlencoded")
        expected = {"scope": ENTRA_SCOPE, "client_assertion_type": ASSERTION_TYPE,
                    "grant_type": "client_credentials"}
        got = dict(body_pairs)
        if self.client_id is not None:
            expected["client_id"] = self.client_id
        elif not got.get("client_id"):
            problems.append("form field client_id is missing")
        if self.assertion is not None:
            expected["client_assertion"] = self.assertion
        elif not got.get("client_assertion"):
            problems.append("form field client_assertion is missing")
        allowed = set(expected) | {"client_id", "client_assertion"}
        problems += [p.replace("query parameter", "form field")
                     for p in self._query_problems(body_pairs, expected)
                     if not p.startswith("unexpected")]
        problems += [f"unexpected form field {k}" for k in got if k not in allowed]
        return problems

    def check_vault(self, method, pairs, headers):
        problems = []
        if method != "GET":
            problems.append(f"method is {method}, expected GET")
        problems += self._query_problems(pairs, {"api-version": VAULT_API_VERSION})
        auth = headers.get("authorization")
        if auth is None:
            problems.append("header Authorization is missing")
        elif auth != f"Bearer {self.token}":
            problems.append("header Authorization is not the issued bearer token")
        return problems


def _error_body(route, status, message):
    if route == "entra":
        code = {400: "invalid_request", 401: "invalid_client"}.get(status, "temporarily_unavailable")
        return {"error": code, "error_description": f"AADSTS90000: {message}",
                "error_codes": [90000], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
                "trace_id": secrets.token_hex(16), "correlation_id": secrets.token_hex(16)}
    if route == "imds":
        code = {400: "invalid_request", 404: "identity_not_found"}.get(status, "server_error")
        return {"error": code, "error_description": message}
    code = {400: "BadParameter", 401: "Unauthorized", 403: "Forbidden",
            404: "SecretNotFound", 429: "Throttled"}.get(status, "InternalServerError")
    body = {"error": {"code": code, "message": message}}
    if status == 403:
        body["error"]["innererror"] = {"code": "ForbiddenByRbac"}
    return body


def _make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kv-standin/1"

        def log_message(self, fmt, *args):  # quiet: tests read the records
            pass

        def _send(self, status, body=None, raw=None, headers=None):
            data = raw if raw is not None else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, str(v))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout)

        def _control(self, method, path):
            if method == "GET" and path == "/_standin/requests":
                return self._send(200, {"requests": state.requests()})
            if method == "GET" and path == "/_standin/info":
                return self._send(200, state.info())
            if method == "POST" and path == "/_standin/reset":
                state.reset()
                return self._send(200, {"ok": True})
            if method == "POST" and path == "/_standin/plan":
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                    actions = req["actions"]
                    for a in actions:
                        if "raw" in a:
                            a["raw"] = a["raw"].encode()
                    state.plan(req["route"], *actions)
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    return self._send(400, {"error": f"bad plan: {e}"})
                return self._send(200, {"ok": True})
            return self._send(404, {"error": "unknown control path"})

        def _handle(self):
            method = self.command
            # The request target exactly as sent: http.server rewrites a
            # leading "//" in self.path, which would hide a double slash.
            words = self.requestline.split()
            target = words[1] if len(words) >= 2 else self.path
            path, _, query = target.partition("?")
            if path.startswith("/_standin/"):
                return self._control(method, path)
            pairs = parse_qsl(query, keep_blank_values=True)
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if 0 < length <= 65536 else b""
            body_pairs = parse_qsl(raw_body.decode(errors="replace"), keep_blank_values=True)
            entra = ENTRA_PATH.match(path)
            if path == IMDS_PATH:
                route = "imds"
                problems = state.check_imds(method, pairs, headers)
            elif entra:
                route = "entra"
                problems = state.check_entra(method, unquote(entra.group(1)), pairs,
                                             body_pairs, headers)
            elif path.startswith("/secrets/"):
                route = "vault"
                problems = state.check_vault(method, pairs, headers)
            else:
                route = "other"
                problems = [f"unknown path {path}"]
            rec = {"route": route, "method": method, "path": path,
                   "raw_query": query, "query": pairs, "headers": headers,
                   "form": body_pairs if route == "entra" else [],
                   "time": time.monotonic(), "problems": problems}
            state._record(rec)
            if route == "other":
                return self._send(404, {"error": {"code": "NotFound", "message": problems[0]}})
            if problems:
                return self._send(400, _error_body(route, 400, "; ".join(problems)))

            action = state._next_action(route) or {}
            if action.get("delay"):
                if state._stopping.wait(float(action["delay"])):
                    return
            if action.get("close"):
                self.close_connection = True
                return
            headers_out = dict(action.get("headers") or {})
            if "retry_after" in action:
                headers_out["Retry-After"] = action["retry_after"]
            status = int(action.get("status", 200))
            if "raw" in action:
                return self._send(status, raw=action["raw"], headers=headers_out)
            if "json" in action:
                return self._send(status, action["json"], headers=headers_out)
            if status != 200:
                return self._send(status, _error_body(route, status, f"scripted {status}"),
                                  headers=headers_out)
            if route == "entra":
                body = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                        "access_token": state.token}
                return self._send(200, body, headers=headers_out)
            if route == "imds":
                now = int(time.time())
                body = {"access_token": state.token, "client_id": state.client_id or
                        "00000000-0000-0000-0000-000000000000", "expires_in": "86399",
                        "expires_on": str(now + 86399), "ext_expires_in": "86399",
                        "not_before": str(now), "resource": RESOURCE, "token_type": "Bearer"}
                return self._send(200, body, headers=headers_out)
            name = unquote(path[len("/secrets/"):])
            if name != state.secret_name:
                return self._send(404, _error_body("vault", 404,
                                                   f"A secret with (name/id) {name} was not found"))
            body = {"value": state.secret_value,
                    "id": f"{state.url}/secrets/{name}/{secrets.token_hex(16)}",
                    "attributes": {"enabled": True, "created": 1700000000,
                                   "updated": 1700000000,
                                   "recoveryLevel": "Recoverable+Purgeable",
                                   "recoverableDays": 90},
                    "tags": {}}
            return self._send(200, body, headers=headers_out)

        def do_GET(self):
            self._handle()

        def do_POST(self):
            self._handle()

        def do_PUT(self):
            self._handle()

        def do_DELETE(self):
            self._handle()

    return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    ap.add_argument("--client-id", default=None, help="client_id IMDS must receive")
    ap.add_argument("--secret-name", default="postgres-connection-string")
    ap.add_argument("--secret-value", default=None)
    ap.add_argument("--token", default=None)
    ap.add_argument("--tenant-id", default=None, help="tenant the Entra ID path must name")
    ap.add_argument("--assertion", default=None, help="client_assertion Entra ID must receive")
    args = ap.parse_args(argv)
    s = StandIn(args.host, args.port, args.client_id, args.secret_name,
                args.secret_value, args.token, args.tenant_id, args.assertion)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    s.start()
    print(s.port, flush=True)
    done.wait()
    s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
