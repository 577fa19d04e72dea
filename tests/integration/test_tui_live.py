"""paytrackr-tui against a real server: recording, live updates, status
changes and deletes, driven through tmux."""

import re
import time

from harness import create_payment, wait_until
from tui_helpers import curl_create, tui_factory, ws_url  # noqa: F401
from tui_helpers import open_filtered as _open_filtered
from tui_helpers import tag as _tag


def test_form_records_payment_seen_by_second_tui(server, pg, tui_factory):
    a = tui_factory(ws_url(server))
    b = tui_factory(ws_url(server))
    a.wait_for("LIVE")
    b.wait_for("LIVE")
    payer = _tag("formpayer")
    a.keys("n")
    a.wait_for("New payment")
    a.type(payer)
    a.keys("Tab")
    a.type("Globex Ltd")
    a.keys("Tab")
    a.type("12.50")
    a.keys("Tab")           # currency: EUR prefilled
    a.keys("Tab")           # method: other prefilled
    a.keys("Tab")
    a.type("INV-TUI-1")
    a.keys("Enter")
    a.wait_gone("New payment")
    a.wait_for(payer)
    # the second TUI shows it without a key press
    line = b.wait_for(payer) and b.line_with(payer)
    assert "12.50" in line and "EUR" in line and "pending" in line, line
    rows = pg.psql("SELECT amount, currency, payee, reference, status FROM payments "
                   "WHERE payer = '%s' AND deleted_at IS NULL" % payer)
    assert rows == [["1250", "EUR", "Globex Ltd", "INV-TUI-1", "pending"]], rows


def test_curl_payment_appears_within_a_second(server, tui_factory):
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.wait_for(lambda s: re.search(r"\d\+? payments?", t.status_bar()), message="the first page")
    payer = _tag("curlpayer")
    curl_create(server, {"amount": 4200, "currency": "JPY", "payer": payer, "payee": "Initech"})
    started = time.monotonic()
    t.wait_for(payer, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    line = t.line_with(payer)
    assert "4,200" in line and "JPY" in line, line


def test_invalid_amount_shows_inline_error_and_records_nothing(server, pg, tui_factory):
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    payer = _tag("badamount")
    t.keys("n")
    t.wait_for("New payment")
    t.type(payer)
    t.keys("Tab")
    t.type("Globex Ltd")
    t.keys("Tab")
    for bad in ("12.5x", "1.234", "-5", "0"):
        t.keys("C-u")
        t.type(bad)
        t.keys("Enter")

        def amount_error(screen):
            lines = screen.split("\n")
            for i, line in enumerate(lines[:-1]):
                if "Amount" in line and bad in line:
                    below = lines[i + 1].replace("\u2502", " ").strip()
                    return bool(below)
            return False

        t.wait_for(amount_error, message="an inline error under the amount %r" % bad)
        assert "New payment" in t.screen()
    t.keys("Escape")
    t.wait_gone("New payment")
    time.sleep(0.3)  # give a wrongly sent request the time to land
    assert pg.count("SELECT count(*) FROM payments WHERE payer = '%s'" % payer) == 0


def test_status_change_and_delete_reach_database_and_other_clients(server, api, pg,
                                                                   tui_factory):
    payer = _tag("statuspayer")
    p = create_payment(api, payer=payer, payee="Umbrella", amount=777, currency="EUR")
    a = tui_factory(ws_url(server))
    b = tui_factory(ws_url(server))
    b.wait_for(payer)
    _open_filtered(a, payer)
    a.keys("s")
    a.wait_for("Change status")
    a.keys("s")  # settled
    b.wait_for(lambda s: (b.line_with(payer) or "").find("settled") >= 0,
               message="settled in the second TUI")
    wait_until(lambda: pg.scalar("SELECT status FROM payments WHERE id = '%s'" % p["id"])
               == "settled", 5.0, message="status settled in the database")
    # a settled payment may only be refunded: the picker offers just that
    a.keys("s")
    a.wait_for("Change status")
    screen = a.screen()
    assert "refunded" in screen and "cancelled" not in screen.split("Change status")[1], screen
    a.keys("Escape")
    a.wait_gone("Change status")
    a.keys("d")
    a.wait_for("y deletes")
    a.keys("y")
    b.wait_gone(payer)
    a.wait_for("no payments match")
    wait_until(lambda: pg.scalar("SELECT deleted_at IS NOT NULL FROM payments WHERE id = '%s'"
                                 % p["id"]) == "t", 5.0, message="deleted_at set")
    assert api.get("/v1/payments/%s" % p["id"]).status == 404


def test_delete_needs_y(server, api, pg, tui_factory):
    payer = _tag("keeppayer")
    p = create_payment(api, payer=payer)
    t = tui_factory(ws_url(server))
    _open_filtered(t, payer)
    t.keys("d")
    t.wait_for("y deletes")
    t.keys("n")
    t.wait_for("not deleted")
    time.sleep(0.3)
    assert api.get("/v1/payments/%s" % p["id"]).status == 200


def test_detail_pane_shows_audit_trail(server, api, tui_factory):
    payer = _tag("auditpayer")
    p = create_payment(api, payer=payer, reference="REF-AUDIT")
    r = api.patch("/v1/payments/%s" % p["id"], {"status": "failed"})
    assert r.status == 200, r
    t = tui_factory(ws_url(server))
    _open_filtered(t, payer)
    t.keys("Enter")
    screen = t.wait_for(lambda s: "Audit trail" in s and "payment.updated" in s,
                        message="the audit trail")
    assert "payment.created" in screen and p["id"] in screen, screen
    t.keys("Escape")
    t.wait_gone("Audit trail")


def test_viewer_token_is_read_only(server, tui_factory):
    t = tui_factory(ws_url(server), token="view-token")
    t.wait_for("LIVE")
    t.wait_for("read-only")
    t.keys("n")
    t.wait_for(lambda s: "read-only" in s and "New payment" not in s,
               message="the write key refused with a reason")
    assert "New payment" not in t.screen()
