"""paytrackr-tui when the server goes away: OFFLINE, no crash, retries,
and on reconnect resumes with `after` so nothing written meanwhile is
missed."""

import uuid

from harness import create_payment
from tui_helpers import tui_factory, ws_url  # noqa: F401


def test_offline_then_resume_shows_payments_written_meanwhile(start_server, tui_factory):
    first = start_server()
    port = first.port
    t = tui_factory(ws_url(first))
    t.wait_for("LIVE")
    before = "before-" + uuid.uuid4().hex[:8]
    create_payment(first.api, payer=before)
    t.wait_for(before)

    first.stop()
    t.wait_for("OFFLINE", timeout=10)
    # still usable while offline: moving and the help overlay respond
    t.keys("j", "k", "?")
    t.wait_for("Help")
    t.keys("Escape")
    t.wait_gone("Help")
    assert t.tui_pid() is not None, "the TUI exited while the server was down"

    # payments written meanwhile, through another replica on the same database
    other = start_server()
    meanwhile = ["meanwhile-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(3)]
    for payer in meanwhile:
        create_payment(other.api, payer=payer)
    t.wait_for("OFFLINE")

    # the server comes back on the address the TUI knows
    start_server(PAYTRACKR_LISTEN="127.0.0.1:%d" % port)
    t.wait_for("LIVE", timeout=15)
    for payer in meanwhile:
        t.wait_for(payer, timeout=5)
    assert before in t.screen()
    # and live again afterwards
    after = "after-" + uuid.uuid4().hex[:8]
    create_payment(other.api, payer=after)
    t.wait_for(after, timeout=5)
    # each payment shows exactly once
    screen = t.screen()
    for payer in meanwhile + [before, after]:
        assert screen.count(payer) == 1, (payer, screen)
