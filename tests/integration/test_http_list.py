"""GET /v1/payments: filters, ordering, limits, cursors."""

import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from harness import assert_error, create_payment, payment_body, wait_until

CURRENCIES = ["EUR", "USD", "JPY"]
METHODS = ["card", "bank_transfer", "cash", "wallet", "other"]


def _list(api, **params):
    r = api.get("/v1/payments?" + urllib.parse.urlencode(params))
    assert r.status == 200, (params, r)
    page = r.json
    assert set(page) >= {"data", "has_more", "next_cursor"}, page
    assert isinstance(page["has_more"], bool)
    if page["has_more"]:
        assert isinstance(page["next_cursor"], str) and page["next_cursor"], page
    else:
        assert page["next_cursor"] is None, page
    return page


def _ids(page):
    return [p["id"] for p in page["data"]]


def _parse_ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _fmt(dt, offset_minutes=0, frac=True):
    tz = timezone(timedelta(minutes=offset_minutes))
    local = dt.astimezone(tz)
    base = local.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += ".%06d" % local.microsecond
    if offset_minutes == 0:
        return base + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    m = abs(offset_minutes)
    return base + "%s%02d:%02d" % (sign, m // 60, m % 60)


@pytest.fixture(scope="module")
def dataset(api):
    """60 payments tagged T (a lower-case hex word in payer, payee and
    reference), created in two batches with a gap between them."""
    tag = "lt" + uuid.uuid4().hex[:10]
    rows = []
    for i in range(60):
        if i == 30:
            time.sleep(0.05)  # a gap in created_at to put time boundaries in
        body = {
            "amount": 100 + i * 10,
            "currency": CURRENCIES[i % 3],
            "payer": "%s-payer-%d" % (tag, i % 4),
            "payee": "%s-payee-%d" % (tag, i % 5),
            "reference": "REF-%s-%d" % (tag, i),
            "method": METHODS[i % 5],
        }
        if i % 4 == 0:
            body["status"] = "settled"
        p = create_payment(api, **body)
        rows.append(p)
    # special rows for q
    rows.append(create_payment(api, payer="Somebody", payee="Nobody",
                               reference="Zebra-%s" % tag.upper(), amount=1))
    rows.append(create_payment(api, payer="Other", payee="Quux %s Payee" % tag,
                               reference=None, amount=2))
    return tag, rows


def _expect(rows, pred):
    return {p["id"] for p in rows if pred(p)}


def test_no_filter_lists_newest_first(api, dataset):
    page = _list(api, limit=5)
    created = [p["created_at"] for p in page["data"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("status", ["pending", "settled"])
def test_filter_status(api, dataset, status):
    tag, rows = dataset
    page = _list(api, q=tag, status=status, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: p["status"] == status)


@pytest.mark.parametrize("currency", CURRENCIES)
def test_filter_currency(api, dataset, currency):
    tag, rows = dataset
    page = _list(api, q=tag, currency=currency, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: p["currency"] == currency)


def test_filter_payer_and_payee(api, dataset):
    tag, rows = dataset
    payer = "%s-payer-1" % tag
    assert set(_ids(_list(api, payer=payer, limit=500))) == _expect(rows, lambda p: p["payer"] == payer)
    payee = "%s-payee-3" % tag
    assert set(_ids(_list(api, payee=payee, limit=500))) == _expect(rows, lambda p: p["payee"] == payee)
    both = _list(api, payer=payer, payee=payee, limit=500)
    assert set(_ids(both)) == _expect(rows, lambda p: p["payer"] == payer and p["payee"] == payee)
    assert _list(api, payer="%s-payer-9" % tag)["data"] == []


@pytest.mark.parametrize("method", METHODS)
def test_filter_method(api, dataset, method):
    tag, rows = dataset
    page = _list(api, q=tag, method=method, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: p["method"] == method)


def test_q_is_case_insensitive_substring_of_payer_payee_reference(api, dataset):
    tag, rows = dataset
    everything = {p["id"] for p in rows}
    assert set(_ids(_list(api, q=tag, limit=500))) == everything
    assert set(_ids(_list(api, q=tag.upper(), limit=500))) == everything
    # reference only (stored upper case, searched lower case)
    assert _ids(_list(api, q="zebra-" + tag)) == [rows[-2]["id"]]
    # payee only, mixed case
    assert _ids(_list(api, q="quux " + tag.upper() + " pAYEE")) == [rows[-1]["id"]]
    # payer substring in the middle
    assert set(_ids(_list(api, q=tag[2:] + "-PAYER-2", limit=500))) == _expect(
        rows, lambda p: p["payer"] == "%s-payer-2" % tag)


def test_min_and_max_amount_inclusive(api, dataset):
    tag, rows = dataset
    page = _list(api, q=tag, min_amount=300, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: p["amount"] >= 300)
    page = _list(api, q=tag, max_amount=300, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: p["amount"] <= 300)
    page = _list(api, q=tag, min_amount=200, max_amount=250, limit=500)
    assert set(_ids(page)) == _expect(rows, lambda p: 200 <= p["amount"] <= 250)
    assert len(page["data"]) == 6
    # an empty range: an empty page, or refused as a value out of range
    r = api.get("/v1/payments?" + urllib.parse.urlencode({"q": tag, "min_amount": 300, "max_amount": 200}))
    if r.status == 200:
        assert r.json["data"] == []
    else:
        assert_error(r, 400, "bad_request")


def test_created_range_with_offsets(api, dataset):
    tag, rows = dataset
    plain = rows[:60]
    t_first_late = _parse_ts(plain[30]["created_at"])
    t_last_early = _parse_ts(plain[29]["created_at"])
    assert t_first_late - t_last_early >= timedelta(milliseconds=20)
    boundary = t_last_early + (t_first_late - t_last_early) / 2
    early = {p["id"] for p in plain[:30]}
    late = {p["id"] for p in plain[30:]} | {rows[-2]["id"], rows[-1]["id"]}
    for off in (0, 120, -330, 345):
        b = _fmt(boundary, off)
        assert set(_ids(_list(api, q=tag, created_gte=b, limit=500))) == late, b
        assert set(_ids(_list(api, q=tag, created_lt=b, limit=500))) == early, b
    # inclusive lower bound, exclusive upper bound, at a row's own timestamp
    exact = plain[30]["created_at"]
    got = set(_ids(_list(api, q=tag, created_gte=exact, limit=500)))
    assert plain[30]["id"] in got
    got = set(_ids(_list(api, q=tag, created_lt=exact, limit=500)))
    assert plain[30]["id"] not in got and plain[29]["id"] in got
    # whole-second form and a range
    lo = _fmt(_parse_ts(plain[0]["created_at"]) - timedelta(seconds=2), 0, frac=False)
    got = set(_ids(_list(api, q=tag, created_gte=lo, created_lt=_fmt(boundary, 60), limit=500)))
    assert got == early


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-24T12:00:00",
                                 "2026-11-24T25:00:00Z", "2026-11-24T12:00:00+2", "1e9", ""])
def test_bad_created_filter_is_400(api, bad):
    assert_error(api.get("/v1/payments?" + urllib.parse.urlencode({"created_gte": bad})), 400, "bad_request")
    assert_error(api.get("/v1/payments?" + urllib.parse.urlencode({"created_lt": bad})), 400, "bad_request")


def test_order_asc_and_desc(api, dataset):
    tag, rows = dataset
    desc = _list(api, q=tag, limit=500, order="created_at.desc")
    asc = _list(api, q=tag, limit=500, order="created_at.asc")
    default = _list(api, q=tag, limit=500)
    assert _ids(default) == _ids(desc)
    assert set(_ids(asc)) == set(_ids(desc)) == {p["id"] for p in rows}
    ca = [p["created_at"] for p in asc["data"]]
    cd = [p["created_at"] for p in desc["data"]]
    assert ca == sorted(ca) and cd == sorted(cd, reverse=True)
    # creation order is visible (rows were created one after another; rows
    # created within the same millisecond may tie)
    first = min(p["created_at"] for p in rows)
    last = max(p["created_at"] for p in rows)
    assert rows[0]["created_at"] == first and rows[-1]["created_at"] == last
    assert asc["data"][0]["created_at"] == first and desc["data"][0]["created_at"] == last


def test_limit_default_and_bounds(api, dataset):
    tag, rows = dataset
    page = _list(api, q=tag)
    assert len(page["data"]) == 50 and page["has_more"] is True
    page = _list(api, q=tag, limit=1)
    assert len(page["data"]) == 1 and page["has_more"] is True
    page = _list(api, q=tag, limit=500)
    assert len(page["data"]) == len(rows) and page["has_more"] is False


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "limit=-1", "limit=1.5", "limit=",
                                   "status=foo", "status=PENDING", "method=paypal", "order=amount",
                                   "order=created_at", "min_amount=abc", "max_amount=1.5", "min_amount=",
                                   "foo=bar", "statuses=pending", "cursor=garbage", "cursor=%25%25%25",
                                   "cursor=eyJ4IjoxfQ", "cursor=" + "A" * 5000])
def test_bad_query_is_400(api, query):
    assert_error(api.get("/v1/payments?" + query), 400, "bad_request")


def test_truncated_cursor_is_400(api, dataset):
    tag, _ = dataset
    page = _list(api, q=tag, limit=2)
    cursor = page["next_cursor"]
    # a cursor cut in half is not a cursor
    assert_error(api.get("/v1/payments?" + urllib.parse.urlencode({"q": tag, "limit": 2,
                                                                  "cursor": cursor[:len(cursor) // 2]})),
                 400, "bad_request")


def _walk(api, order, limit, params):
    seen = []
    pages = 0
    cursor = None
    while True:
        q = dict(params, order=order, limit=limit)
        if cursor:
            q["cursor"] = cursor
        page = _list(api, **q)
        assert len(page["data"]) <= limit
        seen.extend(page["data"])
        pages += 1
        assert pages < 100, "cursor walk does not end"
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return seen
        cursor = page["next_cursor"]


@pytest.mark.parametrize("order", ["created_at.desc", "created_at.asc"])
def test_cursor_walk_sees_every_row_once_while_inserting(api, order):
    tag = "cw" + uuid.uuid4().hex[:10]
    initial = [create_payment(api, payer="%s-%d" % (tag, i))["id"] for i in range(40)]
    stop = threading.Event()
    inserted = []
    errors = []

    def inserter():
        while not stop.is_set():
            r = api.post("/v1/payments", payment_body(payer="%s-new" % tag))
            if r.status != 201:
                errors.append(r)
                return
            inserted.append(r.json["id"])

    t = threading.Thread(target=inserter)
    t.start()
    try:
        wait_until(lambda: inserted or errors, 10, 0.01, "the first concurrent insert")
        seen = _walk(api, order, 3, {"q": tag})
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors, errors
    assert inserted, "the inserter did not run during the walk"
    ids = [p["id"] for p in seen]
    dups = {i for i in ids if ids.count(i) > 1}
    assert not dups, "rows seen twice: %r" % dups
    missing = set(initial) - set(ids)
    assert not missing, "rows never seen: %r" % missing
    assert set(ids) <= set(initial) | set(inserted)
    created = [p["created_at"] for p in seen]
    assert created == sorted(created, reverse=(order == "created_at.desc"))


def test_cursor_walk_with_filters_and_equal_timestamps(api):
    tag = "cf" + uuid.uuid4().hex[:10]
    # concurrent creation makes equal created_at values likely: the cursor
    # must still break ties
    ids = []
    lock = threading.Lock()

    def make(i):
        r = api.post("/v1/payments", payment_body(payer="%s-%d" % (tag, i), currency="USD"))
        assert r.status == 201, r
        with lock:
            ids.append(r.json["id"])

    threads = [threading.Thread(target=make, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for order in ("created_at.desc", "created_at.asc"):
        seen = [p["id"] for p in _walk(api, order, 5, {"q": tag, "currency": "USD"})]
        assert sorted(seen) == sorted(ids), order


SPECIALS = ["' OR 1=1 --", "%", "_", "\\", "'; DROP TABLE payments; --", "\"quoted\"", "a%b_c\\d"]


def test_sql_metacharacters_in_filters_are_literal(api):
    tag = "sq" + uuid.uuid4().hex[:10]
    made = {}
    for i, s in enumerate(SPECIALS):
        made[s] = create_payment(api, payer=tag + s + "x", payee="payee" + tag, reference="R%d" % i)["id"]
    # decoys that a wildcard or dropped escape would match
    decoys = [create_payment(api, payer=tag + d, payee="payee" + tag)["id"]
              for d in ("x", "Ax", "' OR 1=1 -x", "xx", "a%bXc\\d x", "adbxcxdx")]
    for s, pid in made.items():
        assert _ids(_list(api, payer=tag + s + "x")) == [pid], s
        assert _ids(_list(api, q=tag + s + "x")) == [pid], s
    for s in ("%", "_", "\\"):
        assert set(_ids(_list(api, q=s + "x", payee="payee" + tag, limit=500))) == {
            made[k] for k in SPECIALS if (s + "x") in (k + "x")}, s
    assert _list(api, payer="' OR 1=1 --")["data"] == [] or all(
        p["payer"] == "' OR 1=1 --" for p in _list(api, payer="' OR 1=1 --")["data"])
    assert len(_list(api, payee="payee" + tag, limit=500)["data"]) == len(SPECIALS) + len(decoys)
    assert _list(api, q="%", payee="nobody-" + tag)["data"] == []
