"""The stream's delivery guarantees: every committed event exactly once, in
seq order, whatever the commit order, reconnects, a killed LISTEN
connection, a restarted PostgreSQL or the number of server processes."""

import asyncio
import json
import random
import time

import pytest

import harness
import stream_helpers as sh


def run(coro):
    return asyncio.run(coro)


def test_commit_order_many_writers_exactly_once(server, pg):
    """8 writers whose commits come in another order than their seqs (each
    sleeps a random time between drawing its seq and committing; a fifth
    roll back), 4 subscribers of which 2 drop and resume at random moments:
    each ends with every committed event once, in increasing seq. Random
    seed in the failure message."""
    rng, seed = sh.random_rng()
    tag = harness.unique("order")

    async def scenario():
        start = sh.head_seq(pg)
        subs = [sh.Collector(server, "sub%d" % i, after=start) for i in range(4)]
        for s in subs:
            await s.start()
        # 6 writers announce their seqs as the server does; 2 do not, which
        # the stable seq must handle too (by waiting for them)
        scripts = [sh.writer_script(40, tag, random.Random(rng.random()), max_delay=0.03,
                                    rollback_share=0.2, announce=i < 6) for i in range(8)]
        writers = asyncio.gather(*(sh.run_psql_script(pg, s) for s in scripts))

        async def chaos():
            while not writers.done():
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                await subs[rng.randrange(2)].reconnect()
        chaos_task = asyncio.ensure_future(chaos())
        await writers
        await chaos_task
        expected = sh.committed_seqs(pg, start)
        assert len(sh.tagged_seqs(pg, tag)) == len(expected) > 150, "the writers did not commit"
        for s in subs:
            await s.wait_for(expected)
        await asyncio.sleep(0.3)  # anything extra would arrive now
        for s in subs:
            await s.stop()
        for s in subs:
            sh.assert_exactly(s.seqs, expected, "%s (seed %d)" % (s.name, seed))
        assert subs[0].reconnects + subs[1].reconnects >= 2, "the subscribers did not reconnect"
    run(scenario())


async def _hold_a_seq_then_commit_three(pg, tag, announce, hold_s=4):
    """Starts a writer that draws seq N and commits only after `hold_s`
    seconds, waits until it has drawn N, then commits three writers (N+1..)
    in full. Returns (the held writer's future, N)."""
    slow = (
        "BEGIN;\n"
        "WITH p AS (INSERT INTO payments (amount, currency, payer, payee, method, status,"
        " created_at, updated_at) VALUES (1, 'EUR', '%s', 'x', 'other', 'pending', now(),"
        " now()) RETURNING *), e AS (INSERT INTO payment_events (type, payment_id, at,"
        " payment) SELECT 'payment.created', p.id, p.updated_at, %s FROM p RETURNING seq)\n"
        "SELECT pg_notify('paytrackr_events', seq::text)%s FROM e \\g /dev/null\n"
        "SELECT pg_sleep(%s) \\g /dev/null\nCOMMIT;\n" % (
            tag, sh.payment_json_sql("p"),
            ", pg_advisory_xact_lock((seq >> 32)::int, ((seq << 32) >> 32)::int)"
            if announce else "", hold_s))
    drawn = sh.sequence_value(pg)
    held = asyncio.ensure_future(sh.run_psql_script(pg, slow))
    # wait until the slow writer has drawn its seq
    deadline = time.monotonic() + 10
    while sh.sequence_value(pg) == drawn:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    held_seq = sh.sequence_value(pg)
    fast = sh.writer_script(3, tag, random.Random(1), max_delay=0, rollback_share=0)
    await sh.run_psql_script(pg, fast)
    return held, held_seq


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "unannounced"])
def test_resume_after_seq_that_committed_early(server, pg, announce):
    """Seq N is drawn first and commits last; N+1.. commit meanwhile. A
    subscriber must never see N+1 before N (it could then resume with
    after=N+1 and lose N): nothing after N is delivered while N is in
    flight, then all arrive, in order."""
    tag = harness.unique("hold")

    async def scenario():
        start = sh.head_seq(pg)
        sub = sh.Collector(server, "sub", after=start)
        await sub.start()
        held, _ = await _hold_a_seq_then_commit_three(pg, tag, announce)
        await asyncio.sleep(0.6)
        assert not held.done(), "the slow writer committed too early for this test"
        assert sub.seqs == [], "events after a seq still in flight were delivered: %r" % sub.seqs
        await held
        expected = sh.committed_seqs(pg, start)
        assert len(expected) == 4
        await sub.wait_for(expected)
        await sub.stop()
        sh.assert_exactly(sub.seqs, expected, "sub")
    run(scenario())


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "unannounced"])
def test_feed_stops_before_a_seq_still_committing(server, pg, announce):
    """The HTTP feed's version of the test above: while seq N is in flight,
    GET /v1/events hands out nothing after N (a poller would resume with
    next_after past N and lose it). An announced writer is skipped at once
    (the page ends before N); for one that does not announce, the feed
    waits for it (up to 5 s) and then serves N first."""
    tag = harness.unique("feedhold")

    def feed(after):
        r = server.api.get("/v1/events?after=%d&limit=1000" % after)
        assert r.status == 200, r
        return [e["seq"] for e in r.json["data"]], r.json["next_after"]

    async def scenario():
        start = sh.head_seq(pg)
        held, held_seq = await _hold_a_seq_then_commit_three(pg, tag, announce)
        loop = asyncio.get_running_loop()
        seqs, next_after = await loop.run_in_executor(None, feed, start)
        if announce:
            assert not held.done(), "the slow writer committed too early for this test"
            assert all(s < held_seq for s in seqs), (
                "the feed handed out seqs past %d, still committing: %r" % (held_seq, seqs))
            assert next_after < held_seq, next_after
        else:
            assert seqs[:1] == [held_seq], (
                "the feed answered before seq %d committed: %r" % (held_seq, seqs))
        await held
        expected = sh.committed_seqs(pg, start)
        assert len(expected) == 4 and expected[0] == held_seq
        assert feed(next_after)[0] == [s for s in expected if s > next_after]
    run(scenario())


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "unannounced"])
def test_lone_slow_writer_is_not_skipped(server, pg, announce):
    """One writer holds its seq for longer than the listener's safety tick,
    and no other transaction finishes meanwhile (its xid is then above
    every snapshot's xmax, the case a snapshot's xip list does not show):
    its event must still be delivered when it commits."""
    tag = harness.unique("lone")

    async def scenario():
        start = sh.head_seq(pg)
        sub = sh.Collector(server, "sub", after=start)
        await sub.start()
        script = sh.writer_script(1, tag, random.Random(2), max_delay=0, rollback_share=0,
                                  announce=announce)
        script = script.replace("SELECT pg_sleep(0.0000)", "SELECT pg_sleep(2.5)")
        await sh.run_psql_script(pg, script)
        expected = sh.committed_seqs(pg, start)
        assert len(expected) == 1
        await sub.wait_for(expected, timeout=10)
        await sub.stop()
        sh.assert_exactly(sub.seqs, expected, "sub")
    run(scenario())


def _http_writer(api, n, stop_on_error=False):
    """Creates n payments over HTTP, tolerating 503s and dropped connections
    (the database may be away); returns how many succeeded."""
    ok = 0
    for _ in range(n):
        try:
            r = api.post("/v1/payments", harness.payment_body())
            ok += r.status == 201
        except OSError:
            if stop_on_error:
                raise
            time.sleep(0.05)
    return ok


def test_listener_killed_while_writers_run(start_server, pg):
    srv = start_server()

    async def scenario():
        start = sh.head_seq(pg)
        subs = [sh.Collector(srv, "sub%d" % i, after=start) for i in range(2)]
        for s in subs:
            await s.start()
        rng = random.Random()
        scripts = [sh.writer_script(60, harness.unique("kill"), random.Random(rng.random()),
                                    max_delay=0.01) for _ in range(3)]
        writers = asyncio.gather(asyncio.to_thread(_http_writer, srv.api, 80),
                                 *(sh.run_psql_script(pg, s) for s in scripts))
        killed = 0
        while not writers.done():
            await asyncio.sleep(0.15)
            killed += int(pg.scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'paytrackr-listener'"))
        await writers
        assert killed >= 2, "the listener was not killed"
        expected = sh.committed_seqs(pg, start)
        for s in subs:
            await s.wait_for(expected)
        await asyncio.sleep(0.3)
        for s in subs:
            await s.stop()
            sh.assert_exactly(s.seqs, expected, s.name)
    run(scenario())
    assert "listener: connection lost" in srv.stderr_text()
    harness.wait_until(lambda: srv.probe("/readyz") == 200, 10, message="ready again")


def test_postgres_restarted_while_writers_run(start_server, pg):
    srv = start_server()

    async def scenario():
        start = sh.head_seq(pg)
        sub = sh.Collector(srv, "sub", after=start)
        await sub.start()
        writer = asyncio.ensure_future(asyncio.to_thread(_http_writer, srv.api, 150))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(pg.restart)
        ok = await writer
        # some writes also after the restart, through the same server
        ok += await asyncio.to_thread(_http_writer, srv.api, 20)
        expected = sh.committed_seqs(pg, start)
        assert len(expected) == ok, (len(expected), ok)
        await sub.wait_for(expected, timeout=60)
        await asyncio.sleep(0.3)
        await sub.stop()
        sh.assert_exactly(sub.seqs, expected, "sub")
        # the subscriber's WebSocket survived the database's restart
        assert sub.reconnects == 0, sub.closes
    run(scenario())
    assert "listener: connection lost" in srv.stderr_text()
    harness.wait_until(lambda: srv.probe("/readyz") == 200, 20, message="ready again")


def test_readiness_follows_the_listener(start_server, pg):
    """A listener that cannot fetch (here: its function is missing) makes
    the server not ready, although the database answers."""
    srv = start_server()
    pg.psql("ALTER FUNCTION paytrackr_stream_bounds(interval) "
            "RENAME TO paytrackr_stream_bounds_away")
    try:
        harness.wait_until(lambda: srv.probe("/readyz") == 503, 10, message="not ready")
        r = srv.admin.get("/readyz")
        assert r.json["database"] is True, r
    finally:
        pg.psql("ALTER FUNCTION paytrackr_stream_bounds_away(interval) "
                "RENAME TO paytrackr_stream_bounds")
    harness.wait_until(lambda: srv.probe("/readyz") == 200, 10, message="ready again")


def test_two_servers_behave_as_one(server, start_server, pg):
    other = start_server()

    async def scenario():
        async with sh.connect(other) as ws_b, sh.connect(server) as ws_a:
            head = await sh.subscribe(ws_b)
            via_http = harness.create_payment(server.api)
            res = await sh.request(ws_a, {"type": "create", "payment": harness.payment_body()})
            assert res["status"] == 201, res
            got = []
            while len(got) < 2:
                msg = await sh.recv_json(ws_b)
                assert msg["type"] == "event", msg
                got.append(msg)
            assert [m["payment"]["id"] for m in got] == [via_http["id"], res["body"]["id"]]
            assert [m["seq"] for m in got] == sh.committed_seqs(pg, head)
    run(scenario())


def test_subscribe_before_the_listener_knows_its_head(start_server, pg, api):
    """A subscribe that arrives before the listener's first fetch waits for
    it, then starts from the head it learns."""
    pg.psql("ALTER FUNCTION paytrackr_stream_bounds(interval) "
            "RENAME TO paytrackr_stream_bounds_away")
    renamed = True
    try:
        srv = start_server(wait="health")

        async def scenario():
            nonlocal renamed
            async with sh.connect(srv) as ws:
                await ws.send(json.dumps({"type": "subscribe", "after": None}))
                try:
                    early = await asyncio.wait_for(ws.recv(), 0.7)
                except asyncio.TimeoutError:
                    early = None
                assert early is None, early
                pg.psql("ALTER FUNCTION paytrackr_stream_bounds_away(interval) "
                        "RENAME TO paytrackr_stream_bounds")
                renamed = False
                msg = await sh.recv_json(ws)
                assert msg["type"] == "subscribed" and msg["head"] == sh.head_seq(pg), msg
                p = harness.create_payment(api)
                ev, _ = await sh.recv_until(ws, lambda m: m.get("type") == "event")
                assert ev["payment"]["id"] == p["id"] and ev["seq"] > msg["head"]
        run(scenario())
    finally:
        if renamed:
            pg.psql("ALTER FUNCTION paytrackr_stream_bounds_away(interval) "
                    "RENAME TO paytrackr_stream_bounds")
