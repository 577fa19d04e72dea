"""paytrackr-tui terminal hygiene: resizing, filter, sort order, help,
UTF-8 alignment, pause, and restoring the terminal on quit and signals."""

import signal
import time
import uuid

from harness import create_payment
from tui_helpers import display_width, tui_factory, ws_url  # noqa: F401


def test_resize_down_to_80x24_and_back(server, api, tui_factory):
    payer = "resize-" + uuid.uuid4().hex[:8]
    create_payment(api, payer=payer)
    t = tui_factory(ws_url(server))
    t.wait_for(payer)
    t.resize(80, 24)
    screen = t.wait_for(lambda s: max(len(l) for l in s.split("\n")) <= 80 and "TIME" in s
                        and "LIVE" in s, message="the 80x24 layout")
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= 24, screen
    assert any(payer[:8] in l for l in lines), screen
    t.resize(60, 20)
    t.wait_for("too small")
    t.resize(120, 40)
    t.wait_for(lambda s: "too small" not in s and payer in s, message="the full layout again")


def test_filter_sort_order_help_and_quit_restore_terminal(server, api, tui_factory):
    tag = "flt" + uuid.uuid4().hex[:8]
    older = create_payment(api, payer=tag + "-older", currency="EUR")
    time.sleep(0.01)  # distinct created_at milliseconds, so the order is certain
    newer = create_payment(api, payer=tag + "-newer", currency="USD")
    t = tui_factory(ws_url(server))
    t.wait_for(tag + "-newer")
    assert t.alternate_screen_on()

    t.keys("/")
    t.type(tag)
    t.keys("Enter")
    # The count comes from /v1/stats, apart from the rows: wait for both.
    screen = t.wait_for(lambda s: "2 payments" in s and "filter:" in s and newer["payer"] in s
                        and older["payer"] in s, message="2 rows")
    assert screen.index(newer["payer"]) < screen.index(older["payer"]), screen

    t.keys("o")
    screen = t.wait_for(lambda s: "asc" in s.split("\n")[0] and "2 payments" in s,
                        message="ascending order")
    t.wait_for(lambda s: newer["payer"] in s and older["payer"] in s
               and s.index(older["payer"]) < s.index(newer["payer"]), message="oldest first")

    # filters combine like the API's: text plus currency
    t.keys("/")
    t.keys("C-u")
    t.type(tag + " currency:USD")
    t.keys("Enter")
    t.wait_for(lambda s: "1 payment" in s and newer["payer"] in s and older["payer"] not in s,
               message="only the USD payment")
    t.keys("/")
    t.keys("C-u")
    t.type("status:nonsense")
    t.keys("Enter")
    t.wait_for("unknown status")
    t.keys("Escape")

    t.keys("?")
    t.wait_for("Help")
    t.keys("x")
    t.wait_gone("Help")

    t.keys("q")
    assert t.wait_exit() == 0
    assert not t.alternate_screen_on(), "still on the alternate screen after q"
    stty = t.stty_text().split()
    assert "icanon" in stty and "echo" in stty, stty
    t.assert_clean()


def test_sigterm_restores_terminal(server, tui_factory):
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.signal(signal.SIGTERM)
    t.wait_exit()
    assert not t.alternate_screen_on()
    stty = t.stty_text().split()
    assert "icanon" in stty and "echo" in stty, stty


def test_wide_characters_line_up(server, api, tui_factory):
    tag = uuid.uuid4().hex[:6]
    wide = create_payment(api, payer="株式会社テスト" + tag, payee="Żółć " + tag, amount=100,
                          currency="EUR")
    narrow = create_payment(api, payer="ACME " + tag, payee="Globex " + tag, amount=99999,
                            currency="EUR")
    t = tui_factory(ws_url(server))
    t.wait_for(wide["payer"])
    t.wait_for(narrow["payer"])
    lw, ln = t.line_with(wide["payer"]), t.line_with(narrow["payer"])
    # the currency column starts at the same terminal column in both rows
    assert display_width(lw[:lw.index(" EUR ")]) == display_width(ln[:ln.index(" EUR ")]), (lw, ln)
    assert "1.00" in lw and "999.99" in ln


def test_pause_counts_and_applies_on_resume(server, api, tui_factory):
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.keys("p")
    t.wait_for("PAUSED")
    payer = "paused-" + uuid.uuid4().hex[:8]
    create_payment(api, payer=payer)
    t.wait_for(lambda s: "PAUSED (1 waiting)" in s or "waiting)" in s, message="a held change")
    assert payer not in t.screen()
    t.keys("p")
    t.wait_for(payer)
    t.wait_gone("PAUSED")
