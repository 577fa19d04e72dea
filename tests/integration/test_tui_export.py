"""paytrackr-tui export (v1.1): `e` writes every payment matching the
current filter to a CSV file, with a progress line, and the TUI stays
responsive while the server streams it."""

import csv
import tempfile
import uuid
from pathlib import Path

from harness import create_payment, wait_until
from test_tui_snapshot import LockHolder, install_gate
from tui_helpers import tui_factory, ws_url  # noqa: F401

HEADER = ["id", "created_at", "updated_at", "status", "method", "currency", "amount",
          "amount_major", "amount_refunded", "payer", "payee", "reference", "description",
          "metadata"]
GATE_KEY = 731_000_014


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _export(t, path):
    t.keys("e")
    t.wait_for("Export to CSV")
    t.keys("C-u")
    t.type(str(path))
    t.keys("Enter")


def test_export_writes_the_filtered_payments(server, api, tui_factory):
    tag = "exp%s" % uuid.uuid4().hex[:8]
    made = [
        create_payment(api, payer=tag + " Smith, \"Jr\"", amount=125000, currency="EUR",
                       description="two\nlines", reference="=HYPERLINK(1)"),
        create_payment(api, payer=tag + "-yen", amount=150000, currency="JPY"),
        create_payment(api, payer=tag + "-kwd", amount=12345, currency="KWD",
                       metadata={"cost_center": "42"}),
    ]
    create_payment(api, payer="not-" + uuid.uuid4().hex[:6])  # outside the filter
    out = Path(tempfile.mkdtemp(prefix="pt-export-")) / "out.csv"
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.keys("/")
    t.type(tag)
    t.keys("Enter")
    t.wait_for(lambda s: "3 payments" in s and "filter:" in s and "(row 1)" in s,
               message="the 3 filtered rows")
    _export(t, out)
    t.wait_for("exported 3 payments to %s" % out, timeout=20)
    rows = _read_csv(out)
    assert rows[0] == HEADER, rows[0]
    body = {r[0]: dict(zip(HEADER, r)) for r in rows[1:]}
    assert len(rows) == 4 and set(body) == {p["id"] for p in made}, rows
    # the table's order: newest first
    assert [r[0] for r in rows[1:]] == [p["id"] for p in reversed(made)]
    first = body[made[0]["id"]]
    assert first["payer"] == made[0]["payer"] and first["description"] == "two\nlines", first
    assert first["amount"] == "125000" and first["amount_major"] == "1250.00", first
    assert first["reference"] == "'=HYPERLINK(1)", first
    assert body[made[1]["id"]]["amount_major"] == "150000"
    assert body[made[2]["id"]]["amount_major"] == "12.345"
    assert not out.with_name("out.csv.part").exists()

    # an existing file is replaced only after a second Enter
    t.keys("/", "C-u")
    t.type(tag + "-yen")
    t.keys("Enter")
    t.wait_for(lambda s: "1 payment" in s and "-kwd" not in s, message="one row")
    _export(t, out)
    t.wait_for("the file exists: Enter again replaces it")
    assert len(_read_csv(out)) == 4
    t.keys("Enter")
    t.wait_for("exported 1 payment to %s" % out)
    assert [r[0] for r in _read_csv(out)[1:]] == [made[1]["id"]]


def test_tui_stays_responsive_while_an_export_runs(pg, own_db, start_server, tui_factory):
    """The export's rows wait at a gate in the database: meanwhile the
    progress line shows, keys still work, and one can be cancelled. (The
    server gives up a lock wait after 5 s: each gated stretch is shorter.)"""
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    gated = create_payment(srv.api, payer="gate-oldest")
    for i in range(5):
        create_payment(srv.api, payer="free-%02d" % i)
    install_gate(pg, own_db["db"], "gate-", GATE_KEY)
    out = Path(tempfile.mkdtemp(prefix="pt-export-")) / "gated.csv"
    t = tui_factory(ws_url(srv))
    t.wait_for(lambda s: "LIVE" in s and "free-04" in s, message="the first rows")

    def start_at_gate(path):
        _export(t, path)
        t.wait_for(lambda s: "exporting to %s" % path in s, message="the progress line")
        assert wait_until(lambda: pg.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid = %d" % GATE_KEY) >= 1, 5, message="the export at the gate")

    gate = LockHolder(pg, own_db["db"], GATE_KEY)
    try:
        start_at_gate(out)
        # the loop still serves keys: help opens and closes, the cursor moves
        t.keys("?")
        t.wait_for("Help: keys")
        t.keys("q")
        t.wait_gone("Help: keys")
        t.keys("j")
        t.wait_for(lambda s: "(row 2)" in t.status_bar(), message="the cursor moved")
        assert "exporting to" in t.screen() and not out.exists()
    finally:
        gate.release()
    t.wait_for("exported 6 payments to %s" % out, timeout=20)
    ids = [r[0] for r in _read_csv(out)[1:]]
    assert len(ids) == 6 and ids[-1] == gated["id"], ids

    # one cancelled while it waits: no file, no part left behind
    dropped = out.with_name("dropped.csv")
    gate = LockHolder(pg, own_db["db"], GATE_KEY)
    try:
        start_at_gate(dropped)
        t.keys("e")
        t.wait_for("x cancels the export")
        t.keys("x")
        t.wait_for("export not written: cancelled")
    finally:
        gate.release()
    assert not dropped.exists() and not dropped.with_name("dropped.csv.part").exists()
