"""Payments resource, events, stats, openapi and generic HTTP behaviour."""

import json
import re
import time
import urllib.parse
import uuid

import pytest

from harness import (
    assert_error, assert_payment_shape, create_payment, db_counts, db_unchanged,
    payment_body, TIMESTAMP_RE, VIEWER_TOKEN,
)


def _location_ok(location, pid):
    path = "/v1/payments/%s" % pid
    return location == path or re.fullmatch(r"https?://[^/]+" + re.escape(path), location or "")


def _events(api, pid):
    r = api.get("/v1/payments/%s/events" % pid)
    assert r.status == 200, r
    assert set(r.json) >= {"data"}, r
    return r.json["data"]


def _event_rows(pg, pid):
    return pg.count("SELECT count(*) FROM payment_events WHERE payment_id = '%s'" % pid)


# ------------------------------------------------------------------ create

def test_create_returns_201_location_etag_and_defaults(api, pg):
    body = payment_body(amount=125000, currency="EUR")
    r = api.post("/v1/payments", body)
    assert r.status == 201, r
    p = r.json
    assert_payment_shape(p)
    assert r.headers.get("content-type", "").split(";")[0] == "application/json"
    assert _location_ok(r.headers.get("location"), p["id"]), r.headers
    assert r.headers.get("etag") == '"1"', r.headers
    assert p["amount"] == 125000
    assert p["currency"] == "EUR"
    assert p["payer"] == body["payer"] and p["payee"] == body["payee"]
    assert p["method"] == "other"
    assert p["status"] == "pending"
    assert p["metadata"] == {}
    assert p["reference"] is None and p["description"] is None
    assert p["version"] == 1
    assert p["created_at"] == p["updated_at"]
    rows = pg.psql("SELECT amount, currency, payer, status, deleted_at IS NULL FROM payments "
                   "WHERE id = '%s'" % p["id"])
    assert rows == [["125000", "EUR", body["payer"], "pending", "t"]]
    assert _event_rows(pg, p["id"]) == 1


def test_create_with_all_fields(api):
    body = payment_body(amount=7, currency="JPY", reference="INV-1", description="November invoice",
                        method="bank_transfer", metadata={"cost_center": "42", "k2": ""})
    r = api.post("/v1/payments", body)
    assert r.status == 201, r
    p = r.json
    for k, v in body.items():
        assert p[k] == v, (k, p)


def test_create_settled(api):
    r = api.post("/v1/payments", payment_body(status="settled"))
    assert r.status == 201, r
    assert r.json["status"] == "settled"
    assert r.json["version"] == 1


@pytest.mark.parametrize("status", ["failed", "cancelled", "refunded"])
def test_create_with_other_status_is_refused(api, pg, status):
    with db_unchanged(pg):
        r = api.post("/v1/payments", payment_body(status=status))
    assert_error(r, 422, "validation_failed", "status")


def test_create_accepts_json_with_charset(api):
    r = api.post("/v1/payments", payment_body(),
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201, r


# ------------------------------------------------------------------ get

def test_get_returns_payment_and_etag(api):
    p = create_payment(api, reference="R-get")
    r = api.get("/v1/payments/%s" % p["id"])
    assert r.status == 200, r
    assert r.headers.get("etag") == '"1"'
    assert r.json == p


def test_viewer_can_get(api):
    p = create_payment(api)
    r = api.get("/v1/payments/%s" % p["id"], token=VIEWER_TOKEN)
    assert r.status == 200, r
    assert r.json == p


def test_if_none_match_gives_304_without_body(api):
    p = create_payment(api)
    r = api.get("/v1/payments/%s" % p["id"], headers={"If-None-Match": '"1"'})
    assert r.status == 304, r
    assert r.raw == b""
    assert r.headers.get("etag") == '"1"'


def test_if_none_match_stale_gives_200(api):
    p = create_payment(api)
    api.patch("/v1/payments/%s" % p["id"], {"description": "changed"})
    r = api.get("/v1/payments/%s" % p["id"], headers={"If-None-Match": '"1"'})
    assert r.status == 200, r
    assert r.headers.get("etag") == '"2"'
    assert r.json["description"] == "changed"


def test_unknown_id_is_404(api):
    r = api.get("/v1/payments/%s" % uuid.uuid4())
    assert_error(r, 404, "not_found")


@pytest.mark.parametrize("bad", ["not-a-uuid", "12345", "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e1",
                                 "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11x", "%27%20OR%201%3D1--",
                                 "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"])
def test_malformed_id_is_404(api, bad):
    assert_error(api.get("/v1/payments/%s" % bad), 404, "not_found")
    assert_error(api.patch("/v1/payments/%s" % bad, {"description": "x"}), 404, "not_found")
    assert_error(api.delete("/v1/payments/%s" % bad), 404, "not_found")
    assert_error(api.get("/v1/payments/%s/events" % bad), 404, "not_found")


def test_list_returns_page(api):
    p = create_payment(api)
    r = api.get("/v1/payments?payer=%s" % urllib.parse.quote(p["payer"]))
    assert r.status == 200, r
    assert r.json["data"] == [p]
    assert r.json["has_more"] is False and r.json["next_cursor"] is None


# ------------------------------------------------------------------ patch

def test_patch_changes_version_etag_and_updated_at(api, pg):
    p = create_payment(api)
    time.sleep(0.01)  # timestamps have millisecond resolution
    r = api.patch("/v1/payments/%s" % p["id"], {"amount": 999, "reference": "R-9",
                                                "metadata": {"a": "b"}})
    assert r.status == 200, r
    q = r.json
    assert_payment_shape(q)
    assert q["version"] == 2
    assert r.headers.get("etag") == '"2"'
    assert q["amount"] == 999 and q["reference"] == "R-9" and q["metadata"] == {"a": "b"}
    assert q["created_at"] == p["created_at"]
    assert q["updated_at"] > p["updated_at"]
    assert api.get("/v1/payments/%s" % p["id"]).json == q
    assert _event_rows(pg, p["id"]) == 2


def test_patch_clears_optional_fields_with_null(api):
    p = create_payment(api, reference="R", description="D")
    r = api.patch("/v1/payments/%s" % p["id"], {"reference": None, "description": None})
    assert r.status == 200, r
    assert r.json["reference"] is None and r.json["description"] is None
    assert r.json["version"] == 2


def test_patch_noop_keeps_version_and_writes_no_event(api, pg):
    p = create_payment(api, reference="same", metadata={"x": "y"})
    before = db_counts(pg)
    for change in ({}, {"reference": "same"}, {"status": "pending"}, {"amount": p["amount"]},
                   {"metadata": {"x": "y"}}, {"payer": p["payer"], "method": "other"}):
        r = api.patch("/v1/payments/%s" % p["id"], change)
        assert r.status == 200, (change, r)
        assert r.json == p, change
        assert r.headers.get("etag") == '"1"'
    assert db_counts(pg) == before
    assert len(_events(api, p["id"])) == 1


def test_if_match_current_version_succeeds(api):
    p = create_payment(api)
    r = api.patch("/v1/payments/%s" % p["id"], {"description": "d"}, headers={"If-Match": '"1"'})
    assert r.status == 200, r
    assert r.json["version"] == 2


def test_if_match_stale_gives_412_and_changes_nothing(api, pg):
    p = create_payment(api)
    api.patch("/v1/payments/%s" % p["id"], {"description": "v2"})
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {"description": "v3"}, headers={"If-Match": '"1"'})
    assert_error(r, 412, "version_mismatch")
    cur = api.get("/v1/payments/%s" % p["id"]).json
    assert cur["version"] == 2 and cur["description"] == "v2"


ALLOWED = [("pending", "settled"), ("pending", "failed"), ("pending", "cancelled"),
           ("settled", "refunded")]
FORBIDDEN = [("pending", "refunded"), ("settled", "pending"), ("settled", "failed"),
             ("settled", "cancelled"), ("failed", "pending"), ("failed", "settled"),
             ("failed", "refunded"), ("cancelled", "pending"), ("cancelled", "settled"),
             ("refunded", "settled"), ("refunded", "pending"), ("refunded", "cancelled")]


def _payment_in(api, status):
    if status == "pending":
        return create_payment(api)
    if status == "settled":
        return create_payment(api, status="settled")
    if status == "refunded":
        p = create_payment(api, status="settled")
        r = api.patch("/v1/payments/%s" % p["id"], {"status": "refunded"})
        assert r.status == 200, r
        return r.json
    p = create_payment(api)
    r = api.patch("/v1/payments/%s" % p["id"], {"status": status})
    assert r.status == 200, r
    return r.json


@pytest.mark.parametrize("src,dst", ALLOWED)
def test_allowed_transition(api, src, dst):
    p = _payment_in(api, src)
    r = api.patch("/v1/payments/%s" % p["id"], {"status": dst})
    assert r.status == 200, r
    assert r.json["status"] == dst
    assert r.json["version"] == p["version"] + 1


@pytest.mark.parametrize("src,dst", FORBIDDEN)
def test_forbidden_transition_is_409(api, pg, src, dst):
    p = _payment_in(api, src)
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {"status": dst})
    assert_error(r, 409, "invalid_transition")
    assert api.get("/v1/payments/%s" % p["id"]).json == p


@pytest.mark.parametrize("field,value", [("amount", 1), ("currency", "USD"), ("payer", "someone else"),
                                         ("payee", "another one")])
def test_pending_only_fields_on_settled_payment_are_422(api, pg, field, value):
    p = create_payment(api, status="settled")
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {field: value})
    assert_error(r, 422, "validation_failed", field)


def test_other_fields_may_change_after_settlement(api):
    p = create_payment(api, status="settled")
    r = api.patch("/v1/payments/%s" % p["id"], {"reference": "r", "description": "d",
                                                "method": "card", "metadata": {"k": "v"}})
    assert r.status == 200, r
    assert r.json["version"] == 2 and r.json["method"] == "card"


def test_patch_combined_change_and_invalid_field_is_atomic(api, pg):
    p = create_payment(api)
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {"description": "ok", "amount": -1})
    assert_error(r, 422, "validation_failed", "amount")
    assert api.get("/v1/payments/%s" % p["id"]).json == p


# ------------------------------------------------------------------ delete and events

def test_delete_then_404_and_audit_trail_kept(api, pg):
    p = create_payment(api)
    r = api.patch("/v1/payments/%s" % p["id"], {"status": "settled"})
    assert r.status == 200
    r = api.delete("/v1/payments/%s" % p["id"])
    assert r.status == 204, r
    assert r.raw == b""
    assert_error(api.get("/v1/payments/%s" % p["id"]), 404, "not_found")
    assert_error(api.patch("/v1/payments/%s" % p["id"], {"description": "x"}), 404, "not_found")
    assert_error(api.delete("/v1/payments/%s" % p["id"]), 404, "not_found")
    assert pg.scalar("SELECT deleted_at IS NOT NULL FROM payments WHERE id = '%s'" % p["id"]) == "t"
    events = _events(api, p["id"])
    assert [e["type"] for e in events] == ["payment.created", "payment.updated", "payment.deleted"]
    seqs = [e["seq"] for e in events]
    assert all(type(s) is int for s in seqs) and seqs == sorted(set(seqs)), seqs
    for e in events:
        assert TIMESTAMP_RE.match(e["at"]), e
        assert e["payment"]["id"] == p["id"]
    assert events[0]["payment"] == p
    assert events[1]["payment"]["status"] == "settled" and events[1]["payment"]["version"] == 2
    # the listing no longer shows it
    r = api.get("/v1/payments?payer=%s" % urllib.parse.quote(p["payer"]))
    assert r.json["data"] == []


def test_events_of_unknown_payment_404(api):
    assert_error(api.get("/v1/payments/%s/events" % uuid.uuid4()), 404, "not_found")


def test_events_oldest_first_with_full_payment(api):
    p = create_payment(api)
    versions = [p]
    for i in range(3):
        r = api.patch("/v1/payments/%s" % p["id"], {"description": "d%d" % i})
        versions.append(r.json)
    events = _events(api, p["id"])
    assert [e["payment"] for e in events] == versions
    assert [e["type"] for e in events] == ["payment.created"] + ["payment.updated"] * 3


# ------------------------------------------------------------------ change feed

def test_change_feed_pages_with_next_after(api):
    ids = [create_payment(api)["id"] for _ in range(3)]
    first = _events(api, ids[0])[0]["seq"]
    r = api.get("/v1/events?after=%d&limit=2" % (first - 1))
    assert r.status == 200, r
    assert set(r.json) >= {"data", "next_after"}
    page1 = r.json["data"]
    assert [e["payment"]["id"] for e in page1] == ids[:2]
    assert [e["type"] for e in page1] == ["payment.created"] * 2
    assert r.json["next_after"] == page1[-1]["seq"]
    r = api.get("/v1/events?after=%d&limit=2" % r.json["next_after"])
    page2 = r.json["data"]
    assert [e["payment"]["id"] for e in page2] == ids[2:]
    last = page2[-1]["seq"]
    assert r.json["next_after"] == last
    r = api.get("/v1/events?after=%d" % last)
    assert r.status == 200 and r.json["data"] == []
    assert r.json["next_after"] == last


def test_change_feed_default_after_is_zero_and_limit_100(api):
    for _ in range(2):
        create_payment(api)
    r = api.get("/v1/events")
    assert r.status == 200, r
    data = r.json["data"]
    total = api.get("/v1/events?after=0&limit=1000").json["data"]
    assert data == total[:100]
    assert data[0]["seq"] >= 1
    seqs = [e["seq"] for e in total]
    assert seqs == sorted(set(seqs))


def test_change_feed_limit_bounds(api):
    create_payment(api)
    assert len(api.get("/v1/events?after=0&limit=1").json["data"]) == 1
    assert api.get("/v1/events?after=0&limit=1000").status == 200
    for q in ("limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=", "after=abc", "after=-1",
              "after=1.5", "bogus=1", "limit=1e2"):
        assert_error(api.get("/v1/events?" + q), 400, "bad_request")


def test_change_feed_for_viewer(api):
    assert api.get("/v1/events?limit=1", token=VIEWER_TOKEN).status == 200


# ------------------------------------------------------------------ stats

STATUS_ORDER = ["pending", "settled", "failed", "cancelled", "refunded"]


def _stats(api):
    r = api.get("/v1/stats")
    assert r.status == 200, r
    data = r.json["data"]
    keys = [(row["currency"], row["status"]) for row in data]
    by_name = sorted(keys)
    by_lifecycle = sorted(keys, key=lambda k: (k[0], STATUS_ORDER.index(k[1])))
    assert keys in (by_name, by_lifecycle), "stats not sorted by currency then status: %r" % keys
    assert len(keys) == len(set(keys))
    for row in data:
        assert type(row["count"]) is int and type(row["amount"]) is int, row
    return {(row["currency"], row["status"]): (row["count"], row["amount"]) for row in data}


def test_stats_counts_and_sums_excluding_deleted(api):
    before = _stats(api)
    create_payment(api, currency="CHF", amount=100)
    create_payment(api, currency="CHF", amount=250)
    create_payment(api, currency="CHF", amount=5, status="settled")
    create_payment(api, currency="KWD", amount=999999999999999, status="settled")
    create_payment(api, currency="KWD", amount=999999999999999, status="settled")
    gone = create_payment(api, currency="CHF", amount=77)
    assert api.delete("/v1/payments/%s" % gone["id"]).status == 204
    refunded = create_payment(api, currency="CHF", amount=3, status="settled")
    assert api.patch("/v1/payments/%s" % refunded["id"], {"status": "refunded"}).status == 200
    after = _stats(api)

    def delta(key):
        b = before.get(key, (0, 0))
        a = after.get(key, (0, 0))
        return (a[0] - b[0], a[1] - b[1])

    assert delta(("CHF", "pending")) == (2, 350)
    assert delta(("CHF", "settled")) == (1, 5)
    assert delta(("CHF", "refunded")) == (1, 3)
    # sums beyond 2^53 stay exact integers
    assert delta(("KWD", "settled")) == (2, 2 * 999999999999999)


# ------------------------------------------------------------------ openapi

def test_openapi_describes_every_route(api):
    r = api.get("/v1/openapi.json")
    assert r.status == 200, r
    doc = r.json
    assert isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3."), doc
    paths = {re.sub(r"\{[^}]*\}", "{}", k): {m.lower() for m in v} for k, v in doc["paths"].items()}
    expected = {
        "/v1/payments": {"get", "post"},
        "/v1/payments/{}": {"get", "patch", "delete"},
        "/v1/payments/{}/events": {"get"},
        "/v1/events": {"get"},
        "/v1/stats": {"get"},
        "/v1/openapi.json": {"get"},
        "/v1/me": {"get"},
        "/v1/payments/{}/refunds": {"get", "post"},
    }
    for path, methods in expected.items():
        assert path in paths, "openapi.json lacks %s: %r" % (path, sorted(paths))
        assert methods <= paths[path], (path, paths[path])


# ------------------------------------------------------------------ generic HTTP

def test_405_with_allow(api):
    r = api.request("PUT", "/v1/payments", payment_body())
    assert_error(r, 405, "method_not_allowed")
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "POST"} <= allow and "PUT" not in allow, r.headers
    p = create_payment(api)
    r = api.request("PUT", "/v1/payments/%s" % p["id"], payment_body())
    assert_error(r, 405, "method_not_allowed")
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allow and "PUT" not in allow and "POST" not in allow
    r = api.request("DELETE", "/v1/payments")
    assert_error(r, 405, "method_not_allowed")
    r = api.request("POST", "/v1/stats", {})
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("allow", "")


# ("/" redirects to the web dashboard: test_web_dashboard.py)
@pytest.mark.parametrize("path", ["/v1/nope", "/v1", "/index.html", "/v2/payments",
                                  "/v1/payments/%s/nope" % uuid.uuid4()])
def test_unknown_path_404(api, path):
    assert_error(api.get(path), 404, "not_found")


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/x-www-form-urlencoded",
                                   "application/jsonx"])
def test_415_without_json_content_type(api, pg, ctype):
    with db_unchanged(pg):
        r = api.post("/v1/payments", payment_body(), headers={"Content-Type": ctype})
    assert_error(r, 415, "unsupported_media_type")
    p = create_payment(api)
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % p["id"], {"description": "x"}, headers={"Content-Type": ctype})
    assert_error(r, 415, "unsupported_media_type")


def test_request_id_on_every_response(api):
    p = create_payment(api)
    responses = [
        api.get("/v1/payments/%s" % p["id"]),
        api.get("/v1/payments/%s" % uuid.uuid4()),
        api.get("/v1/payments", token=None),
        api.request("PUT", "/v1/payments"),
        api.post("/v1/payments", {"amount": -1}),
        api.get("/v1/payments/%s" % p["id"], headers={"If-None-Match": '"1"'}),
        api.delete("/v1/payments/%s" % p["id"]),
    ]
    ids = []
    for r in responses:
        rid = r.headers.get("x-request-id")
        assert rid and len(rid) <= 200, r
        ids.append(rid)
    assert len(set(ids)) == len(ids), ids


def test_request_id_echoed(api):
    rid = "it-" + uuid.uuid4().hex
    r = api.get("/v1/payments?limit=1", headers={"X-Request-Id": rid})
    assert r.status == 200
    assert r.headers.get("x-request-id") == rid
    r = api.get("/v1/payments/%s" % uuid.uuid4(), headers={"X-Request-Id": rid})
    assert r.status == 404
    assert r.headers.get("x-request-id") == rid


def test_request_id_not_echoed_when_insane(api):
    bad = "x" * 2000
    r = api.get("/v1/payments?limit=1", headers={"X-Request-Id": bad})
    assert r.status == 200, r
    assert r.headers.get("x-request-id") and r.headers["x-request-id"] != bad


def test_keep_alive_connection_serves_many_requests(api):
    conn = api.connection()
    try:
        for _ in range(5):
            r = api.post("/v1/payments", payment_body(), conn=conn)
            assert r.status == 201, r
            r = api.get("/v1/payments/%s" % r.json["id"], conn=conn)
            assert r.status == 200, r
        r = api.get("/v1/payments/%s" % uuid.uuid4(), conn=conn)
        assert r.status == 404
        r = api.get("/v1/payments?limit=1", conn=conn)
        assert r.status == 200
    finally:
        conn.close()


def test_logs_are_json_lines(api, server):
    create_payment(api)
    api.get("/v1/payments/%s" % uuid.uuid4())
    text = server.stderr_text() + server.stdout_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict), line


def test_admin_probes_and_metrics(admin):
    assert admin.get("/healthz").status == 200
    assert admin.get("/readyz").status == 200
    r = admin.get("/metrics")
    assert r.status == 200
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    assert b"# TYPE" in r.raw


def test_created_event_carries_the_payment_exactly_as_it_reads_back(api):
    """A create without an Idempotency-Key writes its event in the same
    statement, from JSON the server builds before the database answers:
    the event's payment must be the stored payment member for member, in
    the same order (metadata in the order jsonb keeps), escapes included."""
    body = payment_body(
        payer='Zoë "Q" \\ \u2028 Ltd', payee="\u00e9clair \U0001F600",
        reference="R/1", description="tab\tand line\nbreak",
        metadata={"zz": "1", "a": "\u00e9", "bb": 'q"uote', "ab": "x", "b": "\\"})
    r = api.post("/v1/payments", body)
    assert r.status == 201, r
    pid = r.json["id"]
    ordered = lambda raw: json.loads(raw, object_pairs_hook=list)  # noqa: E731
    stored = api.get("/v1/payments/%s" % pid)
    assert stored.status == 200, stored
    events = api.get("/v1/payments/%s/events" % pid)
    assert events.status == 200, events
    [event] = ordered(events.raw.decode())[0][1]
    payment = dict(event)["payment"]
    assert payment == ordered(stored.raw.decode())
    assert payment == ordered(r.raw.decode())
    assert [k for k, _ in dict(payment)["metadata"]] == ["a", "b", "ab", "bb", "zz"]
