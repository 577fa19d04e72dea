"""GET /v1/stream: the upgrade, the messages, operations over the socket,
filters, resume, pings, draining."""

import asyncio
import json
import signal
import time

import pytest
import websockets

import harness
import stream_helpers as sh


def run(coro):
    return asyncio.run(coro)


# ---- the upgrade --------------------------------------------------------------

def test_upgrade_needs_a_valid_token(server):
    async def scenario():
        for token in (None, "wrong-token"):
            with pytest.raises(websockets.InvalidStatusCode) as exc:
                async with sh.connect(server, token=token):
                    pass
            assert exc.value.status_code == 401
        # a browser passes the token in the query string
        async with sh.connect(server, token=None,
                              query="access_token=" + harness.VIEWER_TOKEN) as ws:
            await sh.subscribe(ws)
    run(scenario())


def test_upgrade_refused_elsewhere_than_v1_stream(server):
    async def scenario():
        with pytest.raises(websockets.InvalidStatusCode) as exc:
            async with sh.connect(server, path="/v1/payments"):
                pass
        assert exc.value.status_code == 404
    run(scenario())


def test_plain_get_of_the_stream_is_a_clear_error(api):
    r = api.get("/v1/stream")
    harness.assert_error(r, 400, "bad_request")


# ---- bad messages ----------------------------------------------------------------

def test_bad_messages_get_errors_and_the_connection_stays_open(server):
    async def scenario():
        async with sh.connect(server) as ws:
            cases = [
                ("{not json", "malformed_json"),
                ("[1,2]", "malformed_json"),
                (json.dumps({"type": "launch"}), "unknown_type"),
                (json.dumps({"no": "type"}), "bad_request"),
                (json.dumps({"type": "subscribe", "after": -1}), "bad_request"),
                (json.dumps({"type": "subscribe", "after": "12"}), "bad_request"),
                (json.dumps({"type": "subscribe", "filter": {"status": "sleeping"}}), "bad_request"),
                (json.dumps({"type": "subscribe", "filter": {"currency": "XYZ"}}), "bad_request"),
                (json.dumps({"type": "subscribe", "filter": {"colour": "red"}}), "bad_request"),
                (json.dumps({"type": "subscribe", "filter": ["status"]}), "bad_request"),
                (json.dumps({"type": "subscribe", "filter": {"payer": ""}}), "bad_request"),
                (json.dumps({"type": "list", "request_id": "x", "query": [1]}), "bad_request"),
                (json.dumps({"type": "create", "payment": {}}), "bad_request"),  # no request_id
                (json.dumps({"type": "create", "request_id": "x"}), "bad_request"),  # no payment
                (json.dumps({"type": "update", "request_id": "x", "changes": {}}), "bad_request"),
                ("x" * 70000, "payload_too_large"),
                (b"\x00\x01binary", "bad_request"),
            ]
            for text, code in cases:
                await ws.send(text)
                msg = await sh.recv_json(ws)
                assert msg["type"] == "error" and msg["code"] == code, (text[:40], msg)
                assert isinstance(msg["message"], str) and msg["message"]
            # still usable afterwards
            head = await sh.subscribe(ws)
            assert head >= 0
            await ws.send(json.dumps({"type": "subscribe", "after": None}))
            msg = await sh.recv_json(ws)
            assert msg["code"] == "already_subscribed", msg
    run(scenario())


def test_list_arguments_that_cannot_be_query_parameters_get_400(server):
    async def scenario():
        async with sh.connect(server) as ws:
            cases = [
                ({"status": True}, "status"),
                ({"limit": [10]}, "limit"),
                ({"k%d" % i: "v" for i in range(33)}, None),
            ]
            for i, (query, field) in enumerate(cases):
                res = await sh.request(ws, {"type": "list", "query": query})
                assert res["type"] == "result" and res["status"] == 400, (i, res)
                assert res["body"]["error"]["code"] == "bad_request", res
                assert res["body"]["error"].get("field") == field, res
            # numbers stand for their literal text, as in a URL
            res = await sh.request(ws, {"type": "list", "query": {"limit": 1}})
            assert res["status"] == 200 and len(res["body"]["data"]) <= 1, res
    run(scenario())


def test_fragmented_message_is_assembled(server):
    async def scenario():
        async with sh.connect(server) as ws:
            text = json.dumps({"type": "list", "request_id": "frag-1", "query": {"limit": 1}})
            await ws.send([text[:7], text[7:20], text[20:]])  # three frames, one message
            msg = await sh.recv_json(ws)
            assert msg["type"] == "result" and msg["request_id"] == "frag-1", msg
            assert msg["status"] == 200
            # an oversized message in fragments is refused as a whole
            big = "y" * 40000
            await ws.send([big, big])
            msg = await sh.recv_json(ws)
            assert msg["code"] == "payload_too_large", msg
    run(scenario())


# ---- operations answer like HTTP ------------------------------------------------------

def test_create_update_list_answer_like_http(server, api):
    async def scenario():
        async with sh.connect(server) as ws:
            body = harness.payment_body(amount=700, currency="JPY")
            key = harness.unique("ws-key")
            res = await sh.request(ws, {"type": "create", "idempotency_key": key, "payment": body})
            assert res["type"] == "result" and res["status"] == 201, res
            created = res["body"]
            harness.assert_payment_shape(created)
            # the same key and body over HTTP: the stored answer, replayed
            r = api.post("/v1/payments", body, headers={"Idempotency-Key": key})
            assert r.status == 201 and r.headers.get("idempotent-replayed") == "true", r
            assert r.json == created

            # the same validation answer as HTTP, byte for byte (12.0 is not an integer)
            raw = '{"amount": 12.0, "currency": "EUR", "payer": "a", "payee": "b"}'
            rid = "bad-amount"
            await ws.send('{"type":"create","request_id":"%s","payment":%s}' % (rid, raw))
            res, _ = await sh.recv_until(ws, lambda m: m.get("request_id") == rid)
            r = api.post("/v1/payments", raw=raw)
            assert (res["status"], res["body"]) == (r.status, r.json), (res, r)
            assert r.status == 422

            # a member name written with escapes is the same name
            raw = json.dumps(harness.payment_body(amount=701))
            rid = "escaped-key"
            await ws.send('{"type":"create","request_id":"%s","pay\\u006dent":%s}' % (rid, raw))
            res, _ = await sh.recv_until(ws, lambda m: m.get("request_id") == rid)
            assert res["status"] == 201 and res["body"]["amount"] == 701, res

            # update, with a stale if_version: 412 like If-Match
            res = await sh.request(ws, {"type": "update", "id": created["id"], "if_version": 1,
                                        "changes": {"status": "settled"}})
            assert res["status"] == 200 and res["body"]["status"] == "settled", res
            assert res["body"]["version"] == 2
            res = await sh.request(ws, {"type": "update", "id": created["id"], "if_version": 1,
                                        "changes": {"status": "refunded"}})
            r = api.patch("/v1/payments/" + created["id"], {"status": "refunded"},
                          headers={"If-Match": '"1"'})
            assert (res["status"], res["body"]) == (r.status, r.json) and r.status == 412
            res = await sh.request(ws, {"type": "update", "id": created["id"],
                                        "changes": {"status": "pending"}})
            assert res["status"] == 409 and res["body"]["error"]["code"] == "invalid_transition"
            res = await sh.request(ws, {"type": "update", "id": "not-a-uuid", "changes": {}})
            assert res["status"] == 404

            # list with the same filters as GET /v1/payments
            res = await sh.request(ws, {"type": "list",
                                        "query": {"payer": body["payer"], "limit": 5}})
            r = api.get("/v1/payments?payer=%s&limit=5" % body["payer"])
            assert res["status"] == 200 and res["body"] == r.json, (res, r)
            assert [p["id"] for p in res["body"]["data"]] == [created["id"]]
            res = await sh.request(ws, {"type": "list", "query": {"limit": 0}})
            r = api.get("/v1/payments?limit=0")
            assert (res["status"], res["body"]) == (r.status, r.json) and r.status == 400
    run(scenario())


def test_viewer_may_list_and_subscribe_but_not_write(server):
    async def scenario():
        async with sh.connect(server, token=harness.VIEWER_TOKEN) as ws:
            res = await sh.request(ws, {"type": "create", "payment": harness.payment_body()})
            assert res["status"] == 403 and res["body"]["error"]["code"] == "forbidden", res
            res = await sh.request(ws, {"type": "update", "id": harness.unique(), "changes": {}})
            assert res["status"] == 403, res
            res = await sh.request(ws, {"type": "list", "query": {"limit": 1}})
            assert res["status"] == 200, res
            await sh.subscribe(ws)
    run(scenario())


# ---- events: backlog, live, filters, resume -------------------------------------------------

def test_resume_gets_exactly_the_missed_events_in_order(server, api, pg):
    async def scenario():
        start = sh.head_seq(pg)
        async with sh.connect(server) as ws:
            assert await sh.subscribe(ws, after=start) >= start
            first = [harness.create_payment(api) for _ in range(3)]
            got = []
            while len(got) < 3:
                msg = await sh.recv_json(ws)
                assert msg["type"] == "event", msg
                got.append(msg)
        assert [m["payment"]["id"] for m in got] == [p["id"] for p in first]
        assert all(m["event"] == "payment.created" for m in got)
        last = got[-1]["seq"]
        # disconnected: these happen meanwhile
        missed = [harness.create_payment(api) for _ in range(5)]
        api.patch("/v1/payments/" + missed[0]["id"], {"status": "settled"})
        api.delete("/v1/payments/" + missed[1]["id"])
        expected = sh.committed_seqs(pg, last)
        assert len(expected) == 7
        async with sh.connect(server) as ws:
            await sh.subscribe(ws, after=last)
            resumed = [await sh.recv_json(ws) for _ in range(7)]
            # nothing more arrives
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
        assert [m["seq"] for m in resumed] == expected
        assert [m["event"] for m in resumed] == ["payment.created"] * 5 + [
            "payment.updated", "payment.deleted"]
        assert resumed[5]["payment"]["status"] == "settled"
        for m in resumed:
            assert set(m) == {"type", "event", "seq", "at", "actor", "payment"}, m
            assert m["actor"] == {"name": "operator-" + harness.sha256_hex(harness.OPERATOR_TOKEN)[:8],
                                  "role": "operator"}, m
            harness.assert_payment_shape(m["payment"])
    run(scenario())


def test_after_null_starts_at_the_head(server, api, pg):
    async def scenario():
        harness.create_payment(api)
        async with sh.connect(server) as ws:
            head = await sh.subscribe(ws, after=None)
            # the listener's head: final, and at most a moment behind
            assert 0 <= head <= sh.head_seq(pg)
            p = harness.create_payment(api)
            msg, before = await sh.recv_until(ws, lambda m: m.get("payment", {}).get("id") == p["id"])
            seqs = [m["seq"] for m in before + [msg]]
            assert seqs == sh.committed_seqs(pg, head, msg["seq"]), (head, seqs)
    run(scenario())


def test_filters_apply_to_backlog_and_live(server, api, pg):
    async def scenario():
        start = sh.head_seq(pg)
        payer = harness.unique("filtered")
        want = [harness.create_payment(api, payer=payer, currency="JPY") for _ in range(2)]
        harness.create_payment(api, payer=payer, currency="EUR")
        harness.create_payment(api, currency="JPY")
        async with sh.connect(server) as ws:
            await sh.subscribe(ws, after=start, filt={"payer": payer, "currency": "JPY"})
            got = [await sh.recv_json(ws) for _ in range(2)]
            assert [m["payment"]["id"] for m in got] == [p["id"] for p in want]
            harness.create_payment(api, payer=payer, currency="EUR")
            later = harness.create_payment(api, payer=payer, currency="JPY")
            api.patch("/v1/payments/" + later["id"], {"status": "failed"})
            msgs = [await sh.recv_json(ws) for _ in range(2)]
            assert [(m["event"], m["payment"]["id"]) for m in msgs] == [
                ("payment.created", later["id"]), ("payment.updated", later["id"])]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
        async with sh.connect(server) as ws:
            await sh.subscribe(ws, after=start, filt={"payer": payer, "status": "failed"})
            msg = await sh.recv_json(ws)
            assert msg["event"] == "payment.updated" and msg["payment"]["id"] == later["id"]
    run(scenario())


# (wanted, other) value pairs for each filter key; payer and payee get
# fresh names per test so no other test's events match.
FILTER_VALUES = {
    "status": ("settled", "pending"),
    "currency": ("KWD", "EUR"),
    "payer": ("payer-{tag}-want", "payer-{tag}-other"),
    "payee": ("payee-{tag}-want", "payee-{tag}-other"),
}


@pytest.mark.parametrize("key", sorted(FILTER_VALUES))
def test_each_filter_key_alone_backlog_and_live(server, api, pg, key):
    """Every filter key on its own, in the backlog and live. The payments
    differ only in that key (payer and payee are unique per payment
    otherwise), and each wanted one follows one that is not wanted, so a
    key that is ignored shows as the unwanted payment arriving first."""
    tag = harness.unique("fk")
    want, other = (v.format(tag=tag) for v in FILTER_VALUES[key])

    def make(value):
        return harness.create_payment(api, **{key: value})

    async def next_id(ws):
        msg = await sh.recv_json(ws)
        assert msg["type"] == "event" and msg["event"] == "payment.created", msg
        return msg["payment"]["id"]

    async def scenario():
        start = sh.head_seq(pg)
        backlog = []
        for _ in range(2):
            make(other)
            backlog.append(make(want)["id"])
        async with sh.connect(server) as ws:
            await sh.subscribe(ws, after=start, filt={key: want})
            assert [await next_id(ws), await next_id(ws)] == backlog, "backlog with %s" % key
            make(other)
            live = make(want)["id"]
            assert await next_id(ws) == live, "live with %s" % key
    run(scenario())


def test_operations_and_events_on_one_connection(server, pg):
    async def scenario():
        async with sh.connect(server) as ws:
            head = await sh.subscribe(ws)
            rid = "op-and-event"
            await ws.send(json.dumps({"type": "create", "request_id": rid,
                                      "payment": harness.payment_body()}))
            seen = []
            while len(seen) < 2:
                seen.append(await sh.recv_json(ws))
            kinds = sorted(m["type"] for m in seen)
            assert kinds == ["event", "result"], seen
            event = next(m for m in seen if m["type"] == "event")
            result = next(m for m in seen if m["type"] == "result")
            assert event["seq"] > head and event["payment"] == result["body"]
    run(scenario())


# ---- pings, dead peers, draining -------------------------------------------------------------

def test_idle_sockets_are_pinged_and_dead_ones_dropped(start_server):
    srv = start_server(PAYTRACKR_WS_PING_SECONDS="1")

    async def live_client():
        # websockets answers pings: it stays connected well past the hangup time
        async with sh.connect(srv, ping_interval=None) as ws:
            await sh.subscribe(ws)
            await asyncio.sleep(4.5)
            res = await sh.request(ws, {"type": "list", "query": {"limit": 1}})
            assert res["status"] == 200
    run(live_client())

    raw = sh.RawClient(srv)
    try:
        raw.send_text(json.dumps({"type": "subscribe", "after": None}))
        t0 = time.monotonic()
        opcodes = []
        with pytest.raises((EOFError, ConnectionResetError)):
            while time.monotonic() - t0 < 10:
                opcode, _ = raw.read_frame()  # never answers the ping
                opcodes.append(opcode)
        elapsed = time.monotonic() - t0
    finally:
        raw.close()
    assert 0x9 in opcodes, "no ping seen: %r" % opcodes
    assert elapsed < 6, "a peer that never answers was kept %.1f s" % elapsed


def test_drain_closes_subscribers_with_1001(start_server, api):
    srv = start_server()

    async def scenario():
        async with sh.connect(srv) as ws:
            await sh.subscribe(ws)
            srv.signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as exc:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert exc.value.code == 1001
    run(scenario())
    assert srv.wait_exit(20) == 0
    srv.assert_clean()
