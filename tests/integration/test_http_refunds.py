"""Refunds in parts (v1.1): POST/GET /v1/payments/{id}/refunds,
amount_refunded, the PATCH shortcut, idempotency, If-Match, concurrency,
and every refund error in the contract leaving the database unchanged."""

import uuid

import pytest

from harness import (
    assert_error, assert_payment_shape, create_payment, db_unchanged, etag_of, payment_body,
    run_concurrently,
    TIMESTAMP_RE, UUID_RE, VIEWER_TOKEN,
)

REFUND_FIELDS = {"id", "payment_id", "amount", "currency", "reason", "note", "actor",
                 "created_at"}


def _key():
    return "rf-" + uuid.uuid4().hex


def _settled(api, amount=10000, currency="EUR"):
    return create_payment(api, amount=amount, currency=currency, status="settled")


def _refund(api, pid, body=None, key=None, if_match=None, token="__default__", raw=None):
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if if_match is not None:
        headers["If-Match"] = if_match
    return api.request("POST", "/v1/payments/%s/refunds" % pid, body=body, raw=raw,
                       headers=headers or None, token=token)


def _refund_rows(pg, pid):
    return pg.count("SELECT count(*) FROM refunds WHERE payment_id = '%s'" % pid)


def assert_refund_shape(rf, pid, amount, reason="other", note=None):
    assert set(rf) == REFUND_FIELDS, rf
    assert UUID_RE.match(rf["id"]) and rf["payment_id"] == pid, rf
    assert rf["amount"] == amount and rf["reason"] == reason and rf["note"] == note, rf
    assert rf["actor"] == {"name": "operator-" + _hash8("op-token"), "role": "operator"}, rf
    assert TIMESTAMP_RE.match(rf["created_at"]), rf


def _hash8(token):
    import hashlib
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def test_refund_in_parts_until_nothing_is_left(api, pg):
    p = _settled(api, amount=10000)
    assert p["amount_refunded"] == 0 and p["version"] == 1
    r = _refund(api, p["id"], {"amount": 2500, "reason": "requested_by_customer",
                               "note": "damaged box"})
    assert r.status == 201, r
    assert_refund_shape(r.json, p["id"], 2500, "requested_by_customer", "damaged box")
    assert r.headers["location"] == "/v1/payments/%s/refunds/%s" % (p["id"], r.json["id"])
    one = api.get(r.headers["location"])
    assert one.status == 200 and one.json == r.json, one
    cur = api.get("/v1/payments/%s" % p["id"]).json
    assert_payment_shape(cur)
    assert (cur["amount_refunded"], cur["status"], cur["version"]) == (2500, "settled", 2)
    # the rest, by default
    r2 = _refund(api, p["id"], {})
    assert r2.status == 201, r2
    assert_refund_shape(r2.json, p["id"], 7500)
    cur = api.get("/v1/payments/%s" % p["id"]).json
    assert (cur["amount_refunded"], cur["status"], cur["version"]) == (10000, "refunded", 3)
    listed = api.get("/v1/payments/%s/refunds" % p["id"])
    assert listed.status == 200 and listed.json == {"data": [r.json, r2.json]}, listed
    # one payment.updated event per refund, carrying it and the actor
    events = api.get("/v1/payments/%s/events" % p["id"]).json["data"]
    assert [e["type"] for e in events] == ["payment.created", "payment.updated", "payment.updated"]
    assert events[1]["refund"] == r.json and events[2]["refund"] == r2.json
    assert events[2]["payment"] == cur
    assert "refund" not in events[0]
    for e in events:
        assert e["actor"] == r.json["actor"], e
    # nothing left: refunded is not settled
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}), 409, "invalid_transition")


def test_an_empty_body_refunds_what_is_left(api):
    p = _settled(api, amount=500)
    r = api.request("POST", "/v1/payments/%s/refunds" % p["id"], raw=b"", headers={})
    assert r.status == 201 and r.json["amount"] == 500, r


def test_patch_refunded_is_the_same_operation(api, pg):
    p = _settled(api, amount=900)
    assert _refund(api, p["id"], {"amount": 200}).status == 201
    r = api.patch("/v1/payments/%s" % p["id"], {"status": "refunded", "description": "gone"},
                  headers={"If-Match": etag_of(2)})
    assert r.status == 200, r
    assert (r.json["status"], r.json["amount_refunded"], r.json["version"]) == ("refunded", 900, 3)
    assert r.json["description"] == "gone"
    refunds = api.get("/v1/payments/%s/refunds" % p["id"]).json["data"]
    assert [(x["amount"], x["reason"]) for x in refunds] == [(200, "other"), (700, "other")]
    last = api.get("/v1/payments/%s/events" % p["id"]).json["data"][-1]
    assert last["type"] == "payment.updated" and last["refund"] == refunds[1]
    assert last["payment"] == r.json
    # setting it again changes nothing
    with db_unchanged(pg):
        again = api.patch("/v1/payments/%s" % p["id"], {"status": "refunded"})
    assert again.status == 200 and again.json == r.json


def test_idempotent_refund_replays(api, pg):
    p = _settled(api, amount=1000)
    key = _key()
    first = _refund(api, p["id"], {"amount": 100, "reason": "duplicate"}, key=key)
    assert first.status == 201, first
    with db_unchanged(pg):
        again = _refund(api, p["id"], {"reason": "duplicate", "amount": 100}, key=key)
    assert again.status == 201 and again.headers.get("idempotent-replayed") == "true", again
    assert again.json == first.json and again.headers["location"] == first.headers["location"]
    assert _refund_rows(pg, p["id"]) == 1


def test_concurrent_retries_refund_once(api, pg):
    p = _settled(api, amount=1000)
    key = _key()
    results = run_concurrently(16, lambda i: _refund(api, p["id"], {"amount": 10}, key=key))
    statuses = sorted(r.status for r in results)
    assert set(statuses) <= {201, 409}, results
    ids = {r.json["id"] for r in results if r.status == 201}
    assert len(ids) == 1, results
    assert _refund_rows(pg, p["id"]) == 1
    assert api.get("/v1/payments/%s" % p["id"]).json["amount_refunded"] == 10


def test_concurrent_refunds_never_exceed_the_amount(api, pg):
    p = _settled(api, amount=1000)
    n = 40
    results = run_concurrently(n, lambda i: _refund(api, p["id"], {"amount": 100}))
    ok = [r for r in results if r.status == 201]
    refused = [r for r in results if r.status != 201]
    assert len(ok) == 10, [r.status for r in results]
    for r in refused:
        # what is left is less than asked, or nothing is left at all
        assert (r.status, r.json["error"]["code"]) in ((422, "validation_failed"),
                                                      (409, "invalid_transition")), r
    cur = api.get("/v1/payments/%s" % p["id"]).json
    assert (cur["amount_refunded"], cur["status"], cur["version"]) == (1000, "refunded", 11)
    assert _refund_rows(pg, p["id"]) == 10
    assert pg.count("SELECT sum(amount) FROM refunds WHERE payment_id = '%s'" % p["id"]) == 1000
    # every new version has its own event
    versions = [e["payment"]["version"]
                for e in api.get("/v1/payments/%s/events" % p["id"]).json["data"]]
    assert versions == list(range(1, 12))


# ---- every refund error in the contract changes nothing -----------------------

@pytest.mark.parametrize("body,status,code,field", [
    ({"amount": 0}, 422, "validation_failed", "amount"),
    ({"amount": -5}, 422, "validation_failed", "amount"),
    ({"amount": 12.5}, 422, "validation_failed", "amount"),
    ({"amount": "100"}, 422, "validation_failed", "amount"),
    ({"amount": None}, 422, "validation_failed", "amount"),
    ({"amount": 10001}, 422, "validation_failed", "amount"),
    ({"amount": 10**20}, 422, "validation_failed", "amount"),
    ({"amount": 100, "currency": "EUR"}, 422, "validation_failed", "currency"),
    ({"reason": "changed_mind"}, 422, "validation_failed", "reason"),
    ({"note": "x" * 501}, 422, "validation_failed", "note"),
    ({"note": 5}, 422, "validation_failed", "note"),
    ({"note": "bell\u0007"}, 422, "validation_failed", "note"),
])
def test_bad_refund_changes_nothing(api, pg, body, status, code, field):
    p = _settled(api, amount=10000)
    with db_unchanged(pg):
        r = _refund(api, p["id"], body, key=_key())
    assert_error(r, status, code, field)


def test_float_literals_that_are_integers_are_refused(api, pg):
    p = _settled(api, amount=10000)
    for raw in (b'{"amount": 12.0}', b'{"amount": 1e2}'):
        with db_unchanged(pg):
            r = _refund(api, p["id"], raw=raw)
        assert_error(r, 422, "validation_failed", "amount")


def test_note_of_500_characters_is_accepted(api):
    p = _settled(api, amount=10000)
    r = _refund(api, p["id"], {"amount": 1, "note": "\u00e9" * 500})
    assert r.status == 201 and r.json["note"] == "\u00e9" * 500, r


@pytest.mark.parametrize("status", ["pending", "failed", "cancelled"])
def test_refund_of_a_payment_not_settled_is_409(api, pg, status):
    p = create_payment(api, amount=100)
    if status != "pending":
        assert api.patch("/v1/payments/%s" % p["id"], {"status": status}).status == 200
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}), 409, "invalid_transition")


def test_unknown_or_deleted_payment_is_404(api, pg):
    unknown = str(uuid.uuid4())
    with db_unchanged(pg):
        assert_error(_refund(api, unknown, {"amount": 1}), 404, "not_found")
        assert_error(_refund(api, "not-a-uuid", {"amount": 1}), 404, "not_found")
        assert_error(api.get("/v1/payments/%s/refunds" % unknown), 404, "not_found")
    p = _settled(api)
    assert _refund(api, p["id"], {"amount": 1}).status == 201
    assert api.delete("/v1/payments/%s" % p["id"]).status == 204
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}), 404, "not_found")
        assert_error(api.get("/v1/payments/%s/refunds" % p["id"]), 404, "not_found")


def test_viewer_may_list_but_not_refund(api, pg):
    p = _settled(api)
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}, token=VIEWER_TOKEN), 403, "forbidden")
    r = api.get("/v1/payments/%s/refunds" % p["id"], token=VIEWER_TOKEN)
    assert r.status == 200 and r.json == {"data": []}


def test_stale_if_match_is_412(api, pg):
    p = _settled(api)
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}, if_match=etag_of(2)), 412,
                     "version_mismatch")
        assert_error(_refund(api, p["id"], {"amount": 1}, if_match="nonsense"), 412,
                     "version_mismatch")
    r = _refund(api, p["id"], {"amount": 1}, if_match=etag_of(1))
    assert r.status == 201, r
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 1}, if_match=etag_of(1)), 412,
                     "version_mismatch")


def test_reused_key_with_another_body_or_route_is_422(api, pg):
    p = _settled(api)
    key = _key()
    assert _refund(api, p["id"], {"amount": 5}, key=key).status == 201
    with db_unchanged(pg):
        assert_error(_refund(api, p["id"], {"amount": 6}, key=key), 422, "idempotency_key_reused")
    # the same key and body for another payment is another request
    other = _settled(api)
    with db_unchanged(pg):
        assert_error(_refund(api, other["id"], {"amount": 5}, key=key), 422,
                     "idempotency_key_reused")
        # one key space across creates and refunds
        assert_error(api.post("/v1/payments", payment_body(), headers={"Idempotency-Key": key}),
                     422, "idempotency_key_reused")
    created_key = _key()
    body = {"amount": 5, "currency": "EUR", "payer": "a", "payee": "b", "status": "settled"}
    created = api.post("/v1/payments", body, headers={"Idempotency-Key": created_key})
    assert created.status == 201
    with db_unchanged(pg):
        assert_error(_refund(api, created.json["id"], {"amount": 5}, key=created_key), 422,
                     "idempotency_key_reused")


def test_malformed_requests(api, pg):
    p = _settled(api)
    path = "/v1/payments/%s/refunds" % p["id"]
    with db_unchanged(pg):
        assert_error(api.request("POST", path, raw=b'{"amount": 1', headers={}), 400,
                     "malformed_json")
        assert_error(api.request("POST", path, raw=b"[]", headers={}), 400, "malformed_json")
        r = api.request("POST", path, raw=b'{"amount": 1}',
                        headers={"Content-Type": "text/plain"})
        assert_error(r, 415, "unsupported_media_type")
        r = api.request("PUT", path, body={"amount": 1})
        assert r.status == 405 and r.headers["allow"] == "GET, POST", r
        assert_error(_refund(api, p["id"], {"amount": 1}, key="bad key"), 400, "bad_request")
        assert_error(api.request("POST", path + "?x=1", body={"amount": 1}), 400, "bad_request")


def test_amount_refunded_is_not_accepted_in_a_body(api, pg):
    with db_unchanged(pg):
        r = api.post("/v1/payments", {"amount": 5, "currency": "EUR", "payer": "a", "payee": "b",
                                      "amount_refunded": 0})
    assert_error(r, 422, "validation_failed", "amount_refunded")
    p = _settled(api)
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {"amount_refunded": 5})
    assert_error(r, 422, "validation_failed", "amount_refunded")


def test_stats_add_refunded_sums(api):
    cur = "KWD"
    before = {(d["status"]): d for d in api.get("/v1/stats?currency=" + cur).json["data"]}
    p = _settled(api, amount=12345, currency=cur)
    assert _refund(api, p["id"], {"amount": 345}).status == 201
    after = {(d["status"]): d for d in api.get("/v1/stats?currency=" + cur).json["data"]}
    b = before.get("settled", {"count": 0, "amount": 0, "amount_refunded": 0})
    a = after["settled"]
    assert (a["count"] - b["count"], a["amount"] - b["amount"],
            a["amount_refunded"] - b["amount_refunded"]) == (1, 12345, 345)
