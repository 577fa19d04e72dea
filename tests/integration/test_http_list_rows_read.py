"""GET /v1/payments reads only the rows of the page it answers.

A page must come straight off the (created_at, id) index and stop after
limit + 1 rows, however many payments share a created_at (a bulk import
does that) and however often the query has run (PostgreSQL may switch a
prepared statement to a generic plan after five runs, and for a query
with optional filters that plan is a full scan and sort).

To count the rows a query reads, the test gives the server a database of
its own whose payments carry a row-level security policy: every row the
scan hands over calls a function that bumps a sequence, and sequences are
not rolled back, so the count is exact whatever the plan."""

import urllib.parse

import pytest

TIED = 3000
LIMIT = 20
# A row or two past limit + 1 is the scan's business; a tie group or a
# table is not.
SLACK = 3


def install_counter(pg, own_db):
    pg.psql("""
        CREATE SEQUENCE rows_read;
        GRANT USAGE, SELECT, UPDATE ON SEQUENCE rows_read TO %(role)s;
        CREATE FUNCTION count_row() RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ SELECT nextval('rows_read') > 0 $$;
        ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
        ALTER TABLE payments FORCE ROW LEVEL SECURITY;
        CREATE POLICY all_rows ON payments FOR ALL USING (true) WITH CHECK (true);
        CREATE POLICY counted ON payments AS RESTRICTIVE FOR SELECT USING (count_row());
    """ % {"role": own_db["role"]}, db=own_db["db"])


def rows_read(pg, own_db):
    [[value, called]] = pg.psql("SELECT last_value, is_called FROM rows_read", db=own_db["db"])
    return int(value) if called == "t" else 0


@pytest.fixture
def tied_server(pg, own_db, start_server):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    # One created_at for all: the order within it is the id's.
    pg.psql("""
        INSERT INTO payments (amount, currency, payer, payee, method, status,
                              created_at, updated_at)
        SELECT i, 'EUR', 'payer ' || i, 'payee', 'card', 'pending',
               '2026-03-01T12:00:00Z', '2026-03-01T12:00:00Z'
        FROM generate_series(1, %d) i;
        ANALYZE payments;
    """ % TIED, db=own_db["db"])
    install_counter(pg, own_db)
    return srv


def page(srv, **params):
    r = srv.api.get("/v1/payments?" + urllib.parse.urlencode(params))
    assert r.status == 200, r
    return r.json


@pytest.mark.parametrize("order", ["created_at.desc", "created_at.asc"])
def test_pages_among_equal_timestamps_read_only_their_rows(pg, own_db, tied_server, order):
    seen = []
    cursor = None
    # Eight pages: past the five runs after which PostgreSQL may settle on
    # a generic plan.
    for n in range(8):
        params = {"limit": LIMIT, "order": order}
        if cursor:
            params["cursor"] = cursor
        before = rows_read(pg, own_db)
        body = page(tied_server, **params)
        read = rows_read(pg, own_db) - before
        assert len(body["data"]) == LIMIT and body["has_more"], (n, body)
        assert read <= LIMIT + 1 + SLACK, "page %d read %d rows for %d" % (n, read, LIMIT)
        seen += [p["id"] for p in body["data"]]
        cursor = body["next_cursor"]
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen, reverse=(order == "created_at.desc"))


def test_filtered_pages_do_not_fall_back_to_a_full_scan(pg, own_db, tied_server):
    # The same statement with filters set and unset, in turns: neither may
    # end up on a plan that reads the whole table.
    for n in range(8):
        params = {"limit": LIMIT}
        if n % 2:
            params["currency"] = "EUR"
        before = rows_read(pg, own_db)
        body = page(tied_server, **params)
        read = rows_read(pg, own_db) - before
        assert len(body["data"]) == LIMIT, body
        assert read <= LIMIT + 1 + SLACK, "request %d (%r) read %d rows" % (n, params, read)
