"""Concurrent writers on one payment: optimistic locking and row locking."""

from harness import assert_error, create_payment, run_concurrently


def _event_types(api, pid):
    r = api.get("/v1/payments/%s/events" % pid)
    assert r.status == 200, r
    return [e["type"] for e in r.json["data"]]


def test_if_match_race_has_exactly_one_winner(api, pg):
    p = create_payment(api)
    path = "/v1/payments/%s" % p["id"]
    results = run_concurrently(10, lambda i: api.patch(path, {"description": "writer %d" % i},
                                                       headers={"If-Match": '"1"'}))
    assert not [r for r in results if isinstance(r, BaseException)], results
    winners = [i for i, r in enumerate(results) if r.status == 200]
    assert len(winners) == 1, [r.status for r in results]
    for i, r in enumerate(results):
        if i != winners[0]:
            assert_error(r, 412, "version_mismatch")
    w = results[winners[0]]
    assert w.json["version"] == 2 and w.headers.get("etag") == '"2"'
    cur = api.get(path).json
    assert cur["version"] == 2 and cur["description"] == "writer %d" % winners[0]
    assert _event_types(api, p["id"]) == ["payment.created", "payment.updated"]
    assert pg.count("SELECT count(*) FROM payment_events WHERE payment_id = '%s'" % p["id"]) == 2


def test_concurrent_patches_without_if_match_lose_no_update(api):
    p = create_payment(api)
    path = "/v1/payments/%s" % p["id"]
    results = run_concurrently(10, lambda i: api.patch(path, {"description": "writer %d" % i}))
    assert all(not isinstance(r, BaseException) and r.status == 200 for r in results), results
    versions = sorted(r.json["version"] for r in results)
    assert versions == list(range(2, 12)), versions
    cur = api.get(path).json
    assert cur["version"] == 11
    last = [r for r in results if r.json["version"] == 11][0]
    assert cur["description"] == last.json["description"]
    events = api.get(path + "/events").json["data"]
    assert [e["payment"]["version"] for e in events] == list(range(1, 12))


def test_concurrent_status_changes_one_transition(api):
    p = create_payment(api)
    path = "/v1/payments/%s" % p["id"]
    targets = ["settled", "failed"] * 5
    results = run_concurrently(10, lambda i: api.patch(path, {"status": targets[i]}))
    assert not [r for r in results if isinstance(r, BaseException)], results
    final = api.get(path).json
    assert final["status"] in ("settled", "failed") and final["version"] == 2
    for i, r in enumerate(results):
        if targets[i] == final["status"]:
            assert r.status == 200, r
            assert r.json["status"] == final["status"] and r.json["version"] == 2
        else:
            assert_error(r, 409, "invalid_transition")
    assert _event_types(api, p["id"]) == ["payment.created", "payment.updated"]


def test_patch_delete_race(api):
    p = create_payment(api)
    path = "/v1/payments/%s" % p["id"]

    def act(i):
        if i == 0:
            return api.delete(path)
        return api.patch(path, {"description": "w%d" % i})

    results = run_concurrently(6, act)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results[0].status == 204, results[0]
    for r in results[1:]:
        if r.status != 200:
            assert_error(r, 404, "not_found")
    types = _event_types(api, p["id"])
    assert types[0] == "payment.created" and types[-1] == "payment.deleted"
    assert types.count("payment.deleted") == 1
    assert types.count("payment.updated") == sum(1 for r in results[1:] if r.status == 200)
    assert_error(api.get(path), 404, "not_found")
