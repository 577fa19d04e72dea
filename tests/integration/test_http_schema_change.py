"""A migration that changes a column's type while servers run.

In a rolling deploy, the new version's migration runs while the old
replicas still serve. The server runs its SQL as prepared statements, and
PostgreSQL refuses to run a prepared statement whose result types changed
("cached plan must not change result type"), on every later try too. The
server must prepare such a statement again and answer as if nothing
happened."""

import urllib.parse

from harness import create_payment


def test_requests_keep_working_after_a_column_changes_type(pg, own_db, start_server):
    # One connection, so every statement below is prepared on the
    # connection that meets the change.
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_POOL_SIZE=1)
    api = srv.api
    first = create_payment(api, payer="before-change")
    path = "/v1/payments/%s" % first["id"]
    list_path = "/v1/payments?" + urllib.parse.urlencode({"payer": "before-change"})
    assert api.get(path).status == 200
    assert api.get(list_path).status == 200
    assert api.patch(path, {"description": "prepared"}).status == 200

    pg.psql("ALTER TABLE payments ALTER COLUMN payer TYPE varchar(400)", db=own_db["db"])

    r = api.get(path)
    assert r.status == 200, r
    assert r.json["payer"] == "before-change"
    r = api.get(list_path)
    assert r.status == 200, r
    assert [p["id"] for p in r.json["data"]] == [first["id"]]
    # A write: its statements run inside a transaction, which has to be
    # rolled back and run again as a whole.
    r = api.patch(path, {"description": "after the change"})
    assert r.status == 200, r
    assert r.json["description"] == "after the change"
    second = create_payment(api, payer="after-change")
    assert api.get("/v1/payments/%s" % second["id"]).json["payer"] == "after-change"
    assert "database error" not in srv.stderr_text()
