"""One large answer on the stream is not a slow client.

A 500-row list with large metadata is bigger than the 4 MiB a socket may
hold of events it has not read; it used to close the socket with 4008.
Answers are capped on their own (PAYTRACKR_WS_ANSWER_MAX_BYTES: a larger
one is an error result naming the limit) and every queue together stays
under PAYTRACKR_WS_QUEUED_BYTES_MAX (over it, a 503 result), and the
connection stays open either way."""
import asyncio
import uuid

import stream_helpers as sh

ROWS = 500


def _insert_big_payments(pg, db, payer):
    # 20 metadata values of 500 characters: about 11 KB a row, 5.5 MB in all.
    meta = "jsonb_object_agg('k' || k, repeat(chr(97 + (k + i) % 26), 500))"
    pg.psql("INSERT INTO payments (amount, currency, payer, payee, method, status, metadata, "
            "created_at, updated_at) "
            "SELECT i, 'EUR', '%s', 'big-payee', 'card', 'pending', "
            "(SELECT %s FROM generate_series(1, 20) k), clock_timestamp(), clock_timestamp() "
            "FROM generate_series(1, %d) i"
            % (payer, meta, ROWS), db=db)


async def _list(srv, payer, limit=ROWS):
    async with sh.connect(srv, max_size=32 << 20) as ws:
        big = await sh.request(ws, {"type": "list", "query": {"payer": payer, "limit": limit}},
                               timeout=60)
        # The connection is still open and answers.
        small = await sh.request(ws, {"type": "list", "query": {"payer": payer, "limit": 1}})
        return big, small


def test_large_list_page_on_the_stream(pg, own_db, start_server):
    payer = "big-" + uuid.uuid4().hex[:8]
    url = own_db["url"]
    plain = start_server(PAYTRACKR_DATABASE_URL=url)
    _insert_big_payments(pg, own_db["db"], payer)

    big, small = asyncio.run(_list(plain, payer))
    assert big["type"] == "result" and big["status"] == 200, str(big)[:300]
    assert len(big["body"]["data"]) == ROWS
    assert small["status"] == 200 and len(small["body"]["data"]) == 1
    assert sh.metric(plain, "paytrackr_ws_queued_bytes") == 0

    # An answer over the cap: an error result naming the limit.
    capped = start_server(PAYTRACKR_DATABASE_URL=url, PAYTRACKR_WS_ANSWER_MAX_BYTES=1 << 20)
    big, small = asyncio.run(_list(capped, payer))
    assert big["type"] == "result" and big["status"] == 413, str(big)[:300]
    assert big["body"]["error"]["code"] == "answer_too_large"
    assert "PAYTRACKR_WS_ANSWER_MAX_BYTES" in big["body"]["error"]["message"]
    assert small["status"] == 200
    assert sh.metric(capped, "paytrackr_ws_answers_capped_total") == 1

    # Over the process-wide budget: 503, the connection stays.
    tight = start_server(PAYTRACKR_DATABASE_URL=url, PAYTRACKR_WS_QUEUED_BYTES_MAX=2 << 20)
    big, small = asyncio.run(_list(tight, payer))
    assert big["type"] == "result" and big["status"] == 503, str(big)[:300]
    assert "PAYTRACKR_WS_QUEUED_BYTES_MAX" in big["body"]["error"]["message"]
    assert small["status"] == 200
    assert sh.metric(tight, "paytrackr_ws_queued_bytes") == 0
    for srv in (plain, capped, tight):
        srv.stop()
        srv.assert_clean()
