"""paytrackr-tui paging through more payments than its window holds, when
thousands of them share one created_at (bulk SQL inserts do that): every
row once, in the server's order, down to the last and back up to the
first, across the window being trimmed at both ends."""

import uuid

import pytest

from tui_helpers import tui_factory, ws_url  # noqa: F401

ROWS = 8000  # well over the TUI's window of 3,000 rows, so it trims both ends


@pytest.fixture
def same_instant_rows(pg, server):
    """ROWS payments created in one statement: one created_at, to the
    microsecond. Yields their payers in the server's order (newest first,
    then by id) and removes them afterwards."""
    tag = "tie%s" % uuid.uuid4().hex[:6]
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, "
            "created_at, updated_at) SELECT g, 'EUR', '%s-' || lpad(g::text, 5, '0'), 'payee', "
            "'other', 'pending', now(), now() FROM generate_series(1, %d) g" % (tag, ROWS))
    order = [r[0] for r in pg.psql(
        "SELECT payer FROM payments WHERE payer LIKE '%s-%%' ORDER BY created_at DESC, id DESC"
        % tag)]
    assert len(order) == ROWS
    yield tag, order
    pg.psql("DELETE FROM payments WHERE payer LIKE '%s-%%'" % tag)


def shown_payers(t, tag):
    return [w for line in t.lines() for w in line.split() if w.startswith(tag + "-")]


def view_state(t, tag):
    """(first row shown, row under the cursor): what a page key changes."""
    shown = shown_payers(t, tag)
    at_cursor = [w for line in t.lines() if line.startswith(">")
                 for w in line.split() if w.startswith(tag + "-")]
    return (shown[0] if shown else None, at_cursor[0] if at_cursor else None)


def assert_contiguous(t, tag, order, where):
    shown = shown_payers(t, tag)
    assert shown, "no rows shown %s" % where
    start = order.index(shown[0])
    assert shown == order[start:start + len(shown)], (
        "rows %s are not the server's order:\n%s" % (where, t.screen()))


def test_paging_over_thousands_of_equal_timestamps(server, same_instant_rows, tui_factory):
    tag, order = same_instant_rows
    t = tui_factory(ws_url(server))
    t.wait_for("LIVE")
    t.keys("/")
    t.type(tag)
    t.keys("Enter")
    t.wait_for(lambda s: order[0] in s and "filter:" in s, message="the first page")
    assert_contiguous(t, tag, order, "on the first page")

    # down into the middle, past the window's size: the top is trimmed and
    # the rows below are not loaded yet
    t.press("NPage", 5000 // 30)
    t.wait_for(lambda s: "loading" not in s and view_state(t, tag)[1] is not None
               and order.index(view_state(t, tag)[1]) >= 4000, timeout=30,
               message="the cursor past row 4,000")
    assert_contiguous(t, tag, order, "in the middle")

    # back up to the first, through rows trimmed on the way down
    t.press("PPage", 5000 // 20)
    t.wait_for(lambda s: "(row 1)" in t.status_bar() and order[0] in s, timeout=30,
               message="the first row again")
    assert_contiguous(t, tag, order, "back at the top")
    assert shown_payers(t, tag)[0] == order[0]

    # one more walk down checks every row once, in order, a page at a time
    seen = []
    for _ in range(ROWS):
        shown = shown_payers(t, tag)
        start = order.index(shown[0])
        assert shown == order[start:start + len(shown)], t.screen()
        seen.extend(p for p in shown if not seen or order.index(p) > order.index(seen[-1]))
        if shown[-1] == order[-1]:
            break
        before = view_state(t, tag)
        t.keys("NPage")
        t.wait_for(lambda s: view_state(t, tag) != before and "loading" not in s,
                   timeout=10, message="the next page after %s" % shown[-1])
    assert seen == order, "rows missing or repeated: %d seen of %d" % (len(seen), len(order))
