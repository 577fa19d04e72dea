"""paytrackr-tui refunds (v1.1): the R dialog, validated as it is typed,
sends the WebSocket refund message; the detail pane shows refunds and
who made every change; the table shows what was refunded. Driven through
tmux against the real server and database."""

from harness import OPERATOR_TOKEN, create_payment, sha256_hex, wait_until
from tui_helpers import open_filtered, tag, tui_factory, ws_url  # noqa: F401

OPERATOR_NAME = "operator-" + sha256_hex(OPERATOR_TOKEN)[:8]


def _tui_on(server, tui_factory, payer, key=None):
    """A TUI filtered to the one payment of `payer`, `key` pressed."""
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    open_filtered(t, payer)
    if key:
        t.keys(key)
    return t


def _field_error(screen, label):
    """The text on the line under the dialog field `label`."""
    lines = screen.split("\n")
    for i, line in enumerate(lines[:-1]):
        if "\u2502 " + label in line or "| " + label in line:
            return lines[i + 1].replace("\u2502", " ").strip()
    return ""


def _refused(t, amount, error):
    """Types `amount`, waits for `error` under it, and presses Enter, which
    must send nothing (the dialog stays)."""
    t.keys("C-u")
    t.type(amount)
    t.wait_for(lambda s: error in _field_error(s, "Amount"),
               message="%r under the amount %r" % (error, amount))
    t.keys("Enter")
    assert "Enter refunds" in t.screen()


def _refunds(pg, pid):
    return pg.psql("SELECT amount, reason, coalesce(note, '') FROM refunds "
                   "WHERE payment_id = '%s' ORDER BY created_at" % pid)


def test_refund_dialog_validates_and_refunds_part(server, api, pg, tui_factory):
    payer = tag("rf")
    p = create_payment(api, payer=payer, payee="Umbrella", amount=10000, currency="EUR",
                       status="settled")
    t = _tui_on(server, tui_factory, payer, "R")
    screen = t.wait_for(lambda s: "Refund" in s and "100.00 EUR left" in s,
                        message="the refund dialog with what is left")
    assert "100.00" in (t.line_with("Amount") or ""), screen  # default: what is left

    # too many decimals for EUR, more than what is left: said while typing
    _refused(t, "12.345", "at most 2 decimals")
    _refused(t, "100.01", "100.00 EUR is left")
    assert "Refund" in t.screen()

    # a valid part (the only refund recorded in the end: the refused
    # attempts sent nothing, as the socket keeps the order of messages), with a reason and a note
    t.keys("C-u")
    t.type("25.50")
    t.wait_for(lambda s: _field_error(s, "Amount") == "" or "in EUR" in _field_error(s, "Amount"),
               message="the amount accepted")
    t.keys("Tab")
    t.type("r")  # requested_by_customer
    t.wait_for("< requested_by_customer >")
    t.keys("Tab")
    t.type("partial, by phone")
    t.keys("Enter")
    t.wait_for(lambda s: "refunded 25.50 EUR" in s and "Tab moves" not in s,
               message="the refund's result")
    wait_until(lambda: _refunds(pg, p["id"]) != [], 5.0, message="the refund row")
    assert _refunds(pg, p["id"]) == [["2550", "requested_by_customer", "partial, by phone"]]
    row = pg.psql("SELECT amount_refunded, status, version FROM payments WHERE id = '%s'"
                  % p["id"])
    assert row == [["2550", "settled", "2"]], row
    # the table shows what was refunded, from the event
    t.wait_for(lambda s: any(l.startswith(">") and payer in l and l.rstrip().endswith("25.50")
                             for l in s.split("\n")), message="REFUNDED in the row")

    # the next refund starts at what is left now
    t.keys("R")
    t.wait_for(lambda s: "74.50 EUR left" in s, message="what is left after the refund")
    t.keys("Escape")
    t.wait_gone("74.50 EUR left")


def test_refund_refused_for_a_pending_payment(server, api, pg, tui_factory):
    payer = tag("rfp")
    p = create_payment(api, payer=payer, amount=500, currency="JPY")
    t = _tui_on(server, tui_factory, payer, "R")
    t.wait_for("only a settled payment can be refunded")
    assert "Tab moves" not in t.screen()
    assert _refunds(pg, p["id"]) == []


def test_refund_dialog_uses_the_currency_exponent(server, api, pg, tui_factory):
    payer = tag("rfj")
    p = create_payment(api, payer=payer, amount=1500, currency="JPY", status="settled")
    t = _tui_on(server, tui_factory, payer, "R")
    t.wait_for(lambda s: "1,500 JPY left" in s, message="the JPY dialog")
    _refused(t, "1.5", "JPY allows no decimals")
    t.keys("C-u")
    t.type("1500")
    t.keys("Enter")
    t.wait_for("refunded 1,500 JPY")
    # nothing left: the payment is refunded
    wait_until(lambda: pg.psql("SELECT status, amount_refunded FROM payments WHERE id = '%s'"
                               % p["id"]) == [["refunded", "1500"]], 5.0,
               message="refunded whole")
    assert _refunds(pg, p["id"]) == [["1500", "other", ""]]


def test_detail_pane_shows_refunds_and_actors(server, api, tui_factory):
    payer = tag("rfd")
    p = create_payment(api, payer=payer, amount=10000, currency="EUR", status="settled")
    r = api.post("/v1/payments/%s/refunds" % p["id"],
                 {"amount": 1000, "reason": "duplicate", "note": "first part"})
    assert r.status == 201, r
    t = _tui_on(server, tui_factory, payer, "Enter")
    by = "by %s" % OPERATOR_NAME
    screen = t.wait_for(lambda s: "Audit trail" in s and "duplicate" in s and
                        s.count(by) >= 3, message="refunds and actors in the detail pane")
    assert "10.00 EUR (90.00 left)" in screen, screen
    refund_line = [l for l in screen.split("\n") if "duplicate" in l][0]
    assert "10.00 EUR" in refund_line and by in refund_line and "first part" in refund_line, \
        refund_line
    created = [l for l in screen.split("\n") if "payment.created" in l][0]
    assert by in created, created
    # the title says who the TUI acts as (GET /v1/me)
    assert "as %s (operator)" % OPERATOR_NAME in screen.split("\n")[0], screen
    # a refund made elsewhere shows at once, with its event and actor
    r = api.post("/v1/payments/%s/refunds" % p["id"], {"amount": 250, "reason": "fraudulent"})
    assert r.status == 201, r
    screen = t.wait_for(lambda s: "fraudulent" in s and "12.50 EUR (87.50 left)" in s,
                        message="the second refund, live")
    assert "refund 2.50" in screen, screen


def test_viewer_cannot_open_the_refund_dialog(server, api, pg, tui_factory):
    payer = tag("rfv")
    p = create_payment(api, payer=payer, amount=800, currency="EUR", status="settled")
    t = tui_factory(ws_url(server), token="view-token")
    t.wait_for(lambda s: "read-only" in s and "(viewer)" in s.split("\n")[0],
               message="read-only, as the viewer")
    open_filtered(t, payer)
    t.keys("R")
    t.wait_for("refunding is not allowed")
    assert "Enter refunds" not in t.screen()
    assert _refunds(pg, p["id"]) == []


def test_refund_dialog_shows_the_servers_refusal(server, api, pg, tui_factory):
    """The payment changes after the dialog opened: the refund goes with
    if_version, the server refuses it (412), and the dialog says so."""
    payer = tag("rfs")
    p = create_payment(api, payer=payer, amount=5000, currency="EUR", status="settled")
    t = _tui_on(server, tui_factory, payer, "R")
    t.wait_for("50.00 EUR left")
    r = api.post("/v1/payments/%s/refunds" % p["id"], {"amount": 100})
    assert r.status == 201, r
    t.keys("C-u")
    t.type("10")
    t.keys("Enter")
    t.wait_for("someone changed the payment first")
    assert "Enter refunds" in t.screen()
    assert _refunds(pg, p["id"]) == [["100", "other", ""]]
