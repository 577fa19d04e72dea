"""Idempotency-Key on POST /v1/payments."""

import json
import uuid

import pytest

from harness import (
    assert_error, db_counts, db_unchanged, payment_body, run_concurrently, sha256_hex,
    OPERATOR_TOKEN, VIEWER_TOKEN,
)


def _key():
    return "it-" + uuid.uuid4().hex


def _rows_for_payer(pg, payer):
    return pg.count("SELECT count(*) FROM payments WHERE payer = '%s'" % payer.replace("'", "''"))


def _post(api, body=None, key=None, raw=None, token="__default__"):
    headers = {"Idempotency-Key": key} if key is not None else None
    return api.request("POST", "/v1/payments", body=body, raw=raw, headers=headers, token=token)


def test_same_key_same_body_replays(api, pg):
    key = _key()
    body = payment_body(metadata={"a": "1"})
    first = _post(api, body, key)
    assert first.status == 201, first
    assert first.headers.get("idempotent-replayed", "false").lower() != "true"
    for _ in range(2):
        again = _post(api, body, key)
        assert again.status == 201, again
        assert again.headers.get("idempotent-replayed") == "true", again.headers
        assert again.json == first.json
    assert _rows_for_payer(pg, body["payer"]) == 1
    assert pg.count("SELECT count(*) FROM payment_events WHERE payment_id = '%s'" % first.json["id"]) == 1


def test_replay_ignores_key_order_and_whitespace(api, pg):
    key = _key()
    body = payment_body(reference="R1", metadata={"x": "1", "y": "2"})
    first = _post(api, body, key)
    assert first.status == 201, first
    reordered = {k: body[k] for k in reversed(list(body))}
    reordered["metadata"] = {"y": "2", "x": "1"}
    raw = json.dumps(reordered, indent=4, separators=(" ,  ", " :  ")).encode() + b"\n\t "
    again = _post(api, raw=raw, key=key)
    assert again.status == 201, again
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json == first.json
    assert _rows_for_payer(pg, body["payer"]) == 1


def test_replay_returns_stored_response_not_current_state(api):
    key = _key()
    body = payment_body()
    first = _post(api, body, key)
    assert first.status == 201
    r = api.patch("/v1/payments/%s" % first.json["id"], {"description": "later"})
    assert r.status == 200 and r.json["version"] == 2
    again = _post(api, body, key)
    assert again.status == 201, again
    assert again.json == first.json
    assert again.json["version"] == 1


def test_same_key_different_body_is_422(api, pg):
    key = _key()
    body = payment_body()
    assert _post(api, body, key).status == 201
    with db_unchanged(pg):
        r = _post(api, dict(body, amount=body["amount"] + 1), key)
    assert_error(r, 422, "idempotency_key_reused")
    with db_unchanged(pg):
        r = _post(api, dict(body, reference="extra"), key)
    assert_error(r, 422, "idempotency_key_reused")
    assert _rows_for_payer(pg, body["payer"]) == 1


def test_keys_are_per_caller(start_server, pg):
    tokens = "operator:%s,operator:%s,viewer:%s" % (sha256_hex(OPERATOR_TOKEN), sha256_hex("op2-token"),
                                                     sha256_hex(VIEWER_TOKEN))
    srv = start_server(PAYTRACKR_TOKENS=tokens)
    api = srv.api
    key = _key()
    body = payment_body()
    a = api.request("POST", "/v1/payments", body, headers={"Idempotency-Key": key}, token=OPERATOR_TOKEN)
    b = api.request("POST", "/v1/payments", body, headers={"Idempotency-Key": key}, token="op2-token")
    assert a.status == 201 and b.status == 201, (a, b)
    assert b.headers.get("idempotent-replayed", "false").lower() != "true"
    assert a.json["id"] != b.json["id"]
    assert _rows_for_payer(pg, body["payer"]) == 2
    # and each caller still gets its own replay
    a2 = api.request("POST", "/v1/payments", body, headers={"Idempotency-Key": key}, token=OPERATOR_TOKEN)
    b2 = api.request("POST", "/v1/payments", body, headers={"Idempotency-Key": key}, token="op2-token")
    assert a2.json == a.json and b2.json == b.json
    assert a2.headers.get("idempotent-replayed") == "true" and b2.headers.get("idempotent-replayed") == "true"
    # a different body under caller 2's key is refused for caller 2 only
    assert_error(api.request("POST", "/v1/payments", dict(body, amount=1), headers={"Idempotency-Key": key},
                             token="op2-token"), 422, "idempotency_key_reused")
    assert _rows_for_payer(pg, body["payer"]) == 2
    srv.stop()
    srv.assert_clean()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", b"caf\xc3\xa9", b"\x7f", "a\x01b"])
def test_malformed_key_is_400(api, pg, key):
    body = payment_body()
    with db_unchanged(pg):
        r = api.request("POST", "/v1/payments", body, headers={"Idempotency-Key": key})
    assert_error(r, 400, "bad_request")


def test_longest_key_is_accepted(api, pg):
    key = "k" * 255
    body = payment_body()
    key = (uuid.uuid4().hex + key)[:255]
    first = _post(api, body, key)
    assert first.status == 201, first
    again = _post(api, body, key)
    assert again.status == 201 and again.json == first.json
    assert again.headers.get("idempotent-replayed") == "true"
    visible = "!~" + "".join(chr(c) for c in range(0x21, 0x7f)) + uuid.uuid4().hex
    r = _post(api, payment_body(), visible)
    assert r.status == 201, r


def test_invalid_body_is_not_stored(api, pg):
    key = _key()
    body = payment_body()
    with db_unchanged(pg):
        r = _post(api, dict(body, amount=0), key)
    assert_error(r, 422, "validation_failed", "amount")
    with db_unchanged(pg):
        r = _post(api, raw=b'{"amount": 1,', key=key)
    assert_error(r, 400, "malformed_json")
    r = _post(api, body, key)
    assert r.status == 201, r
    assert r.headers.get("idempotent-replayed", "false").lower() != "true"
    assert _rows_for_payer(pg, body["payer"]) == 1


def test_viewer_with_key_is_forbidden_and_not_stored(api, pg):
    key = _key()
    body = payment_body()
    with db_unchanged(pg):
        r = _post(api, body, key, token=VIEWER_TOKEN)
    assert_error(r, 403, "forbidden")
    r = _post(api, body, key)
    assert r.status == 201 and r.headers.get("idempotent-replayed", "false").lower() != "true"


def test_concurrent_retries_create_exactly_one_payment(api, pg):
    key = _key()
    body = payment_body()
    before = db_counts(pg)

    def fire(_):
        return _post(api, body, key)

    results = run_concurrently(20, fire)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    created = [r for r in results if r.status == 201]
    for r in results:
        if r.status != 201:
            assert_error(r, 409, "idempotency_in_progress")
    assert created, results
    assert all(r.json == created[0].json for r in created), [r.json for r in created]
    assert sum(1 for r in created if r.headers.get("idempotent-replayed") != "true") == 1
    assert _rows_for_payer(pg, body["payer"]) == 1
    after = db_counts(pg)
    assert after["payments"] == before["payments"] + 1
    assert after["payment_events"] == before["payment_events"] + 1
    # a retry afterwards replays it
    r = _post(api, body, key)
    assert r.status == 201 and r.json == created[0].json
    assert r.headers.get("idempotent-replayed") == "true"


def test_concurrent_distinct_keys_each_create_one(api, pg):
    body = payment_body()
    keys = [_key() for _ in range(10)]
    results = run_concurrently(10, lambda i: _post(api, body, keys[i]))
    assert all(not isinstance(r, BaseException) and r.status == 201 for r in results), results
    assert len({r.json["id"] for r in results}) == 10
    assert _rows_for_payer(pg, body["payer"]) == 10


def _backdate(pg, key, hours):
    rows = pg.psql("UPDATE idempotency_keys SET created_at = now() - interval '%d hours' "
                   "WHERE key = '%s' RETURNING 1" % (hours, key))
    assert rows == [["1"]], rows


def test_key_backdated_23_hours_still_replays(api, pg):
    """Keys are kept at least the 24 hours promised: one stored 23 hours
    ago still replays, and a different body is still refused."""
    key = _key()
    body = payment_body()
    first = _post(api, body, key)
    assert first.status == 201, first
    _backdate(pg, key, 23)
    again = _post(api, body, key)
    assert again.status == 201, again
    assert again.headers.get("idempotent-replayed") == "true", again.headers
    assert again.json == first.json
    assert _rows_for_payer(pg, body["payer"]) == 1
    assert_error(_post(api, payment_body(), key), 422, "idempotency_key_reused")


def test_key_backdated_25_hours_may_be_reused(api, pg):
    """Past 24 hours (plus margin) a key is free again: a new body creates a
    new payment and the key then replays that one."""
    key = _key()
    first = _post(api, payment_body(), key)
    assert first.status == 201, first
    _backdate(pg, key, 25)
    body = payment_body()
    second = _post(api, body, key)
    assert second.status == 201, second
    assert second.headers.get("idempotent-replayed", "false").lower() != "true"
    assert second.json["id"] != first.json["id"]
    assert _rows_for_payer(pg, body["payer"]) == 1
    again = _post(api, body, key)
    assert again.headers.get("idempotent-replayed") == "true" and again.json == second.json
