"""Totals for a filter (v1.1): GET /v1/stats with the list filters."""

import uuid

import pytest

from harness import assert_error, create_payment, db_unchanged, run_concurrently, VIEWER_TOKEN


def _stats(api, **params):
    query = "&".join("%s=%s" % kv for kv in params.items())
    r = api.get("/v1/stats" + ("?" + query if query else ""), token=VIEWER_TOKEN)
    assert r.status == 200, r
    body = r.json
    assert set(body) == {"count", "data"}, body
    for row in body["data"]:
        assert set(row) == {"currency", "status", "count", "amount", "amount_refunded"}, row
    assert body["count"] == sum(row["count"] for row in body["data"])
    return body


def test_stats_answer_for_the_filter_only(api):
    tag = "st-" + uuid.uuid4().hex[:8]
    payer = tag + "-payer"
    made = [create_payment(api, payer=payer, amount=a, currency=c, status=s)
            for a, c, s in ((100, "EUR", "pending"), (250, "EUR", "pending"),
                            (7, "JPY", "settled"), (1000, "EUR", "settled"))]
    assert api.post("/v1/payments/%s/refunds" % made[3]["id"], {"amount": 400}).status == 201
    other = create_payment(api, payer=tag + "-other", amount=5)
    body = _stats(api, payer=payer)
    assert body == {"count": 4, "data": [
        {"currency": "EUR", "status": "pending", "count": 2, "amount": 350, "amount_refunded": 0},
        {"currency": "EUR", "status": "settled", "count": 1, "amount": 1000,
         "amount_refunded": 400},
        {"currency": "JPY", "status": "settled", "count": 1, "amount": 7, "amount_refunded": 0},
    ]}
    assert _stats(api, payer=payer, currency="EUR", status="pending")["count"] == 2
    assert _stats(api, payer=payer, min_amount=100, max_amount=999)["count"] == 2
    assert _stats(api, q=tag)["count"] == 5
    assert _stats(api, q=tag, method="card")["count"] == 0
    first = made[0]["created_at"]
    assert _stats(api, payer=payer, created_lt=first)["count"] == 0
    assert _stats(api, payer=payer, created_gte=first)["count"] == 4
    assert _stats(api, payee=other["payee"])["count"] == 1
    # deleted payments leave the totals
    assert api.delete("/v1/payments/%s" % made[0]["id"]).status == 204
    assert _stats(api, payer=payer)["data"][0]["amount"] == 250
    # no filter: everything, as in v1
    everything = _stats(api)
    assert everything["count"] >= 4


@pytest.mark.parametrize("query", ["limit=10", "cursor=abc", "order=created_at.asc",
                                   "nonsense=1", "status=bogus", "min_amount=-1",
                                   "currency=EUR&currency=JPY", "created_gte=yesterday"])
def test_stats_refuse_paging_and_bad_filters(api, pg, query):
    with db_unchanged(pg):
        r = api.get("/v1/stats?" + query)
    assert_error(r, 400, "bad_request")


def test_running_totals_match_a_scan(api, pg):
    """Without filters (or with only status and currency) the answer comes
    from totals the writers keep; min_amount=1 matches every payment but
    reads them. Both must agree after writes of every kind, concurrent and
    in bulk."""
    tag = "stt-" + uuid.uuid4().hex[:8]

    def work(i):
        p = create_payment(api, payer="%s-%d" % (tag, i), amount=1000 + i,
                           currency=("EUR", "JPY", "KWD")[i % 3])
        path = "/v1/payments/%s" % p["id"]
        if i % 4 == 0:
            assert api.patch(path, {"currency": "USD", "amount": 77}).status == 200
        if i % 4 in (1, 2, 3):
            assert api.patch(path, {"status": "settled"}).status == 200
        if i % 4 == 2:
            assert api.post(path + "/refunds", {"amount": 10 + i}).status == 201
        if i % 4 == 3:
            assert api.patch(path, {"status": "refunded"}).status == 200
        if i % 5 == 0:
            assert api.delete(path).status == 204
        return True

    assert run_concurrently(24, work) == [True] * 24
    # bulk statements straight in SQL move the totals too
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, created_at, "
            "updated_at) SELECT i, 'EUR', '%s-bulk', 'x', 'card', 'settled', now(), now() "
            "FROM generate_series(1, 300) i" % tag)
    pg.psql("UPDATE payments SET status = 'failed', currency = 'USD' "
            "WHERE payer = '%s-bulk' AND amount %% 2 = 0 AND status = 'settled'" % tag)
    pg.psql("UPDATE payments SET deleted_at = now() WHERE payer = '%s-bulk' AND amount %% 3 = 0"
            % tag)
    pg.psql("DELETE FROM payments WHERE payer = '%s-bulk' AND amount %% 5 = 0" % tag)
    scanned = _stats(api, min_amount=1)
    assert _stats(api) == scanned
    assert _stats(api, currency="USD") == _stats(api, currency="USD", min_amount=1)
    assert _stats(api, status="settled") == _stats(api, status="settled", min_amount=1)
    rows = pg.psql("SELECT currency, status, count(*), sum(amount), sum(amount_refunded) "
                   "FROM payments WHERE deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2")
    assert [[d["currency"], d["status"], str(d["count"]), str(d["amount"]),
             str(d["amount_refunded"])] for d in scanned["data"]] == rows
