"""paytrackr-tui and the currencies whose exponent is not 2, and its live
filter's case rules, driven through tmux against a real server."""

import urllib.parse
import uuid

import pytest

from harness import create_payment
from tui_helpers import tui_factory, ws_url  # noqa: F401


def _tag(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def _record(tui, payer, amount, currency):
    """Fills the new-payment form (payer, payee, amount, currency) and
    submits it; waits until the form closed and the row shows."""
    tui.keys("n")
    tui.wait_for("New payment")
    tui.type(payer)
    tui.keys("Tab")
    tui.type("Globex Ltd")
    tui.keys("Tab")
    tui.type(amount)
    tui.keys("Tab")
    tui.type(currency)  # replaces the prefilled currency
    tui.keys("Enter")
    tui.wait_gone("New payment")
    return tui.wait_for(payer)


@pytest.mark.parametrize("amount, currency, minor, shown", [
    ("1250", "JPY", "1250", "1,250"),
    ("1.250", "KWD", "1250", "1.250"),
    ("12.5", "KWD", "12500", "12.500"),
], ids=["JPY", "KWD", "KWD-short-fraction"])
def test_form_stores_amounts_with_the_currency_exponent(server, pg, tui_factory, amount, currency,
                                                        minor, shown):
    """Major units typed in the form become minor units with the
    currency's own exponent (0 for JPY, 3 for KWD), not EUR's 2."""
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    payer = _tag("form" + currency.lower())
    _record(t, payer, amount, currency)
    rows = pg.psql("SELECT amount, currency FROM payments WHERE payer = '%s'" % payer)
    assert rows == [[minor, currency]], rows
    line = t.line_with(payer)
    assert shown in line and currency in line, line


def test_kwd_row_shows_three_decimals(server, api, tui_factory):
    """A KWD payment of 1250 minor units is 1.250 on screen (not 12.50),
    in the table."""
    payer = _tag("kwdrow")
    create_payment(api, payer=payer, amount=1250, currency="KWD")
    t = tui_factory(ws_url(server))
    t.wait_for(payer)
    line = t.line_with(payer)
    assert "1.250" in line and "KWD" in line, line
    assert "12.50" not in line, line


@pytest.mark.parametrize("shown, typed", [
    ("MiXeD-{tag}", "mixed-{tag}"),
    ("ÉCLAIR-ÄÖÜ-{tag}", "éclair-äöü-{tag}"),
    ("ΣΟΦΊΑ-{tag}", "σοφία-{tag}"),
], ids=["ascii", "latin", "greek"])
def test_live_payment_in_other_case_than_the_filter_shows(server, api, tui_factory, shown, typed):
    """The server's q is case-insensitive for every letter it lower-cases,
    so a payment created while a lower-case filter is on shows live, as a
    reload would show it."""
    tag = uuid.uuid4().hex[:8]
    payer, text = shown.format(tag=tag), typed.format(tag=tag)
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.keys("/")
    t.type(text)
    t.keys("Enter")
    t.wait_for(lambda s: "filter:" in s and text in s and "0 payments" in s,
               message="the empty filtered table")
    create_payment(api, payer=payer)
    t.wait_for(payer, timeout=5, message="the live payment %r under the filter %r" % (payer, text))
    # and a reload (the server's q) agrees
    page = api.get("/v1/payments?q=" + urllib.parse.quote(text)).json
    assert [p["payer"] for p in page["data"]] == [payer], page
