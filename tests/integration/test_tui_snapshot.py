"""paytrackr-tui when events arrive while a list page is in flight.

A list answer is a snapshot taken when the server ran the query; the
changes committed after it reach the TUI as events, possibly before the
answer itself. The TUI must apply them over the answer: a payment created
meanwhile shows, one updated meanwhile shows its new version, and one
deleted meanwhile does not come back.

To make the window wide and deterministic, the test gives the server a
database of its own, with a role that row-level security applies to, and
a SELECT policy that makes reading the seeded rows wait on an advisory
lock the test holds. Writing and streaming never read those rows, so they
go on while the TUI's first page waits."""

import subprocess
import uuid

import pytest

import stream_helpers as sh
from harness import PG_BIN, create_payment, wait_until
from tui_helpers import tui_factory, ws_url  # noqa: F401

GATE_KEY = 731_000_001


class LockHolder:
    """A psql session holding an exclusive advisory lock until release()."""

    def __init__(self, pg, db, key):
        self.proc = subprocess.Popen(
            [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(pg.port), "-U", "postgres", "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("SELECT pg_advisory_lock(%d), 'locked';\n" % key)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert "locked" in line, "the gate lock was not taken: %r" % line

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # ends the session, which drops the lock
            self.proc.wait(timeout=30)


def install_gate(pg, db, prefix="seed-", key=GATE_KEY):
    """Reading a payment whose payer starts with `prefix` waits for the
    shared side of the gate lock `key`; every other row reads freely."""
    pg.psql("""
        CREATE FUNCTION tui_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(%d); RETURN true; END $$;
        ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
        ALTER TABLE payments FORCE ROW LEVEL SECURITY;
        CREATE POLICY tui_all ON payments FOR ALL USING (true) WITH CHECK (true);
        CREATE POLICY tui_gate ON payments AS RESTRICTIVE FOR SELECT
            USING (payer NOT LIKE '%s%%' OR tui_gate());
    """ % (key, prefix), db=db)


def test_changes_while_the_first_page_loads_are_applied_over_it(
        pg, own_db, start_server, tui_factory):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    for i in range(10):
        create_payment(srv.api, payer="seed-%02d" % i)
    # not gated: deleting and updating read the row they change
    doomed = create_payment(srv.api, payer="live-doomed")
    changed = create_payment(srv.api, payer="live-changed")
    install_gate(pg, own_db["db"])
    gate = LockHolder(pg, own_db["db"], GATE_KEY)
    try:
        t = tui_factory(ws_url(srv))
        t.wait_for("LIVE")
        # the first page is waiting at the gate
        assert wait_until(lambda: pg.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid = %d" % GATE_KEY) >= 1, 10, message="the list query at the gate")
        sent = sh.metric(srv, "paytrackr_ws_messages_sent_total")
        fresh = create_payment(srv.api, payer="live-" + uuid.uuid4().hex[:8])
        r = srv.api.patch("/v1/payments/%s" % changed["id"], {"status": "settled"},
                          headers={"If-Match": '"%d"' % changed["version"]})
        assert r.status == 200, r
        r = srv.api.delete("/v1/payments/%s" % doomed["id"])
        assert r.status == 204, r
        # the three events went out to the TUI before the page can
        wait_until(lambda: sh.metric(srv, "paytrackr_ws_messages_sent_total") >= sent + 3, 10,
                   message="three events sent")
        assert "seed-00" not in t.screen(), "the page came through the gate early"
    finally:
        gate.release()
    screen = t.wait_for(lambda s: "seed-00" in s and fresh["payer"] in s, timeout=10,
                        message="the page and the payment created meanwhile")
    assert screen.count(fresh["payer"]) == 1, screen
    assert "live-doomed" not in screen, screen
    line = t.line_with("live-changed")
    assert line is not None and "settled" in line, screen
