"""paytrackr-tui looks the server's name up off its loop's thread: with a
name server that takes seconds (the libslowdns.so shim under the TUI), the
screen draws and keys work meanwhile, and the TUI then connects to the
address while the name stays the Host header."""

import time

from harness import build_file, create_payment
from tui_helpers import tui_factory  # noqa: F401

SLOW_NAME = "slowdns.paytrackr.test"
DELAY_S = 8


def test_a_slow_name_lookup_does_not_freeze_the_tui(server, api, tui_factory):
    env = {
        "LD_PRELOAD": str(build_file("tests", "shims", "libslowdns.so")),
        "PAYTRACKR_SLOWDNS_NAME": SLOW_NAME,
        "PAYTRACKR_SLOWDNS_MS": str(DELAY_S * 1000),
        # the shim comes before the sanitizer runtime in the library order
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:"
                        "verify_asan_link_order=0",
    }
    payer = "dns-%d" % time.monotonic_ns()
    create_payment(api, payer=payer)
    started = time.monotonic()
    t = tui_factory("ws://%s:%d" % (SLOW_NAME, server.port), env=env)
    t.wait_for("CONNECTING", timeout=DELAY_S - 3,
               message="the first screen while the name is looked up")
    t.keys("?")
    t.wait_for("Help", timeout=DELAY_S - 3, message="help while the name is looked up")
    assert time.monotonic() - started < DELAY_S, "the keys waited for the lookup"
    t.keys("x")
    t.wait_gone("Help")
    t.wait_for("LIVE", timeout=DELAY_S + 20)
    # the audit trail comes over HTTP, to the address the stream found
    t.keys("/")
    t.type(payer)
    t.keys("Enter")
    t.wait_for(lambda s: "filter:" in s and s.count(payer) >= 2 and "1 payment" in s,
               message="the filtered row")
    t.keys("Enter")
    t.wait_for(lambda s: "Audit trail" in s and "payment.created" in s,
               message="the audit trail")
