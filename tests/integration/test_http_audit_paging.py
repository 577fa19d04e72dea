"""GET /v1/payments/{id}/events is paged like /v1/events: `after` and
`limit` (1..1000); without them the first 1,000 events and `next_after`
to ask for the rest. A payment with a long history no longer loads it
all at once."""
import uuid

from harness import assert_error, create_payment

EXTRA = 1100  # events beyond the create: more than one full page


def _events_url(pid, query=""):
    return "/v1/payments/%s/events%s" % (pid, query)


def test_audit_trail_pages(pg, own_db, start_server):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    api = srv.api
    p = create_payment(api)
    # A long history, written straight into the table of this test's own
    # database (through the API it would take minutes under ASan).
    pg.psql("INSERT INTO payment_events (type, payment_id, at, payment) "
            "SELECT 'payment.updated', id, now(), to_json(payments) FROM payments, "
            "generate_series(1, %d) WHERE id = '%s'" % (EXTRA, p["id"]), db=own_db["db"])
    seqs = [int(r[0]) for r in pg.psql("SELECT seq FROM payment_events WHERE payment_id = '%s' "
                                       "ORDER BY seq" % p["id"], db=own_db["db"])]
    assert len(seqs) == EXTRA + 1

    first = api.get(_events_url(p["id"]))
    assert first.status == 200, first
    assert [e["seq"] for e in first.json["data"]] == seqs[:1000]
    assert first.json["next_after"] == seqs[999]
    assert first.json["data"][0]["type"] == "payment.created"
    assert first.json["data"][0]["payment"]["id"] == p["id"]

    rest = api.get(_events_url(p["id"], "?after=%d" % first.json["next_after"]))
    assert rest.status == 200, rest
    assert [e["seq"] for e in rest.json["data"]] == seqs[1000:]
    assert rest.json["next_after"] == seqs[-1]

    # Past the end: an empty page, not 404, and next_after stays.
    end = api.get(_events_url(p["id"], "?after=%d" % seqs[-1]))
    assert end.status == 200 and end.json == {"data": [], "next_after": seqs[-1]}, end

    two = api.get(_events_url(p["id"], "?after=%d&limit=2" % seqs[4]))
    assert [e["seq"] for e in two.json["data"]] == seqs[5:7]
    assert two.json["next_after"] == seqs[6]

    for bad, field in (("?limit=0", "limit"), ("?limit=1001", "limit"), ("?after=-1", "after"),
                       ("?after=x", "after")):
        assert_error(api.get(_events_url(p["id"], bad)), 400, "bad_request", field)
    assert_error(api.get(_events_url(p["id"], "?since=3")), 400, "bad_request")
    assert_error(api.get(_events_url(uuid.uuid4())), 404, "not_found")
    assert_error(api.get(_events_url(uuid.uuid4(), "?after=5")), 404, "not_found")
    srv.stop()
    srv.assert_clean()
