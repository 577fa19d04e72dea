"""Secrets hygiene: after every kind of error, no error body, no /metrics
output and no log line holds a token (valid or not) or the database
password."""

import json
import socket

from harness import (
    OPERATOR_TOKEN, VIEWER_TOKEN, create_payment, free_port, payment_body, raw_exchange,
)

DB_PASSWORD = "pw-Xq7-never-shown"
WRONG_TOKEN = "wrong-token-Zq9-never-shown"
SECRETS = (OPERATOR_TOKEN, VIEWER_TOKEN, WRONG_TOKEN, DB_PASSWORD)


def url_with_password(port):
    # The test cluster trusts local connections, so libpq never needs the
    # password; the server still holds it in its connection string.
    return "postgresql://postgres:%s@127.0.0.1:%d/paytrackr" % (DB_PASSWORD, port)


def assert_no_secret(what, data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for secret in SECRETS:
        assert secret not in text, "%s contains %r:\n%s" % (what, secret, text[-3000:])


def exercise_errors(srv):
    """Provokes the error answers; returns [(label, raw body)]."""
    api = srv.api
    p = create_payment(api)
    pid = p["id"]
    seen = []

    def keep(label, r):
        assert r.status >= 400 or label.startswith("ok"), (label, r)
        seen.append((label, r.raw))
        for name, value in r.headers.items():
            assert_no_secret("header %s of %s" % (name, label), value)

    keep("401 wrong token", api.get("/v1/stats", token=WRONG_TOKEN))
    keep("401 no token", api.get("/v1/stats", token=None))
    keep("401 basic", api.get("/v1/stats", token=None,
                              headers={"Authorization": "Basic " + WRONG_TOKEN}))
    keep("401 token in query", api.get("/v1/stats?access_token=" + WRONG_TOKEN, token=None))
    keep("400 token as query", api.get("/v1/payments?access_token=" + OPERATOR_TOKEN))
    keep("400 token as filter value", api.get("/v1/payments?status=" + OPERATOR_TOKEN))
    keep("400 token as cursor", api.get("/v1/payments?cursor=" + OPERATOR_TOKEN))
    keep("400 idempotency key", api.post("/v1/payments", payment_body(),
                                         headers={"Idempotency-Key": "\x01" + VIEWER_TOKEN}))
    keep("403 viewer writes", api.post("/v1/payments", payment_body(), token=VIEWER_TOKEN))
    keep("404", api.get("/v1/payments/00000000-0000-0000-0000-000000000000"))
    keep("404 route", api.get("/v1/" + OPERATOR_TOKEN))
    keep("405", api.request("PUT", "/v1/payments/" + pid, body={}))
    keep("412", api.patch("/v1/payments/" + pid, {"description": "x"},
                          headers={"If-Match": '"' + OPERATOR_TOKEN + '"'}))
    keep("413", api.post("/v1/payments", raw=b"{" + b" " * 70000 + b"}"))
    keep("415", api.post("/v1/payments", payment_body(), headers={"Content-Type": "text/plain"}))
    keep("422", api.post("/v1/payments", payment_body(amount="12.50")))
    keep("422 unknown field", api.post("/v1/payments", payment_body(token=OPERATOR_TOKEN)))
    keep("400 malformed", api.post("/v1/payments", raw=b'{"payer": "' + WRONG_TOKEN.encode()))
    keep("414", api.get("/v1/payments?q=" + "a" * 9000))
    # raw junk with a token in it
    raw = raw_exchange("127.0.0.1", srv.port,
                       b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       + WRONG_TOKEN.encode() + b"\x00\xff\r\n\r\n", timeout=5)
    seen.append(("raw junk", raw))
    # over the rate limit
    last = None
    for _ in range(60):
        last = api.get("/v1/stats")
        if last.status == 429:
            break
    assert last.status == 429, last
    keep("429", last)
    return seen


def test_no_secret_in_error_bodies_metrics_or_logs(start_server, pg):
    srv = start_server(PAYTRACKR_DATABASE_URL=url_with_password(pg.port),
                       PAYTRACKR_RATE_LIMIT_RPS=1, PAYTRACKR_RATE_LIMIT_BURST=30)
    for label, body in exercise_errors(srv):
        assert_no_secret("the %s answer" % label, body)
        if label != "raw junk" and body:
            assert "error" in json.loads(body), (label, body)
    assert_no_secret("/metrics", srv.admin.get("/metrics").raw)
    assert_no_secret("/readyz", srv.admin.get("/readyz").raw)
    srv.stop()
    assert_no_secret("the server's log", srv.stderr_text() + srv.stdout_text())
    srv.assert_clean()


def test_no_secret_while_the_database_is_unreachable(start_server):
    port = free_port()  # nothing listens there
    srv = start_server(wait="health", PAYTRACKR_DATABASE_URL=url_with_password(port))
    bodies = [
        srv.api.post("/v1/payments", payment_body()),
        srv.api.get("/v1/stats"),
        srv.api.get("/v1/payments"),
        srv.api.get("/v1/stats", token=WRONG_TOKEN),
    ]
    assert bodies[0].status == 503, bodies[0]
    for r in bodies:
        assert_no_secret("a %d answer" % r.status, r.raw)
    for path in ("/metrics", "/readyz", "/healthz"):
        assert_no_secret(path, srv.admin.get(path).raw)
    srv.stop()
    log = srv.stderr_text() + srv.stdout_text()
    assert "database" in log  # the failure is logged, without the password
    assert_no_secret("the server's log", log)
    srv.assert_clean()


def test_no_secret_in_websocket_refusals(server):
    """A refused upgrade (bad token in ?access_token=) answers without the
    token."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        s.sendall(("GET /v1/stream?access_token=%s HTTP/1.1\r\nHost: x\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: paytrackr.v1\r\n\r\n"
                   % WRONG_TOKEN).encode())
        data = b""
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 101"):
                    head, _, body = data.partition(b"\r\n\r\n")
                    if b"content-length" not in head.lower() or body:
                        break
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        s.close()
    assert not data.startswith(b"HTTP/1.1 101"), data[:200]
    assert_no_secret("the refused upgrade", data)
    assert_no_secret("the shared server's log", server.stderr_text())
