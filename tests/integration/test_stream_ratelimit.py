"""The WebSocket stream obeys the same rate limits as HTTP: every operation
message (create, update, list) takes a token from its caller's bucket, the
one HTTP requests use; and failed authentications on the upgrade count
toward the peer address's failed-authentication allowance, past which the
upgrade is refused with 429 like an HTTP request would be."""

import asyncio
import base64
import json
import os
import socket
import time
import uuid

import pytest

import harness
import stream_helpers as sh
from harness import OPERATOR_TOKEN, VIEWER_TOKEN, Api, assert_error, db_unchanged, free_port

RATE_ENV = {"PAYTRACKR_RATE_LIMIT_RPS": 1, "PAYTRACKR_RATE_LIMIT_BURST": 3}


def run(coro):
    return asyncio.run(coro)


async def send_ops(ws, msgs):
    """Sends the operations back to back, then collects their answers (in
    any order); returns them in the order sent."""
    rids = []
    for msg in msgs:
        rid = uuid.uuid4().hex
        rids.append(rid)
        await ws.send(json.dumps(dict(msg, request_id=rid)))
    answers = {}
    while len(answers) < len(rids):
        msg, _ = await sh.recv_until(ws, lambda m: m.get("request_id") in rids,
                                     what="the answers to %d operations" % len(rids))
        answers[msg["request_id"]] = msg
    return [answers[rid] for rid in rids]


def assert_rate_limited(res):
    assert res["type"] == "result" and res["status"] == 429, res
    assert res["body"]["error"]["code"] == "rate_limited", res
    assert res["body"]["error"]["message"], res


async def until_refilled(ws, timeout=10.0):
    """Polls with `list` until it passes (a refused one takes no token)."""
    deadline = time.monotonic() + timeout
    while True:
        res = await sh.request(ws, {"type": "list", "query": {}})
        if res["status"] == 200:
            return res
        assert_rate_limited(res)
        assert time.monotonic() < deadline, "the bucket never refilled"
        await asyncio.sleep(0.1)


def test_a_burst_of_operations_is_limited_and_the_socket_stays_open(start_server, pg):
    srv = start_server(**RATE_ENV)

    async def scenario():
        async with sh.connect(srv) as ws:
            results = await send_ops(ws, [{"type": "list", "query": {}}] * 10)
            assert [r["status"] for r in results[:3]] == [200] * 3, results[:3]
            for res in results[3:]:
                assert_rate_limited(res)
            # create and update are operations too: refused, nothing written
            with db_unchanged(pg):
                create, update = await send_ops(ws, [
                    {"type": "create", "idempotency_key": harness.unique("rl"),
                     "payment": harness.payment_body()},
                    {"type": "update", "id": str(uuid.uuid4()), "if_version": 1,
                     "changes": {"status": "settled"}},
                ])
                assert_rate_limited(create)
                assert_rate_limited(update)
            # subscribe is not limited (once per connection)
            head = await sh.subscribe(ws)
            assert head >= 0
            # the same socket works again once a token has come back
            res = await until_refilled(ws)
            assert isinstance(res["body"]["data"], list), res

    run(scenario())
    srv.stop()
    srv.assert_clean()


def test_http_and_websocket_share_the_bucket_of_a_token(start_server):
    srv = start_server(**RATE_ENV)

    async def scenario():
        async with sh.connect(srv) as ws:
            # (the upgrade itself takes no token)
            assert srv.api.get("/v1/payments").status == 200
            assert srv.api.get("/v1/payments").status == 200
            (res,) = await send_ops(ws, [{"type": "list", "query": {}}])
            assert res["status"] == 200, res
            # the bucket of 3 is empty, whichever way it was used up
            (res,) = await send_ops(ws, [{"type": "list", "query": {}}])
            assert_rate_limited(res)
            assert_error(srv.api.get("/v1/payments"), 429, "rate_limited")
            # another token has its own bucket
            async with sh.connect(srv, token=VIEWER_TOKEN) as other:
                (res,) = await send_ops(other, [{"type": "list", "query": {}}])
                assert res["status"] == 200, res
            # and once refilled, an HTTP request is refused again after the
            # socket took the token
            await until_refilled(ws)
            assert_error(srv.api.get("/v1/payments"), 429, "rate_limited")

    run(scenario())
    srv.stop()
    srv.assert_clean()


# ---- failed authentications on the upgrade -----------------------------------

# A client on another loopback address: only 127.0.0.1 and ::1 (where local
# proxies connect from) are exempt from the per-address limits, so tests
# stay on loopback.
CLIENT_ADDR = "127.0.0.2"


def local_address():
    """The loopback address the limited client connects from."""
    return CLIENT_ADDR


def upgrade(host, port, token, source=CLIENT_ADDR):
    """A raw WebSocket upgrade of /v1/stream; (status, headers, json)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /v1/stream HTTP/1.1", "Host: %s:%d" % (host, port), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: " + sh.SUBPROTOCOL]
    if token:
        lines.append("Authorization: Bearer " + token)
    raw = harness.raw_exchange(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode(),
                               source=source)
    status, headers, body, _ = harness.parse_raw_response(raw)
    return status, headers, body


def assert_upgrade_limited(result):
    status, headers, body = result
    assert status == 429, result
    assert body["error"]["code"] == "rate_limited", result
    assert "www-authenticate" not in headers, headers
    assert headers.get("retry-after", "").isdigit(), headers


def test_failed_upgrades_count_toward_the_address_limit(start_server):
    addr = local_address()
    if not addr:
        pytest.skip("no non-loopback address (loopback peers are not limited)")
    srv = start_server(PAYTRACKR_LISTEN="127.0.0.1:%d" % free_port(),
                       PAYTRACKR_AUTH_FAIL_RPS=1, PAYTRACKR_AUTH_FAIL_BURST=3,
                       PAYTRACKR_RATE_LIMIT_RPS=0)
    api = Api("127.0.0.1", srv.port, source=addr)
    # a caller that works from this address before the trouble starts
    assert upgrade("127.0.0.1", srv.port, VIEWER_TOKEN)[0] == 101
    # failed upgrades and failed HTTP requests use up one allowance of 3
    for token in ("wrong-token", None):
        status, headers, body = upgrade("127.0.0.1", srv.port, token)
        assert status == 401 and body["error"]["code"] == "unauthenticated", (status, body)
        assert "www-authenticate" in headers
    assert_error(api.get("/v1/stats", token="wrong-token"), 401, "unauthenticated")
    # over it: refused like HTTP refuses, a wrong token or a right one new here
    assert_upgrade_limited(upgrade("127.0.0.1", srv.port, "wrong-token"))
    assert_upgrade_limited(upgrade("127.0.0.1", srv.port, OPERATOR_TOKEN))
    assert_error(api.get("/v1/stats", token=OPERATOR_TOKEN), 429, "rate_limited")
    # the caller that was already working from here is not locked out
    assert upgrade("127.0.0.1", srv.port, VIEWER_TOKEN)[0] == 101
    # 127.0.0.1 (where local proxies connect from) is not limited
    assert upgrade("127.0.0.1", srv.port, "wrong-token", source=None)[0] == 401
    # once the allowance refills, the new caller gets in
    harness.wait_until(lambda: upgrade("127.0.0.1", srv.port, OPERATOR_TOKEN)[0] == 101, 10,
                       interval=0.2, message="the upgrade to be allowed again")
    srv.stop()
    srv.assert_clean()
