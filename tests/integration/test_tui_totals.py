"""paytrackr-tui totals (v1.1): the header's totals and the status bar's
count are the server's figures for the whole filter (GET /v1/stats with
the filters), not sums of the rows the TUI happens to have loaded, and
they follow payments created and refunded while it runs."""

import uuid

import pytest

from tui_helpers import curl_create, tui_factory, ws_url  # noqa: F401

ROWS = 250  # more than the TUI's first page (200 rows)


@pytest.fixture
def tagged_rows(pg, server):
    """ROWS EUR payments of 1.00 (settled) and one JPY payment, all with one
    tag in the payer; removed afterwards."""
    tag = "tot%s" % uuid.uuid4().hex[:8]
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, "
            "created_at, updated_at) SELECT 100, 'EUR', '%s-' || g, 'payee', 'other', "
            "'settled', now(), now() FROM generate_series(1, %d) g" % (tag, ROWS))
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, "
            "created_at, updated_at) VALUES (700, 'JPY', '%s-yen', 'payee', 'other', "
            "'pending', now(), now())" % tag)
    yield tag
    # the rows inserted here; those made through the API stay, as elsewhere
    pg.psql("DELETE FROM payments WHERE payer ~ '^%s-([0-9]+|yen)$'" % tag)


def _totals_line(screen):
    return screen.split("\n")[1]


def test_header_totals_and_count_are_for_the_whole_filter(server, api, pg, tagged_rows,
                                                           tui_factory):
    tag = tagged_rows
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.keys("/")
    t.type(tag)
    t.keys("Enter")
    t.wait_for(lambda s: "251 payments" in t.status_bar(), message="the exact count")
    screen = t.wait_for(lambda s: "EUR 250.00 (250)" in _totals_line(s), message="EUR totals")
    line = _totals_line(screen)
    assert line.startswith(" Totals ") and "loaded rows" not in line, line
    assert "JPY 700 (1)" in line, line

    # under a narrower filter
    t.keys("/", "C-u")
    t.type(tag + " currency:EUR")
    t.keys("Enter")
    t.wait_for(lambda s: "250 payments" in t.status_bar() and "JPY" not in _totals_line(s),
               message="the EUR filter's count")

    # a payment created elsewhere while it runs
    curl_create(server, {"amount": 1234, "currency": "EUR", "payer": tag + "-live",
                         "payee": "Initech", "status": "settled"})
    screen = t.wait_for(lambda s: "251 payments" in t.status_bar() and
                        "EUR 262.34 (251)" in _totals_line(s), timeout=5,
                        message="the count and totals after the live payment")
    # one outside the filter changes nothing
    curl_create(server, {"amount": 99, "currency": "USD", "payer": tag + "-usd",
                         "payee": "Initech"})
    # a refund elsewhere shows in the totals
    live = api.get("/v1/payments?q=%s-live" % tag).json["data"][0]
    r = api.post("/v1/payments/%s/refunds" % live["id"], {"amount": 234})
    assert r.status == 201, r
    screen = t.wait_for(lambda s: "refunded 2.34" in _totals_line(s), timeout=5,
                        message="the refunded sum")
    assert "251 payments" in t.status_bar() and "USD" not in _totals_line(screen), screen

    # rows written behind the server's back (no event): r reloads the totals too
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, "
            "created_at, updated_at) SELECT 100, 'EUR', '%s-' || g, 'payee', 'other', "
            "'settled', now(), now() FROM generate_series(1001, 1010) g" % tag)
    t.keys("r")
    t.wait_for(lambda s: "261 payments" in t.status_bar() and "(261)" in _totals_line(s),
               message="the totals after r")
