"""GET /v1/payments/export.csv (v1.1): every matching payment as RFC 4180
CSV, streamed; checked with Python's csv module against the list API."""

import csv
import io
import json
import re
import socket
import time
import uuid

import pytest

import stream_helpers as sh
from harness import (
    assert_error, create_payment, db_unchanged, sha256_hex, wait_until, OPERATOR_TOKEN,
    VIEWER_TOKEN,
)

HEADER = ["id", "created_at", "updated_at", "status", "method", "currency", "amount",
          "amount_major", "amount_refunded", "payer", "payee", "reference", "description",
          "metadata"]
EXPONENT = {"EUR": 2, "JPY": 0, "KWD": 3, "USD": 2}


def _export(api, query="", token="__default__"):
    r = api.get("/v1/payments/export.csv" + ("?" + query if query else ""), token=token)
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/csv; charset=utf-8", r.headers
    assert re.fullmatch(r'attachment; filename="payments-\d{8}T\d{6}Z\.csv"',
                        r.headers["content-disposition"]), r.headers
    return r


def _rows(raw):
    """Parses CSV as RFC 4180 says (CRLF record ends) and checks the line
    ends: every record ends in CRLF, and no bare LF ends one."""
    text = raw.decode("utf-8")
    assert text.endswith("\r\n"), text[-20:]
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert rows[0] == HEADER, rows[0]
    # the record ends are exactly the CRLFs outside quotes
    outside = re.sub(r'"(?:[^"]|"")*"', "", text)
    assert "\n" not in outside.replace("\r\n", ""), "a record ends without CR"
    assert outside.count("\r\n") == len(rows)
    return rows[1:]


def _major(amount, currency):
    e = EXPONENT[currency]
    if e == 0:
        return str(amount)
    return "%d.%0*d" % (amount // 10 ** e, e, amount % 10 ** e)


def _unsafe(cell):
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r")


def _expected_cell(value):
    if value is None:
        return ""
    return "'" + value if _unsafe(value) else value


def _list_all(api, query):
    out, cursor = [], None
    while True:
        q = query + ("&" if query else "") + "limit=500" + ("&cursor=" + cursor if cursor else "")
        page = api.get("/v1/payments?" + q).json
        out.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _check_row(row, p):
    d = dict(zip(HEADER, row))
    assert d["id"] == p["id"] and d["created_at"] == p["created_at"]
    assert d["updated_at"] == p["updated_at"]
    assert (d["status"], d["method"], d["currency"]) == (p["status"], p["method"], p["currency"])
    assert d["amount"] == str(p["amount"]) and d["amount_refunded"] == str(p["amount_refunded"])
    assert d["amount_major"] == _major(p["amount"], p["currency"]), (d, p)
    for k in ("payer", "payee", "reference", "description"):
        assert d[k] == _expected_cell(p[k]), (k, d[k], p[k])
    assert json.loads(d["metadata"]) == p["metadata"]


# The API refuses control characters in text, so rows holding CR, LF or a
# tab come straight from SQL (as a database restored from elsewhere might).
TRICKY = ["plain", "comma, inside", 'a "quoted" word', "=SUM(A1:A9)", "+41 22", "-5", "@import",
          "caf\u00e9 \u65e5\u672c", "'already quoted"]
RAW = ["line\nbreak", "crlf\r\nbreak", "\tindented", "\rreturn"]


def _sql_text(t):
    return "E'%s'" % t.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace(
        "\r", "\\r").replace("\t", "\\t")


def test_export_matches_the_list_cell_for_cell(api, pg):
    tag = "ex-" + uuid.uuid4().hex[:8]
    made = []
    for i, text in enumerate(TRICKY):
        cur = ("EUR", "JPY", "KWD", "USD")[i % 4]
        made.append(create_payment(
            api, payer=text, payee=tag + "-payee", amount=1000 + i * 37, currency=cur,
            reference=text[:100], description=text, metadata={"k": text, "n": str(i)},
            status="settled" if i % 2 else "pending"))
    for i, text in enumerate(RAW):
        pg.psql("INSERT INTO payments (amount, currency, payer, payee, reference, description, "
                "method, status, metadata, created_at, updated_at) VALUES (%d, 'KWD', %s, '%s', "
                "%s, %s, 'cash', 'settled', jsonb_build_object('k', %s), "
                "clock_timestamp(), clock_timestamp())"
                % (5 + i, _sql_text(text), tag + "-payee", _sql_text(text), _sql_text(text),
                   _sql_text(text)))
    assert api.post("/v1/payments/%s/refunds" % made[1]["id"], {"amount": 5}).status == 201
    for order in ("", "order=created_at.asc"):
        query = "payee=%s-payee%s" % (tag, "&" + order if order else "")
        rows = _rows(_export(api, query).raw)
        listed = _list_all(api, query)
        assert len(rows) == len(TRICKY) + len(RAW) == len(listed)
        for row, p in zip(rows, listed):
            _check_row(row, p)
    # the formula-looking cells got their quote; the rest are as they were
    rows = _rows(_export(api, "payee=%s-payee&order=created_at.asc" % tag).raw)
    assert [r[9] for r in rows] == [_expected_cell(t) for t in TRICKY + RAW]
    assert rows[1][8] == "5"
    assert rows[3][12] == "'=SUM(A1:A9)" and rows[len(TRICKY) + 2][12] == "'\tindented"
    assert rows[len(TRICKY)][12] == "line\nbreak" and rows[len(TRICKY) + 3][12] == "'\rreturn"
    assert rows[2][7] == "1.074" and rows[1][7] == "1037" and rows[0][7] == "10.00"


def test_export_takes_every_list_filter(api):
    tag = "exf-" + uuid.uuid4().hex[:8]
    for i in range(12):
        create_payment(api, payer="%s-%d" % (tag, i % 3), payee=tag, amount=100 * (i + 1),
                       currency="EUR" if i % 2 else "JPY", method=("card", "cash")[i % 2],
                       reference="REF-%s-%d" % (tag, i))
    mid = _list_all(api, "payee=" + tag)[5]["created_at"]
    queries = ["payee=" + tag, "payer=%s-1" % tag, "q=ref-%s-1" % tag, "currency=JPY&payee=" + tag,
               "method=cash&payee=" + tag, "status=pending&payee=" + tag,
               "min_amount=300&max_amount=800&payee=" + tag,
               "created_gte=%s&payee=%s" % (mid, tag), "created_lt=%s&payee=%s" % (mid, tag),
               "status=settled&payee=" + tag]
    for q in queries:
        rows = _rows(_export(api, q).raw)
        assert [r[0] for r in rows] == [p["id"] for p in _list_all(api, q)], q


def test_export_crosses_fetch_boundaries(api, pg):
    """More rows than one fetch reads (500), with equal timestamps at the
    edges: each row exactly once, in order."""
    tag = "exb-" + uuid.uuid4().hex[:8]
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, created_at, "
            "updated_at) SELECT i, 'EUR', '%s', 'p' || i, 'card', 'pending', "
            "timestamptz '2026-03-01' + (i / 3) * interval '1 millisecond', now() "
            "FROM generate_series(1, 1234) i" % tag)
    try:
        for order, sql_order in (("", "DESC"), ("&order=created_at.asc", "ASC")):
            rows = _rows(_export(api, "payer=" + tag + order, token=VIEWER_TOKEN).raw)
            ids = [r[0] for r in pg.psql(
                "SELECT id FROM payments WHERE payer = '%s' AND deleted_at IS NULL "
                "ORDER BY created_at %s, id %s" % (tag, sql_order, sql_order))]
            assert [r[0] for r in rows] == ids
    finally:
        pg.psql("DELETE FROM payments WHERE payer = '%s'" % tag)


def test_empty_export_is_the_header(api):
    r = _export(api, "payer=nobody-" + uuid.uuid4().hex)
    assert r.raw == (",".join(HEADER) + "\r\n").encode()
    assert r.headers.get("transfer-encoding") == "chunked"


@pytest.mark.parametrize("query", ["limit=10", "cursor=abc", "status=nope", "order=sideways",
                                   "min_amount=x", "unknown=1", "created_gte=yesterday"])
def test_export_refuses_paging_and_bad_filters(api, pg, query):
    with db_unchanged(pg):
        assert_error(api.get("/v1/payments/export.csv?" + query), 400, "bad_request")


def test_export_needs_a_token_and_only_get(api):
    assert_error(api.get("/v1/payments/export.csv", token=None), 401, "unauthenticated")
    r = api.request("POST", "/v1/payments/export.csv", body={})
    assert r.status in (403, 405), r


# ---- a client that stops reading -----------------------------------------------


def _stalled_export(port, query, token=OPERATOR_TOKEN):
    """Asks for an export on a socket with a tiny receive window, reads the
    status line, then stops reading."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET /v1/payments/export.csv?%s HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (query, token)).encode())
    head = s.recv(64)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def test_stalled_client_holds_no_pool_connection(start_server, own_db, pg):
    # The header timeout (which lws also applies while a request holds its
    # headers) is far longer than the request timeout, so only the export's
    # own timeout can end the stalled connections in time.
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_POOL_SIZE=2,
                       PAYTRACKR_REQUEST_TIMEOUT_SECONDS=3, PAYTRACKR_HEADER_TIMEOUT_SECONDS=60)
    # about 8 MB of CSV in few rows (each insert also moves the totals):
    # far more than the socket buffers on both sides hold
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, description, method, status, "
            "created_at, updated_at) SELECT i, 'EUR', 'stall', 'payee ' || i, repeat('d', 1000), "
            "'card', 'pending', now() - i * interval '1 second', now() "
            "FROM generate_series(1, 8000) i", db=own_db["db"])
    open_before = sh.metric(srv, "paytrackr_connections_open")
    stalled = [_stalled_export(srv.port, "payer=stall") for _ in range(4)]
    try:
        t0 = time.monotonic()
        # more stalled exports than pool connections, and the pool still
        # answers: none of them holds one
        for _ in range(5):
            r = srv.api.get("/v1/stats?payer=stall", timeout=2)
            assert r.status == 200 and r.json["count"] == 8000, r
        wait_until(lambda: sh.metric(srv, "paytrackr_db_pool_busy") == 0, 5,
                   message="the pool idle while exports are stalled")
        assert sh.metric(srv, "paytrackr_connections_open") == open_before + 4
        # the request timeout (3 s from the last write the client took) ends
        # each stalled connection
        wait_until(lambda: sh.metric(srv, "paytrackr_connections_open") == open_before, 15,
                   message="stalled exports closed")
        assert time.monotonic() - t0 >= 2.5
        # what they got is a cut body: no last chunk
        for s in stalled:
            data = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            assert not data.endswith(b"0\r\n\r\n"), data[-40:]
    finally:
        for s in stalled:
            s.close()
    # and a client that reads gets everything
    r = srv.api.get("/v1/payments/export.csv?payer=stall", timeout=60)
    assert r.status == 200 and r.raw.count(b"\r\n") == 8001
    srv.stop()
    srv.assert_clean()
