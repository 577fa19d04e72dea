"""Totals for a filter (v1.1): GET /v1/stats with the list filters."""

import uuid

import pytest

from harness import assert_error, create_payment, db_unchanged, VIEWER_TOKEN


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
