"""Who did it (v1.1): named tokens, GET /v1/me, and the actor recorded with
every event (audit trail, change feed, stream), refunds over the socket."""

import asyncio
import uuid

import pytest

import harness
import stream_helpers as sh
from harness import (
    assert_error, create_payment, payment_body, sha256_hex, OPERATOR_TOKEN, VIEWER_TOKEN,
)

OLD_OPERATOR = {"name": "operator-" + sha256_hex(OPERATOR_TOKEN)[:8], "role": "operator"}


def _named_tokens():
    return ",".join([
        "alice@finance:operator:" + sha256_hex("alice-token"),
        "bob.viewer_1:viewer:" + sha256_hex("bob-token"),
        # the v1 form, in the same list
        "operator:" + sha256_hex(OPERATOR_TOKEN),
        "viewer:" + sha256_hex(VIEWER_TOKEN),
    ])


@pytest.fixture(scope="module")
def named(start_server):
    return start_server(PAYTRACKR_TOKENS=_named_tokens())


def test_me_names_the_token(named):
    api = named.api
    assert api.get("/v1/me", token="alice-token").json == {"name": "alice@finance",
                                                           "role": "operator"}
    assert api.get("/v1/me", token="bob-token").json == {"name": "bob.viewer_1", "role": "viewer"}
    assert api.get("/v1/me").json == OLD_OPERATOR
    assert api.get("/v1/me", token=VIEWER_TOKEN).json == {
        "name": "viewer-" + sha256_hex(VIEWER_TOKEN)[:8], "role": "viewer"}
    r = api.get("/v1/me", token=None)
    assert_error(r, 401, "unauthenticated")
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert_error(api.get("/v1/me", token="nope"), 401, "unauthenticated")
    assert_error(api.get("/v1/me?x=1", token="bob-token"), 400, "bad_request")
    r = api.request("POST", "/v1/me", body={}, token="alice-token")
    assert r.status == 405 and r.headers["allow"] == "GET"


def test_me_with_auth_off_is_local_operator(start_server):
    srv = start_server(PAYTRACKR_AUTH="off", PAYTRACKR_TOKENS=None)
    assert srv.api.get("/v1/me", token=None).json == {"name": "local", "role": "operator"}
    p = create_payment(srv.api, status="settled")
    ev = srv.api.get("/v1/payments/%s/events" % p["id"], token=None).json["data"][0]
    assert ev["actor"] == {"name": "local", "role": "operator"}
    srv.stop()
    srv.assert_clean()


@pytest.mark.parametrize("tokens", [
    "al ice:operator:" + sha256_hex("x"),
    ":operator:" + sha256_hex("x"),
    "x" * 65 + ":operator:" + sha256_hex("x"),
    "caf\u00e9:operator:" + sha256_hex("x"),
    "a\"b:operator:" + sha256_hex("x"),
    "alice:operator:" + sha256_hex("x") + ",alice:viewer:" + sha256_hex("y"),
    # a derived name is a name too
    "operator-%s:viewer:%s,operator:%s" % (sha256_hex("x")[:8], sha256_hex("y"), sha256_hex("x")),
    "alice:admin:" + sha256_hex("x"),
])
def test_bad_token_names_exit_2(server_factory, tokens):
    rc, out, err = server_factory.run_to_exit(PAYTRACKR_TOKENS=tokens)
    assert rc == 2, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "PAYTRACKR_TOKENS" in lines[0], err
    assert sha256_hex("x") not in err


def test_every_event_records_its_actor(named, pg):
    api = named.api
    r = api.post("/v1/payments", payment_body(status="settled"), token="alice-token")
    assert r.status == 201, r
    pid = r.json["id"]
    assert api.patch("/v1/payments/%s" % pid, {"description": "x"}).status == 200
    assert api.post("/v1/payments/%s/refunds" % pid, {"amount": 1},
                    token="alice-token").status == 201
    assert api.delete("/v1/payments/%s" % pid).status == 204
    alice = {"name": "alice@finance", "role": "operator"}
    trail = api.get("/v1/payments/%s/events" % pid, token="bob-token").json["data"]
    assert [(e["type"], e["actor"]) for e in trail] == [
        ("payment.created", alice), ("payment.updated", OLD_OPERATOR),
        ("payment.updated", alice), ("payment.deleted", OLD_OPERATOR)]
    assert trail[2]["refund"]["actor"] == alice
    # the change feed shows the same events
    feed = api.get("/v1/events?after=%d&limit=1000" % (trail[0]["seq"] - 1)).json["data"]
    mine = [e for e in feed if e["payment"]["id"] == pid]
    assert mine == trail


def test_events_from_before_v11_have_null_actor(api, pg):
    """A row as v1 wrote it (no actor column value) reads back as null."""
    p = create_payment(api)
    pg.psql("INSERT INTO payment_events (type, payment_id, at, payment) "
            "SELECT 'payment.updated', payment_id, now(), payment FROM payment_events "
            "WHERE payment_id = '%s'" % p["id"])
    trail = api.get("/v1/payments/%s/events" % p["id"]).json["data"]
    assert [e["actor"] for e in trail] == [OLD_OPERATOR, None]
    feed = api.get("/v1/events?after=%d" % (trail[1]["seq"] - 1)).json["data"]
    assert feed[0]["seq"] == trail[1]["seq"] and feed[0]["actor"] is None


def test_websocket_acts_as_its_token_and_refunds(named, pg):
    api = named.api

    async def scenario():
        live = await sh.connect(named, token="bob-token")
        await sh.subscribe(live)
        async with sh.connect(named, token="alice-token") as ws:
            res = await sh.request(ws, {"type": "create",
                                        "payment": payment_body(amount=800, status="settled")})
            assert res["status"] == 201, res
            pid = res["body"]["id"]
            key = "ws-" + uuid.uuid4().hex
            res = await sh.request(ws, {"type": "refund", "id": pid, "if_version": 1,
                                        "idempotency_key": key,
                                        "refund": {"amount": 300, "reason": "duplicate"}})
            assert res["type"] == "result" and res["status"] == 201, res
            refund = res["body"]
            assert refund["actor"] == {"name": "alice@finance", "role": "operator"}
            # the same key and body over HTTP: replayed; as another caller: its own key space
            r = api.post("/v1/payments/%s/refunds" % pid, {"reason": "duplicate", "amount": 300},
                         headers={"Idempotency-Key": key}, token="alice-token")
            assert r.status == 201 and r.headers.get("idempotent-replayed") == "true"
            assert r.json == refund
            # stale version: the same answer as HTTP
            res = await sh.request(ws, {"type": "refund", "id": pid, "if_version": 1})
            r = api.post("/v1/payments/%s/refunds" % pid, raw=b"", headers={"If-Match": '"1"'},
                         token="alice-token")
            assert (res["status"], res["body"]) == (r.status, r.json) and r.status == 412
            # no refund member: what is left
            res = await sh.request(ws, {"type": "refund", "id": pid})
            assert res["status"] == 201 and res["body"]["amount"] == 500, res
            # the stream shows both events with their actor and refund
            got = []
            while len(got) < 3:
                msg = await sh.recv_json(live)
                if msg["type"] == "event" and msg["payment"]["id"] == pid:
                    got.append(msg)
            assert [m["event"] for m in got] == ["payment.created", "payment.updated",
                                                 "payment.updated"]
            assert all(m["actor"]["name"] == "alice@finance" for m in got)
            assert got[1]["refund"] == refund and "refund" not in got[0]
            assert got[2]["payment"]["status"] == "refunded"
            # bad messages
            res = await sh.request(ws, {"type": "refund", "id": 5})
            assert res["type"] == "error" and res["code"] == "bad_request", res
            res = await sh.request(ws, {"type": "refund", "id": pid, "refund": [1]})
            assert res["type"] == "error" and res["code"] == "bad_request", res
            res = await sh.request(ws, {"type": "refund", "id": pid, "refund": {"amount": 1.5}})
            assert res["status"] == 422 and res["body"]["error"]["field"] == "amount", res

        async with sh.connect(named, token="bob-token") as ws:
            # the backlog shows actors too
            await sh.subscribe(ws, after=0, filt={"payer": got[0]["payment"]["payer"]})
            backlog = [await sh.recv_json(ws) for _ in range(3)]
            assert [m["seq"] for m in backlog] == [m["seq"] for m in got]
            assert backlog == got
            res = await sh.request(ws, {"type": "refund", "id": pid})
            assert res["status"] == 403, res
        await live.close()

    asyncio.run(scenario())
