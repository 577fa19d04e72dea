"""Limits against abuse: the connection cap, per-token rate limits, the
failed-authentication limit per address, the URL length limit, and
slow-client timeouts for headers and bodies."""

import json
import re
import socket
import time

import pytest

from harness import (
    OPERATOR_TOKEN, VIEWER_TOKEN, Api, assert_error, db_unchanged, free_port, parse_raw_response,
    payment_body, wait_until,
)


def metric(srv, name):
    """The value of one metric line (name with labels, exactly) on /metrics."""
    text = srv.admin.get("/metrics").raw.decode()
    m = re.search(r"(?m)^%s (\d+(?:\.\d+)?)$" % re.escape(name), text)
    assert m, "%s not in /metrics:\n%s" % (name, text[-2000:])
    return float(m.group(1))


def held_open(sock, wait=0.5):
    """True when the server keeps `sock` open for `wait` seconds without
    sending anything; False when it closes it."""
    sock.settimeout(wait)
    try:
        data = sock.recv(1)
    except socket.timeout:
        return True
    except ConnectionResetError:
        return False
    assert not data, "unexpected bytes %r" % data
    return False


def closed_within(sock, seconds, feed=None, interval=0.3):
    """Waits until the server closes `sock` (returns the seconds taken and
    any bytes it sent), calling feed(sock) every `interval` meanwhile.
    Returns (None, data) when it is still open after `seconds`."""
    t0 = time.monotonic()
    data = b""
    while time.monotonic() - t0 < seconds:
        sock.settimeout(interval)
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - t0, data
            data += chunk
            continue
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - t0, data
        if feed:
            try:
                feed(sock)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t0, data
    return None, data


# ---- connection cap ----------------------------------------------------------


def test_connections_beyond_the_cap_are_closed_at_once(start_server):
    cap = 6
    srv = start_server(PAYTRACKR_MAX_CONNECTIONS=cap, PAYTRACKR_HEADER_TIMEOUT_SECONDS=30)
    baseline = int(metric(srv, "paytrackr_connections_open"))  # the LISTEN connection
    socks = []
    try:
        for _ in range(cap - baseline):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            socks.append(s)
            assert held_open(s), "a connection under the cap was closed"
        assert metric(srv, "paytrackr_connections_open") == cap
        for _ in range(3):
            extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            t0 = time.monotonic()
            try:
                assert not held_open(extra, wait=2.0), "a connection over the cap was kept"
                assert time.monotonic() - t0 < 1.0
            finally:
                extra.close()
        assert metric(srv, "paytrackr_connections_refused_total") >= 3
        assert srv.stderr_text().count("PAYTRACKR_MAX_CONNECTIONS (6) reached") == 1
        # the admin port is not part of the cap
        assert srv.admin.get("/healthz").status == 200
        socks.pop().close()
        wait_until(lambda: metric(srv, "paytrackr_connections_open") < cap, 5,
                   message="the closed connection to be counted")
        assert srv.api.get("/v1/stats").status == 200
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: metric(srv, "paytrackr_connections_open") == baseline, 5,
               message="every connection to be counted as closed")
    srv.stop()
    srv.assert_clean()


# ---- per-token rate limit ----------------------------------------------------


def test_token_over_its_rate_gets_429_with_retry_after(start_server):
    srv = start_server(PAYTRACKR_RATE_LIMIT_RPS=1, PAYTRACKR_RATE_LIMIT_BURST=5)
    api = srv.api
    conn = api.connection()
    try:
        statuses = [api.get("/v1/stats", conn=conn).status for _ in range(5)]
        assert statuses == [200] * 5
        r = api.get("/v1/stats", conn=conn)
        assert_error(r, 429, "rate_limited")
        assert r.headers.get("retry-after", "").isdigit(), r.headers
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 2
        # another token has its own bucket
        assert api.get("/v1/stats", token=VIEWER_TOKEN).status == 200
        time.sleep(wait + 0.2)
        assert api.get("/v1/stats", conn=conn).status == 200
    finally:
        conn.close()
    assert metric(srv, 'paytrackr_rate_limited_total{limit="caller"}') >= 1
    srv.stop()
    srv.assert_clean()


def test_rate_limit_zero_disables_it(start_server):
    srv = start_server(PAYTRACKR_RATE_LIMIT_RPS=0, PAYTRACKR_RATE_LIMIT_BURST=1)
    conn = srv.api.connection()
    try:
        statuses = {srv.api.get("/v1/nothing-here", conn=conn).status for _ in range(40)}
    finally:
        conn.close()
    assert statuses == {404}


# A client on another loopback address: only 127.0.0.1 and ::1 (where local
# proxies connect from) are exempt from the per-address limits, so tests
# stay on loopback.
CLIENT_ADDR = "127.0.0.2"


def local_address():
    """The loopback address the limited client connects from."""
    return CLIENT_ADDR


def test_failed_authentications_are_limited_per_address(start_server):
    addr = local_address()
    if not addr:
        pytest.skip("no non-loopback address (loopback peers are not limited)")
    srv = start_server(PAYTRACKR_LISTEN="127.0.0.1:%d" % free_port(),
                       PAYTRACKR_AUTH_FAIL_RPS=1, PAYTRACKR_AUTH_FAIL_BURST=3,
                       PAYTRACKR_RATE_LIMIT_RPS=0)
    api = Api("127.0.0.1", srv.port, source=addr)
    # a caller that works from this address before the trouble starts
    assert api.get("/v1/stats", token=VIEWER_TOKEN).status == 200
    for _ in range(3):
        assert_error(api.get("/v1/stats", token="wrong-token"), 401, "unauthenticated")
    r = api.get("/v1/stats", token="wrong-token")
    assert_error(r, 429, "rate_limited")
    assert "www-authenticate" not in r.headers
    assert r.headers.get("retry-after", "").isdigit(), r.headers
    # While blocked, a token new to this address gets the same answer as a
    # wrong one: a right guess is not told apart.
    assert_error(api.get("/v1/stats"), 429, "rate_limited")
    assert_error(api.get("/v1/stats", token=None), 429, "rate_limited")
    # the caller that was already working from here is not locked out
    assert api.get("/v1/stats", token=VIEWER_TOKEN).status == 200
    # 127.0.0.1 (where local proxies connect from) is not limited
    assert_error(srv.api.get("/v1/stats", token="wrong-token"), 401, "unauthenticated")
    time.sleep(int(r.headers["retry-after"]) + 0.2)
    assert api.get("/v1/stats").status == 200
    # successful requests do not use up the allowance
    for _ in range(10):
        assert api.get("/v1/stats").status == 200
    assert metric(srv, 'paytrackr_rate_limited_total{limit="auth_failures"}') >= 3
    srv.stop()
    srv.assert_clean()


# ---- URL length --------------------------------------------------------------


def test_url_over_the_limit_is_414(api, pg):
    with db_unchanged(pg):
        r = api.get("/v1/payments?q=" + "a" * 9000)
        assert_error(r, 414, "uri_too_long")
        r = api.get("/v1/" + "x" * 9000)
        assert_error(r, 414, "uri_too_long")
        r = api.post("/v1/payments?" + "x" * 9000, payment_body())
        assert_error(r, 414, "uri_too_long")


def test_url_under_the_limit_is_not_414(api):
    r = api.get("/v1/payments?q=" + "a" * 7000)
    assert r.status != 414, r


def test_url_limit_is_configurable(start_server):
    srv = start_server(PAYTRACKR_MAX_URL_BYTES=300)
    assert_error(srv.api.get("/v1/payments?q=" + "a" * 400), 414, "uri_too_long")
    assert srv.api.get("/v1/payments?q=" + "a" * 200).status == 200
    srv.stop()
    srv.assert_clean()


# ---- slow clients ------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_server(start_server):
    return start_server(PAYTRACKR_HEADER_TIMEOUT_SECONDS=2, PAYTRACKR_REQUEST_TIMEOUT_SECONDS=3)


def test_headers_trickled_forever_are_cut_off(slow_server):
    s = socket.create_connection(("127.0.0.1", slow_server.port), timeout=5)
    try:
        s.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: localhost\r\n")
        took, data = closed_within(s, 10, feed=lambda k: k.sendall(b"X-Slow: a\r\n"))
    finally:
        s.close()
    assert took is not None, "headers trickled for 10 s and the connection is still open"
    assert took <= 2 + 1.5, took
    assert b"200 OK" not in data


def test_silent_connection_is_closed(slow_server):
    s = socket.create_connection(("127.0.0.1", slow_server.port), timeout=5)
    try:
        took, data = closed_within(s, 10)
    finally:
        s.close()
    assert took is not None and took <= 2 + 1.5, took
    assert data == b""


def test_body_trickled_forever_gets_408_or_close(slow_server, pg):
    body = json.dumps(payment_body()).encode()
    head = ("POST /v1/payments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (OPERATOR_TOKEN, len(body))).encode()
    pos = [0]

    def feed(sock):
        if pos[0] < len(body) - 1:  # never the last byte
            sock.sendall(body[pos[0]:pos[0] + 1])
            pos[0] += 1

    before = metric(slow_server, "paytrackr_request_timeouts_total")
    with db_unchanged(pg):
        s = socket.create_connection(("127.0.0.1", slow_server.port), timeout=5)
        try:
            s.sendall(head)
            took, data = closed_within(s, 15, feed=feed)
        finally:
            s.close()
    assert took is not None, "a body trickled for 15 s and the connection is still open"
    assert took <= 3 + 1.5, took
    if data:
        status, _, js, _ = parse_raw_response(data)
        assert status == 408, data[:300]
        assert js["error"]["code"] == "request_timeout"
    assert metric(slow_server, "paytrackr_request_timeouts_total") == before + 1


def test_slow_but_timely_request_is_served(slow_server):
    body = json.dumps(payment_body()).encode()
    head = ("POST /v1/payments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (OPERATOR_TOKEN, len(body))).encode()
    s = socket.create_connection(("127.0.0.1", slow_server.port), timeout=10)
    try:
        s.sendall(head[:20])
        time.sleep(1.0)
        s.sendall(head[20:])
        time.sleep(1.0)
        s.sendall(body[:10])
        time.sleep(1.0)
        s.sendall(body[10:])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 201"), data[:300]
