"""Outbound webhooks: management routes, Standard Webhooks signatures,
per-endpoint seq order with retries, disabling, replay, several replicas,
the SSRF guard, and that a slow receiver slows nothing else. Every test
has a database of its own, so the session's other servers (which do not
allow loopback targets) never pick up its endpoints."""

import asyncio
import json
import signal
import socket
import subprocess
import statistics
import threading
import time

import pytest

import harness
import stream_helpers as sh
from tui_helpers import tui_factory, ws_url  # noqa: F401
from webhook_receiver import Receiver, verify

FAST = {
    "PAYTRACKR_WEBHOOK_ALLOW_PRIVATE": "on",
    "PAYTRACKR_WEBHOOK_RETRY_SCHEDULE": "1,1,1",
    "PAYTRACKR_WEBHOOK_LEASE_SECONDS": "3",
}
EP = "/v1/webhook_endpoints"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def wh_server(start_server, own_db):
    """start(**env) -> a server on the test's own database."""
    def start(**env):
        merged = dict(FAST)
        merged.update(env)
        return start_server(PAYTRACKR_DATABASE_URL=own_db["url"], **merged)
    return start


def add_endpoint(api, url, **fields):
    body = {"url": url}
    body.update(fields)
    r = api.post(EP, body)
    assert r.status == 201, r
    return r.json


def endpoint(api, ep_id):
    r = api.get(EP + "/" + ep_id)
    assert r.status == 200, r
    return r.json


def wait_endpoint(api, ep_id, pred, timeout=20.0, what="endpoint state"):
    state = {}

    def check():
        state["ep"] = endpoint(api, ep_id)
        return pred(state["ep"])
    harness.wait_until(check, timeout, interval=0.1, message=what)
    return state["ep"]


def seqs_of(deliveries):
    return [d.seq for d in deliveries]


def db_seqs(pg, db, after):
    rows = pg.psql("SELECT seq FROM payment_events WHERE seq > %d ORDER BY seq" % after, db=db)
    return [int(r[0]) for r in rows]


def head(pg, db):
    rows = pg.psql("SELECT coalesce(max(seq), 0) FROM payment_events", db=db)
    return int(rows[0][0])


# ---- management -----------------------------------------------------------------


def test_endpoint_management(wh_server, receiver):
    srv = wh_server()
    api = srv.api
    ep = add_endpoint(api, receiver.url("m"), events=["payment.created"],
                      filter={"currency": "EUR"}, description="books")
    assert ep["secret"].startswith("whsec_") and len(ep["secret"]) == 50
    for key in ("id", "url", "events", "filter", "description", "enabled", "disabled_reason",
                "delivered_seq", "pending", "pending_capped", "actor", "created_at",
                "updated_at"):
        assert key in ep, key
    assert ep["pending"] == 0 and ep["pending_capped"] is False, ep
    assert ep["events"] == ["payment.created"] and ep["filter"] == {"currency": "EUR"}
    assert ep["enabled"] is True and ep["disabled_reason"] is None
    assert ep["actor"]["role"] == "operator" and ep["actor"]["name"], ep
    got = endpoint(api, ep["id"])
    assert "secret" not in got
    listed = api.get(EP, token=harness.VIEWER_TOKEN)
    assert listed.status == 200 and [e["id"] for e in listed.json["data"]] == [ep["id"]]
    assert all("secret" not in e for e in listed.json["data"])
    # viewers read, never write
    harness.assert_error(api.post(EP, {"url": receiver.url()}, token=harness.VIEWER_TOKEN),
                         403, "forbidden")
    harness.assert_error(api.post(EP + "/" + ep["id"] + "/rotate_secret",
                                  token=harness.VIEWER_TOKEN), 403, "forbidden")
    # validation
    harness.assert_error(api.post(EP, {}), 422, "validation_failed", "url")
    harness.assert_error(api.post(EP, {"url": receiver.url(), "events": []}), 422,
                         "validation_failed", "events")
    harness.assert_error(api.post(EP, {"url": receiver.url(), "events": ["payment.eaten"]}),
                         422, "validation_failed", "events")
    harness.assert_error(api.post(EP, {"url": receiver.url(), "filter": {"colour": "red"}}),
                         422, "validation_failed", "filter")
    harness.assert_error(api.post(EP, {"url": receiver.url(), "secret": "x"}), 422,
                         "validation_failed", "secret")
    harness.assert_error(api.post(EP, {"url": "ftp://127.0.0.1/"}), 422, "validation_failed",
                         "url")
    harness.assert_error(api.post(EP, raw="{"), 400, "malformed_json")
    harness.assert_error(api.get(EP + "/not-a-uuid"), 404, "not_found")
    harness.assert_error(api.get(EP + "/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    harness.assert_error(api.request("PUT", EP), 405, "method_not_allowed")
    # PATCH
    r = api.patch(EP + "/" + ep["id"], {"description": None, "events": ["*"]})
    assert r.status == 200 and r.json["description"] is None and r.json["events"] == ["*"], r
    r = api.patch(EP + "/" + ep["id"], {"enabled": False})
    assert r.json["enabled"] is False and r.json["disabled_reason"], r
    r = api.patch(EP + "/" + ep["id"], {"enabled": True})
    assert r.json["enabled"] is True and r.json["disabled_reason"] is None, r
    harness.assert_error(api.patch(EP + "/" + ep["id"], {"enabled": "yes"}), 422,
                         "validation_failed", "enabled")
    # replay never moves forward
    r = api.post(EP + "/" + ep["id"] + "/replay", {"after": 10 ** 12})
    assert r.status == 202 and r.json["delivered_seq"] == ep["delivered_seq"], r
    harness.assert_error(api.post(EP + "/" + ep["id"] + "/replay", {"after": -1}), 422,
                         "validation_failed", "after")
    page = api.get(EP + "/" + ep["id"] + "/deliveries?limit=5")
    assert page.status == 200 and page.json["data"] == [] and page.json["has_more"] is False
    assert api.delete(EP + "/" + ep["id"]).status == 204
    harness.assert_error(api.get(EP + "/" + ep["id"]), 404, "not_found")
    # the routes are described
    doc = api.get("/v1/openapi.json").json
    for path in (EP, EP + "/{id}", EP + "/{id}/rotate_secret", EP + "/{id}/deliveries",
                 EP + "/{id}/replay"):
        assert path in doc["paths"], path


def test_deleting_an_endpoint_deletes_its_log(wh_server, receiver, pg, own_db):
    """The log has no foreign key (migration 0007): the delete removes the
    endpoint's attempts itself, and only its own."""
    srv = wh_server()
    keep = add_endpoint(srv.api, receiver.url("keep"))
    gone = add_endpoint(srv.api, receiver.url("gone"))
    harness.create_payment(srv.api)
    receiver.wait_for(lambda ds: len(ds) >= 2)
    logged = "SELECT endpoint_id::text, count(*) FROM webhook_deliveries GROUP BY 1 ORDER BY 1"

    def log():
        return {row[0]: int(row[1]) for row in pg.psql(logged, db=own_db["db"])}
    harness.wait_until(lambda: len(log()) == 2, 10, interval=0.05, message="both attempts logged")
    assert srv.api.delete(EP + "/" + gone["id"]).status == 204
    assert log() == {keep["id"]: 1}
    harness.assert_error(srv.api.delete(EP + "/" + gone["id"]), 404, "not_found")
    assert endpoint(srv.api, keep["id"])["enabled"] is True


def test_deliveries_log_keeps_thirty_days(wh_server, receiver, pg, own_db):
    """Attempts older than 30 days are trimmed, oldest first; newer ones
    stay."""
    srv = wh_server()
    ep = add_endpoint(srv.api, receiver.url("old"))
    db = own_db["db"]
    pg.psql("INSERT INTO webhook_deliveries (endpoint_id, seq, attempt, status_code, duration_ms, "
            "at) SELECT '%s'::uuid, i, 1, 200, 1, now() - interval '31 days' - i * interval '1 s' "
            "FROM generate_series(1, 3) i UNION ALL SELECT '%s'::uuid, 9, 1, 200, 1, "
            "now() - interval '29 days'" % (ep["id"], ep["id"]), db=db)
    wh_server()  # trims on its first round
    kept = "SELECT seq FROM webhook_deliveries ORDER BY seq"
    harness.wait_until(lambda: [r[0] for r in pg.psql(kept, db=db)] == ["9"], 15, interval=0.1,
                       message="the old attempts trimmed")


# ---- signatures ------------------------------------------------------------------


def test_signature_and_headers(wh_server, receiver):
    srv = wh_server()
    ep = add_endpoint(srv.api, receiver.url("sig"))
    p = harness.create_payment(srv.api)
    [d] = receiver.wait_for(lambda ds: len(ds) >= 1)
    assert d.event["type"] == "payment.created" and d.event["payment"]["id"] == p["id"]
    # exactly the event the change feed shows
    feed = srv.api.get("/v1/events?after=%d&limit=1" % (d.seq - 1)).json["data"][0]
    assert d.event == feed and d.event["actor"]["role"] == "operator", (d.event, feed)
    assert d.headers["webhook-id"] == "evt_%d" % d.seq
    assert abs(int(d.headers["webhook-timestamp"]) - time.time()) < 30
    assert d.headers["content-type"] == "application/json"
    assert verify(ep["secret"], d), d.headers
    # a different secret does not verify: the check can fail
    other = add_endpoint(srv.api, receiver.url("other"))
    assert not verify(other["secret"], d)
    wait_endpoint(srv.api, ep["id"], lambda e: e["delivered_seq"] == d.seq and e["pending"] == 0)
    page = srv.api.get(EP + "/" + ep["id"] + "/deliveries").json
    assert page["data"][0]["seq"] == d.seq and page["data"][0]["status_code"] == 200
    assert page["data"][0]["webhook_id"] == "evt_%d" % d.seq and page["data"][0]["error"] is None


def test_secret_rotation_signs_with_both(wh_server, receiver, pg, own_db):
    srv = wh_server()
    ep = add_endpoint(srv.api, receiver.url("rot"))
    r = srv.api.post(EP + "/" + ep["id"] + "/rotate_secret")
    assert r.status == 200 and r.json["secret"] != ep["secret"], r
    new = r.json["secret"]
    assert "secret" not in endpoint(srv.api, ep["id"])
    harness.create_payment(srv.api)
    [d] = receiver.wait_for(lambda ds: len(ds) >= 1)
    assert len(d.headers["webhook-signature"].split(" ")) == 2
    assert verify(new, d) and verify(ep["secret"], d)
    # once the old secret's 24 hours are over, only the new one signs
    pg.psql("UPDATE webhook_endpoints SET old_secret_until = now() - interval '1 second'",
            db=own_db["db"])
    harness.create_payment(srv.api)
    ds = receiver.wait_for(lambda ds: len(ds) >= 2)
    assert len(ds[1].headers["webhook-signature"].split(" ")) == 1
    assert verify(new, ds[1]) and not verify(ep["secret"], ds[1])


# ---- order, retries, disabling -------------------------------------------------------


def test_concurrent_writers_arrive_in_order_exactly_once(wh_server, receiver, pg, own_db):
    """Three endpoints read the same events in one fetch, whose columns come
    once per event: each gets its own in order, byte for byte the same."""
    srv = wh_server()
    add_endpoint(srv.api, receiver.url("order"))
    add_endpoint(srv.api, receiver.url("copy"))
    add_endpoint(srv.api, receiver.url("gbp"), filter={"currency": "GBP"})
    start = head(pg, own_db["db"])

    def writer(i):
        for k in range(25):
            harness.create_payment(srv.api, currency="GBP" if (i + k) % 3 == 0 else "EUR")
    results = harness.run_concurrently(8, writer)
    assert not [r for r in results if isinstance(r, BaseException)], results
    expected = db_seqs(pg, own_db["db"], start)
    assert len(expected) == 200
    gbp = [int(r[0]) for r in pg.psql(
        "SELECT seq FROM payment_events WHERE seq > %d AND payment->>'currency' = 'GBP' "
        "ORDER BY seq" % start, db=own_db["db"])]
    assert 0 < len(gbp) < 200
    receiver.wait_for(lambda ds: len(ds) >= 400 + len(gbp), timeout=60)
    time.sleep(0.5)  # anything extra would arrive now
    by_path = {name: receiver.for_path(name) for name in ("order", "copy", "gbp")}
    assert seqs_of(by_path["order"]) == expected
    assert seqs_of(by_path["copy"]) == expected
    assert seqs_of(by_path["gbp"]) == gbp
    bodies = {d.seq: d.raw for d in by_path["order"]}
    assert all(d.raw == bodies[d.seq] for d in by_path["copy"] + by_path["gbp"])
    assert len(receiver.deliveries) == 400 + len(gbp)


def test_caught_up_endpoint_is_held_briefly_then_given_back(wh_server, receiver, pg, own_db):
    """A caught-up endpoint keeps its lease for about a second (its next
    event is likely near); a change made meanwhile is still obeyed, and
    then the lease goes back for any replica to take."""
    srv = wh_server()
    ep = add_endpoint(srv.api, receiver.url("idle"))
    harness.create_payment(srv.api)
    receiver.wait_for(lambda ds: len(ds) >= 1)
    r = srv.api.patch(EP + "/" + ep["id"], {"url": receiver.url("moved")})
    assert r.status == 200, r
    harness.create_payment(srv.api)
    receiver.wait_for(lambda ds: len(ds) >= 2)
    assert [d.path for d in receiver.deliveries] == ["/idle", "/moved"]
    leased = "SELECT lease_owner IS NOT NULL FROM webhook_endpoints"
    assert pg.psql(leased, db=own_db["db"])[0][0] == "t"
    harness.wait_until(lambda: pg.psql(leased, db=own_db["db"])[0][0] == "f", 10,
                       interval=0.05, message="the lease given back")
    assert endpoint(srv.api, ep["id"])["pending"] == 0


def test_endpoints_beyond_the_slots_are_not_starved(wh_server, receiver):
    """One replica works on 128 endpoints at once. With 130 endpoints and
    events coming faster than a caught-up endpoint's hold runs out, the
    held ones must make room: every endpoint gets the early events while
    the writes still go on, not only after they stop."""
    srv = wh_server()
    names = ["n%d" % k for k in range(130)]
    for name in names:
        add_endpoint(srv.api, receiver.url(name))
    first = harness.create_payment(srv.api)
    for _ in range(5):
        time.sleep(0.4)  # the pace under test: faster than the 1 s hold
        harness.create_payment(srv.api)
    last_write = time.monotonic()
    receiver.wait_for(lambda ds: len(ds) >= 130 * 6, timeout=60)
    late = [name for name in names
            if not any(d.event["payment"]["id"] == first["id"] and d.t < last_write
                       for d in receiver.for_path(name))]
    assert not late, "first event only after the writes stopped: %s" % late
    for name in names:
        got = seqs_of(receiver.for_path(name))
        assert got == sorted(set(got)) and len(got) == 6, (name, got)


def test_failing_receiver_gets_the_same_event_again_then_the_rest(wh_server, receiver):
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1")
    ep = add_endpoint(srv.api, receiver.url("flaky"))
    receiver.plan(status=500, count=3)
    for _ in range(3):
        harness.create_payment(srv.api)
    ds = receiver.wait_for(lambda ds: len(ds) >= 6, timeout=30)
    ids = [d.webhook_id for d in ds]
    assert ids[0] == ids[1] == ids[2] == ids[3], ids
    assert seqs_of(ds)[3:] == sorted(set(seqs_of(ds)))
    assert len(set(ids)) == 3
    page = srv.api.get(EP + "/" + ep["id"] + "/deliveries").json["data"]
    first = [x for x in page if x["seq"] == ds[0].seq]
    assert sorted(x["attempt"] for x in first) == [1, 2, 3, 4]
    assert [x["status_code"] for x in sorted(first, key=lambda x: x["attempt"])] == [500, 500, 500,
                                                                                     200]
    admin = harness.Api("127.0.0.1", srv.admin.port)
    lag_line = 'paytrackr_webhook_lag_events{endpoint="%s"' % ep["id"]
    # The lag lines are measured every 5 s on the delivery thread: wait for
    # the first measurement that knows this endpoint.
    harness.wait_until(lambda: lag_line in admin.get("/metrics", token=None).raw.decode(), 20.0,
                       message="the endpoint's lag in /metrics")
    m = admin.get("/metrics", token=None).raw.decode()
    assert 'paytrackr_webhook_attempts_total{outcome="http_error"} 3' in m


def test_failure_during_a_held_write_back_is_recorded(wh_server, receiver, pg, own_db):
    """The write-back of acknowledgements runs while transfers go on. Here
    it is held on a row lock while the endpoint's next event fails: the
    failure must be written with the following write-back (attempt 2 comes
    after the schedule's 1 s, and is logged as attempt 2), not dropped
    with the slot when the held write-back lands."""
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1,1,1")
    db = own_db["db"]
    ep = add_endpoint(srv.api, receiver.url("held"))
    admin = harness.Api("127.0.0.1", srv.admin.port)
    receiver.plan_steps((200, 0, 2), (500, 0.8, 1))

    def write_events(n):  # in one transaction, announced as the server's writes are
        pg.psql("WITH e AS (INSERT INTO payment_events (type, payment_id, at, payment) "
                "SELECT 'payment.created', gen_random_uuid(), now(), "
                "json_build_object('currency', 'EUR') FROM generate_series(1, %d) "
                "RETURNING seq) SELECT pg_notify('paytrackr_events', max(seq)::text) FROM e"
                % n, db=db)

    # The endpoint is held (caught up, kept for a second) before its row is
    # locked: a claim would skip a locked row.
    write_events(1)
    warm = receiver.wait_for(lambda ds: len(ds) >= 1)[0]
    wait_endpoint(srv.api, ep["id"], lambda e: e["delivered_seq"] == warm.seq, timeout=5)
    locker = subprocess.Popen(
        [str(harness.PG_BIN / "psql"), "-XAtq", "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", "postgres", "-d", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        locker.stdin.write("BEGIN;\nSELECT id FROM webhook_endpoints WHERE id = '%s' FOR UPDATE;\n"
                           % ep["id"])
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == ep["id"]
        write_events(2)  # one fetch reads both
        harness.wait_until(
            lambda: 'paytrackr_webhook_attempts_total{outcome="http_error"} 1'
            in admin.get("/metrics", token=None).raw.decode(), 15, message="the failure")
        waiting = pg.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                           "'paytrackr-webhooks' AND wait_event_type = 'Lock'")
        assert waiting == 1, "the write-back was not held: the test did not test anything"
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(timeout=10)
    finally:
        locker.kill()
    ds = receiver.wait_for(lambda ds: len(ds) >= 4, timeout=15)
    first, failed, again = ds[1], ds[2], ds[3]
    assert again.webhook_id == failed.webhook_id and first.seq < failed.seq, seqs_of(ds)
    assert again.t - failed.t < 2.9, "retried by a lease running out, not by the schedule"
    log = srv.api.get(EP + "/" + ep["id"] + "/deliveries").json["data"]
    tries = sorted((x["attempt"], x["status_code"]) for x in log if x["seq"] == failed.seq)
    assert tries == [(1, 500), (2, 200)], log


def test_endpoint_whose_write_back_failed_is_taken_up_again(wh_server, receiver, pg, own_db):
    """A write-back that fails (here: the log refuses every row) writes
    nothing; its endpoints' slots are let go and their leases must run out
    so that they are claimed again and the unrecorded event is sent again.
    Renewing every lease the replica's name is on kept such an endpoint
    leased to nobody for as long as the server ran."""
    srv = wh_server()  # leases of 3 s
    db = own_db["db"]
    ep = add_endpoint(srv.api, receiver.url("unrecorded"))
    harness.create_payment(srv.api)
    first = receiver.wait_for(lambda ds: len(ds) >= 1)[0]
    wait_endpoint(srv.api, ep["id"], lambda e: e["delivered_seq"] == first.seq, timeout=5)
    pg.psql("ALTER TABLE webhook_deliveries ADD CONSTRAINT refuse_all CHECK (false) NOT VALID",
            db=db)
    try:
        harness.create_payment(srv.api)
        unrecorded = receiver.wait_for(lambda ds: len(ds) >= 2)[1]
        harness.wait_until(lambda: "recording deliveries" in srv.stderr_text(), 10,
                           message="a failed write-back")
    finally:
        pg.psql("ALTER TABLE webhook_deliveries DROP CONSTRAINT refuse_all", db=db)
    again = receiver.wait_for(lambda ds: len(ds) >= 3, timeout=15)[2]
    assert again.webhook_id == unrecorded.webhook_id
    wait_endpoint(srv.api, ep["id"], lambda e: e["delivered_seq"] == unrecorded.seq, timeout=10)


def test_delivery_connection_killed_loses_nothing(wh_server, receiver, pg, own_db):
    """The delivery thread's database connection is killed three times
    while events flow: every event still arrives, and in order (a repeat
    of what was acknowledged but not yet recorded is allowed, at least
    once), and the endpoint's progress reaches the last event."""
    srv = wh_server()
    db = own_db["db"]
    ep = add_endpoint(srv.api, receiver.url("killed"))
    start = head(pg, db)
    webhooks = ("FROM pg_stat_activity WHERE application_name = 'paytrackr-webhooks' "
                "AND datname = '%s'" % db)
    kills = 0
    for i in range(45):
        harness.create_payment(srv.api)
        if i % 15 == 7:
            harness.wait_until(lambda: pg.count("SELECT count(*) " + webhooks) == 1, 15,
                               message="the delivery connection (back)")
            kills += pg.count("SELECT count(pg_terminate_backend(pid)) " + webhooks)
    assert kills == 3
    expected = db_seqs(pg, db, start)
    wait_endpoint(srv.api, ep["id"], lambda e: e["delivered_seq"] == expected[-1], timeout=30)
    got = seqs_of(receiver.for_path("killed"))
    firsts = [s for k, s in enumerate(got) if s not in got[:k]]
    assert firsts == expected, "lost or out of order: %r" % got
    noticed = [line for line in srv.stderr_text().splitlines()
               if "webhooks: " in line and "terminating connection" in line]
    assert noticed, "the kills did not reach the delivery thread"


def test_schedule_exhausted_disables_then_enabling_resumes(wh_server, receiver, pg, own_db):
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1,1")
    ep = add_endpoint(srv.api, receiver.url("down"))
    start = head(pg, own_db["db"])
    receiver.plan(status=503)
    harness.create_payment(srv.api)
    off = wait_endpoint(srv.api, ep["id"], lambda e: not e["enabled"], what="disabled")
    assert "exhausted" in off["disabled_reason"], off
    assert len(receiver.deliveries) == 3  # the first attempt and two retries
    for _ in range(3):
        harness.create_payment(srv.api)
    time.sleep(1.5)
    assert len(receiver.deliveries) == 3, "a disabled endpoint got more"
    waiting = endpoint(srv.api, ep["id"])
    assert waiting["pending"] == 4 and waiting["pending_capped"] is False, waiting
    receiver.plan(status=200)
    r = srv.api.patch(EP + "/" + ep["id"], {"enabled": True})
    assert r.status == 200 and r.json["enabled"], r
    expected = db_seqs(pg, own_db["db"], start)
    ds = receiver.wait_for(lambda ds: len(ds) >= 7)
    assert seqs_of(ds[3:]) == expected, "resumed with a gap or out of order"


def test_gone_disables_at_once(wh_server, receiver):
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1,1,1,1")
    ep = add_endpoint(srv.api, receiver.url("gone"))
    receiver.plan(status=410)
    harness.create_payment(srv.api)
    off = wait_endpoint(srv.api, ep["id"], lambda e: not e["enabled"], what="disabled")
    assert "410" in off["disabled_reason"]
    time.sleep(1.5)
    assert len(receiver.deliveries) == 1


def test_retry_after_is_clamped_to_the_schedule(wh_server, receiver):
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1,2,2")
    add_endpoint(srv.api, receiver.url("later"))
    receiver.plan(status=503, retry_after=3600, count=1)
    harness.create_payment(srv.api)
    ds = receiver.wait_for(lambda ds: len(ds) >= 2, timeout=15)
    gap = ds[1].t - ds[0].t
    assert 1.8 <= gap < 6, gap  # clamped to the largest delay, 2 s (+ ticks)


# ---- replicas ---------------------------------------------------------------------------


def test_two_servers_deliver_each_event_once(wh_server, receiver, pg, own_db):
    a = wh_server()
    b = wh_server()
    eps = [add_endpoint(a.api, receiver.url("r%d" % i)) for i in range(6)]
    start = head(pg, own_db["db"])
    for i in range(40):
        harness.create_payment((a if i % 2 else b).api)
    expected = db_seqs(pg, own_db["db"], start)
    receiver.wait_for(lambda ds: len(ds) >= 6 * 40, timeout=60)
    time.sleep(1.0)
    for i in range(len(eps)):
        assert seqs_of(receiver.for_path("r%d" % i)) == expected, i
    # both replicas did some of the work
    pages = [a.api.get(EP + "/" + e["id"] + "/deliveries?limit=200").json["data"] for e in eps]
    assert sum(len(p) for p in pages) == 6 * 40


def test_killed_server_leaves_the_work_to_another(wh_server, receiver, pg, own_db):
    a = wh_server()
    ep = add_endpoint(a.api, receiver.url("kill"))
    start = head(pg, own_db["db"])
    receiver.plan(status=200, delay=30, count=1)  # holds the first delivery
    for _ in range(5):
        harness.create_payment(a.api)
    receiver.wait_for(lambda ds: len(ds) >= 1)
    a.expected_rc = -signal.SIGKILL
    a.signal(signal.SIGKILL)
    a.wait_exit(10)
    b = wh_server()
    expected = db_seqs(pg, own_db["db"], start)
    ds = receiver.wait_for(lambda ds: len(ds) >= 6, timeout=30)
    # the attempt in flight is made again, with the same id; nothing else twice
    assert ds[0].webhook_id == ds[1].webhook_id
    assert seqs_of(ds[1:]) == expected
    wait_endpoint(b.api, ep["id"], lambda e: e["delivered_seq"] == expected[-1])


def test_replay_moves_back(wh_server, receiver, pg, own_db):
    srv = wh_server()
    ep = add_endpoint(srv.api, receiver.url("replay"))
    start = head(pg, own_db["db"])
    for _ in range(4):
        harness.create_payment(srv.api)
    expected = db_seqs(pg, own_db["db"], start)
    receiver.wait_for(lambda ds: len(ds) >= 4)
    r = srv.api.post(EP + "/" + ep["id"] + "/replay", {"after": expected[1]})
    assert r.status == 202 and r.json["delivered_seq"] == expected[1], r
    ds = receiver.wait_for(lambda ds: len(ds) >= 6)
    assert seqs_of(ds) == expected + expected[2:]


# ---- the SSRF guard ----------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest",
    "https://192.168.1.1/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[fe80::1]/", "https://localhost/", "http://example.com/hook",
])
def test_private_targets_refused_without_the_setting(wh_server, url):
    srv = wh_server(PAYTRACKR_WEBHOOK_ALLOW_PRIVATE="off")
    harness.assert_error(srv.api.post(EP, {"url": url}), 422, "validation_failed", "url")


def test_guard_checks_the_connected_address(wh_server, pg, own_db):
    """An endpoint whose name or record points at loopback later (here: set
    in the database) is refused when connecting: nothing reaches it."""
    srv = wh_server(PAYTRACKR_WEBHOOK_ALLOW_PRIVATE="off")
    ok = srv.api.post(EP, {"url": "https://hooks.example.com/x"})
    assert ok.status == 201, ok
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    pg.psql("UPDATE webhook_endpoints SET url = 'https://127.0.0.1:%d/x'" % port,
            db=own_db["db"])
    harness.create_payment(srv.api)
    ep_id = ok.json["id"]
    harness.wait_until(
        lambda: srv.api.get(EP + "/" + ep_id + "/deliveries").json["data"], 15,
        message="an attempt")
    d = srv.api.get(EP + "/" + ep_id + "/deliveries").json["data"][0]
    assert d["status_code"] is None and "refused" in d["error"], d
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    m = harness.Api("127.0.0.1", srv.admin.port).get("/metrics", token=None).raw.decode()
    assert 'paytrackr_webhook_attempts_total{outcome="refused"} 1' in m


# ---- a slow receiver slows nothing else --------------------------------------------------


def test_slow_receiver_does_not_slow_requests_or_the_stream(wh_server, receiver):
    """20 endpoints whose receiver hangs for 8 s on every delivery: creating
    a payment over HTTP, and seeing its event on the WebSocket stream, take
    about as long as with no webhooks at all."""
    srv = wh_server()

    async def timed(n=25):
        create, stream = [], []
        async with sh.connect(srv) as ws:
            await sh.subscribe(ws)
            for _ in range(n):
                t = time.monotonic()
                p = await asyncio.get_running_loop().run_in_executor(
                    None, harness.create_payment, srv.api)
                create.append(time.monotonic() - t)
                await sh.recv_until(ws, lambda m: m.get("type") == "event" and
                                    m["payment"]["id"] == p["id"], what="the event")
                stream.append(time.monotonic() - t)
        return create, stream
    quiet_create, quiet_stream = asyncio.run(timed())
    receiver.plan(status=200, delay=8)  # every delivery hangs for 8 s
    for i in range(20):
        add_endpoint(srv.api, receiver.url("slow%d" % i))
    harness.create_payment(srv.api)
    receiver.wait_for(lambda ds: len(ds) >= 20)  # 20 deliveries hang now
    busy_create, busy_stream = asyncio.run(timed())
    med = statistics.median
    print("median create %.1f -> %.1f ms, create to stream event %.1f -> %.1f ms "
          "(quiet -> 20 hanging deliveries)" % (
              med(quiet_create) * 1000, med(busy_create) * 1000,
              med(quiet_stream) * 1000, med(busy_stream) * 1000))
    assert med(busy_create) < med(quiet_create) * 3 + 0.02
    assert med(busy_stream) < med(quiet_stream) * 3 + 0.02
    assert max(busy_create) < 1.0 and max(busy_stream) < 1.0
    receiver.release.set()


# ---- the TUI's W view -------------------------------------------------------------------


def test_pending_of_an_endpoint_far_behind_is_counted_to_a_bound(wh_server, receiver, pg,
                                                                 own_db, tui_factory):  # noqa: F811
    """`pending` and the lag metric look at the first 10,000 events after an
    endpoint's delivered_seq: they said every matching event before, which
    for an endpoint disabled for a day meant millions of rows per request."""
    srv = wh_server()
    db = own_db["db"]
    every = add_endpoint(srv.api, receiver.url("far-every"))
    rare = add_endpoint(srv.api, receiver.url("far-rare"), filter={"currency": "GBP"})
    for ep in (every, rare):
        srv.api.patch(EP + "/" + ep["id"], {"enabled": False})
    # 10,050 events straight into the table, seven of them in GBP: three
    # among the first 10,000, four after.
    pg.psql("INSERT INTO payment_events (type, payment_id, at, payment) "
            "SELECT 'payment.created', gen_random_uuid(), now(), json_build_object("
            "'currency', CASE WHEN i IN (10, 500, 9000, 10001, 10020, 10030, 10050) "
            "THEN 'GBP' ELSE 'EUR' END) FROM generate_series(1, 10050) i", db=db)
    got = endpoint(srv.api, every["id"])
    assert got["pending"] == 10000 and got["pending_capped"] is True, got
    got = endpoint(srv.api, rare["id"])
    assert got["pending"] == 3 and got["pending_capped"] is True, got
    listed = {e["id"]: e for e in srv.api.get(EP).json["data"]}
    assert listed[rare["id"]]["pending"] == 3 and listed[every["id"]]["pending_capped"], listed
    t = tui_factory(ws_url(srv))
    t.wait_for("LIVE")
    t.keys("W")
    t.wait_for(lambda s: "far-every" in s and "far-rare" in s, message="the W view")
    assert t.line_with("far-every").split()[2] == "10000+", t.line_with("far-every")
    assert t.line_with("far-rare").split()[2] == "3+", t.line_with("far-rare")
    admin = harness.Api("127.0.0.1", srv.admin.port)
    line = 'paytrackr_webhook_lag_events{endpoint="%s",enabled="false"} 10000' % every["id"]
    harness.wait_until(lambda: line in admin.get("/metrics", token=None).raw.decode(),
                       timeout=15, message="the capped lag in /metrics")
    # within 10,000 events of the end the count is exact: the last 30 hold
    # two in GBP
    pg.psql("UPDATE webhook_endpoints SET delivered_seq = (SELECT max(seq) - 30 FROM "
            "payment_events) WHERE id = '%s'" % rare["id"], db=db)
    got = endpoint(srv.api, rare["id"])
    assert got["pending"] == 2 and got["pending_capped"] is False, got


def test_tui_lists_endpoints_with_state_and_lag(wh_server, receiver, tui_factory):  # noqa: F811
    srv = wh_server(PAYTRACKR_WEBHOOK_RETRY_SCHEDULE="1")
    add_endpoint(srv.api, receiver.url("tui-live"))
    down = add_endpoint(srv.api, receiver.url("tui-down"), events=["payment.deleted"])
    srv.api.patch(EP + "/" + down["id"], {"enabled": False})
    for _ in range(2):
        harness.create_payment(srv.api)
    receiver.wait_for(lambda ds: len(ds) >= 2)
    p = harness.create_payment(srv.api)
    srv.api.delete("/v1/payments/" + p["id"])  # waits at the disabled endpoint
    t = tui_factory(ws_url(srv))
    t.wait_for("LIVE")
    t.keys("W")
    screen = t.wait_for(lambda s: "Webhook endpoints (2)" in s and "tui-down" in s,
                        message="the W view")
    live = t.line_with("tui-live")
    dead = t.line_with("tui-down")
    assert "LIVE" in live and "DISABLED" in dead, screen
    assert dead.split()[2] == "1", dead  # one event waits
    assert "disabled by an operator" in screen
    t.keys("Escape")
    t.wait_gone("Webhook endpoints")
