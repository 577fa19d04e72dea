"""The database going away under the server, and shutdown while busy.

These tests use their own PostgreSQL cluster so that stopping it never
disturbs the shared server of the other modules."""

import signal
import socket
import threading
import time
import uuid
import json

import pytest

from harness import (
    PgCluster, assert_error, create_payment, parse_raw_response, payment_body, run_concurrently,
    wait_until, OPERATOR_TOKEN,
)


@pytest.fixture(scope="module")
def fpg():
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def fserver(start_server, fpg):
    if not fpg.running:
        fpg.start()
    srv = start_server(PAYTRACKR_DATABASE_URL=fpg.url)
    yield srv
    if not fpg.running:
        fpg.start()
    srv.stop()
    srv.assert_clean()


def _assert_503(r):
    assert_error(r, 503, "unavailable")
    ra = r.headers.get("retry-after", "")
    assert ra.isdigit() and int(ra) >= 1, r.headers


def _timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def _post_until_201(api, deadline_s=30.0):
    """POSTs until one answers 201; every other answer must be 503
    unavailable. Returns (the 201 response, number of 503s)."""
    unavailable = 0
    deadline = time.monotonic() + deadline_s
    while True:
        r = api.request("POST", "/v1/payments", payment_body(), timeout=10)
        if r.status == 201:
            return r, unavailable
        _assert_503(r)
        unavailable += 1
        assert time.monotonic() < deadline, "no 201 within %.0fs of the database coming back" % deadline_s
        time.sleep(0.1)


def test_database_stopped_gives_503_then_recovers(fserver, fpg):
    api, admin = fserver.api, fserver.admin
    before = create_payment(api)
    fpg.stop()
    for call in (lambda: api.request("POST", "/v1/payments", payment_body(), timeout=10),
                 lambda: api.request("GET", "/v1/payments/%s" % before["id"], timeout=10),
                 lambda: api.request("GET", "/v1/payments", timeout=10),
                 lambda: api.request("PATCH", "/v1/payments/%s" % before["id"], {"description": "x"},
                                     timeout=10),
                 lambda: api.request("GET", "/v1/events", timeout=10),
                 lambda: api.request("GET", "/v1/stats", timeout=10)):
        r, took = _timed(call)
        _assert_503(r)
        assert took < 5.0, "a request took %.1fs while the database was down" % took
    wait_until(lambda: fserver.probe("/readyz") == 503, 10, 0.1, "/readyz 503 with the database down")
    assert admin.get("/healthz").status == 200
    assert fserver.alive()
    fpg.start()
    created, _ = _post_until_201(api)
    wait_until(lambda: fserver.probe("/readyz") == 200, 20, 0.1, "/readyz 200 after the database is back")
    assert api.get("/v1/payments/%s" % before["id"]).json == before
    assert api.get("/v1/payments/%s" % created.json["id"]).status == 200
    # and it stays healthy
    for _ in range(8):
        assert api.post("/v1/payments", payment_body()).status == 201


def test_terminated_backends_are_replaced(fserver, fpg):
    api = fserver.api
    # use every pooled connection once
    results = run_concurrently(8, lambda i: api.post("/v1/payments", payment_body()))
    assert all(not isinstance(r, BaseException) and r.status == 201 for r in results), results
    assert fpg.terminate_backends() >= 1
    _, unavailable = _post_until_201(api, 15.0)
    assert unavailable <= 1, "%d requests got 503 after the backends were terminated" % unavailable
    for _ in range(10):
        r = api.post("/v1/payments", payment_body())
        assert r.status == 201, r
    results = run_concurrently(8, lambda i: api.get("/v1/payments?limit=1"))
    assert all(not isinstance(r, BaseException) and r.status == 200 for r in results), results
    wait_until(lambda: fserver.probe("/readyz") == 200, 10, 0.1, "/readyz 200")


def test_repeated_backend_termination(fserver, fpg):
    api = fserver.api
    for _ in range(3):
        fpg.terminate_backends()
        _post_until_201(api, 15.0)
    assert fserver.alive()


def test_database_down_at_start(start_server, fpg):
    if not fpg.running:
        fpg.start()
    db = "late_" + uuid.uuid4().hex[:8]
    fpg.psql("CREATE DATABASE %s" % db, db="postgres")
    url = "postgresql://postgres@127.0.0.1:%d/%s" % (fpg.port, db)
    fpg.stop()
    try:
        srv = start_server(wait="health", PAYTRACKR_DATABASE_URL=url)
        assert srv.probe("/readyz") == 503
        r, took = _timed(lambda: srv.api.request("POST", "/v1/payments", payment_body(), timeout=10))
        _assert_503(r)
        assert took < 5.0
    finally:
        fpg.start()
    _post_until_201(srv.api)
    wait_until(lambda: srv.probe("/readyz") == 200, 20, 0.1, "/readyz 200 once the database is up")
    srv.stop()
    srv.assert_clean()


def test_small_pool_queues_concurrent_requests(start_server, pg):
    srv = start_server(PAYTRACKR_DB_POOL_SIZE="1")
    results = run_concurrently(20, lambda i: srv.api.post("/v1/payments", payment_body()))
    assert all(not isinstance(r, BaseException) and r.status == 201 for r in results), results
    srv.stop()
    srv.assert_clean()


def _raw_post_head(body_len):
    return (b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + OPERATOR_TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(body_len).encode()
            + b"\r\nConnection: close\r\n\r\n")


def _read_all(sock, timeout):
    sock.settimeout(timeout)
    buf = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return buf


def _unread_by_server(server_port, client_sock):
    """Bytes the client sent that wait in the server's receive queue (from
    /proc/net/tcp*: lws listens on an IPv6 socket, so 127.0.0.1 shows as a
    v4-mapped address there), or None while no such connection shows."""
    local = ":%04X" % server_port
    remote = ":%04X" % client_sock.getsockname()[1]
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(local) and fields[2].endswith(remote):
                    return int(fields[4].split(":")[1], 16)
    return None


def test_sigterm_completes_in_flight_requests(start_server, pg):
    srv = start_server()
    tag = "sig" + uuid.uuid4().hex[:8]
    bodies = [json.dumps(payment_body(payer="%s-%d" % (tag, i))).encode() for i in range(5)]
    socks = []
    for b in bodies:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(_raw_post_head(len(b)) + b[:len(b) // 2])
        socks.append(s)
    # The server has read the headers and half of each body...
    wait_until(lambda: all(_unread_by_server(srv.port, s) == 0 for s in socks), 10,
               message="the server reading what was sent")
    srv.signal(signal.SIGTERM)
    # ...and is draining before the bodies complete.
    wait_until(lambda: "SIGTERM: draining" in srv.stderr_text(), 10, message="the drain to start")
    for s, b in zip(socks, bodies):
        s.sendall(b[len(b) // 2:])
    answers = [parse_raw_response(_read_all(s, 15)) for s in socks]
    for s in socks:
        s.close()
    for status, _, body, raw in answers:
        assert status == 201, raw[:300]
    rc = srv.wait_exit(20)
    assert rc == 0, "exit status %r after SIGTERM" % rc
    assert pg.count("SELECT count(*) FROM payments WHERE payer LIKE '%s-%%'" % tag) == 5
    srv.assert_clean()


def test_sigterm_under_load_loses_no_acknowledged_write(start_server, pg):
    srv = start_server()
    tag = "load" + uuid.uuid4().hex[:8]
    stop = threading.Event()
    outcomes = []
    lock = threading.Lock()

    def client(n):
        i = 0
        while not stop.is_set():
            i += 1
            body = payment_body(payer="%s-%d-%d" % (tag, n, i))
            try:
                r = srv.api.request("POST", "/v1/payments", body, timeout=15)
                out = r.status
                if r.status not in (201, 503):
                    out = ("unexpected", r)
            except OSError as exc:
                out = ("conn", type(exc).__name__)
                stop.set()
            with lock:
                outcomes.append(out)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(1 for o in outcomes if o == 201) >= 30, 30, 0.01, "30 payments under load")
    srv.signal(signal.SIGTERM)
    rc = srv.wait_exit(30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert rc == 0, "exit status %r after SIGTERM under load" % rc
    unexpected = [o for o in outcomes if isinstance(o, tuple) and o[0] == "unexpected"]
    assert not unexpected, unexpected
    acknowledged = sum(1 for o in outcomes if o == 201)
    rows = pg.count("SELECT count(*) FROM payments WHERE payer LIKE '%s-%%'" % tag)
    assert rows == acknowledged, ("%d payments written but %d acknowledged with 201: a write "
                                  "committed during shutdown lost its response" % (rows, acknowledged))
    srv.assert_clean()
