"""A subscriber that never reads is closed with 4008 while the others keep
receiving, and the server's memory stays bounded meanwhile."""

import asyncio
import threading
import time


import harness
import stream_helpers as sh

BATCHES = 100
PER_BATCH = 100


def bulk_script(tag, batches, per_batch, pause):
    """Transactions of `per_batch` payments and events each (payments
    first), ~4 KB per event, with a pause between them."""
    meta = "jsonb_build_object(%s)" % ", ".join(
        "'k%d', repeat('m', 500)" % i for i in range(6))
    out = ["\\set ON_ERROR_STOP 1"]
    for _ in range(batches):
        out.append(
            "BEGIN;\n"
            "WITH p AS (INSERT INTO payments (amount, currency, payer, payee, description, method,"
            " status, metadata, created_at, updated_at) SELECT g, 'EUR', '%s', 'payee', "
            "repeat('d', 1000), 'other', 'pending', %s, now(), now() "
            "FROM generate_series(1, %d) g RETURNING *),\n"
            " e AS (INSERT INTO payment_events (type, payment_id, at, payment)"
            " SELECT 'payment.created', p.id, p.updated_at, %s FROM p RETURNING seq)\n"
            "SELECT pg_notify('paytrackr_events', max(seq)::text) FROM e \\g /dev/null\n"
            "COMMIT;\nSELECT pg_sleep(%.3f) \\g /dev/null" % (
                tag, meta, per_batch, sh.payment_json_sql("p"), pause))
    return "\n".join(out) + "\n"


def test_slow_subscriber_closed_with_4008_memory_bounded(start_server, pg):
    srv = start_server(PAYTRACKR_WS_QUEUE_MAX="256",
                       ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:"
                                    "quarantine_size_mb=0")
    tag = harness.unique("slow")
    samples = []

    async def sample_rss(stop):
        while not stop.is_set():
            samples.append(sh.vm_rss_kib(srv.proc.pid))
            await asyncio.sleep(0.05)

    frames = []

    def drain_once_closed(slow):
        # The server gives a closing connection a few seconds to take its
        # close frame, so the slow one reads as soon as it has been given
        # up on, not after the rest of the test (slow on a busy machine).
        harness.wait_until(lambda: sh.metric(srv, "paytrackr_ws_slow_closed_total") >= 1, 180.0,
                           message="the slow subscriber to be closed")
        try:
            while True:
                frames.append(slow.read_frame())
        except (EOFError, ConnectionResetError):
            pass

    async def scenario():
        start = sh.head_seq(pg)
        fast = sh.Collector(srv, "fast", after=start)
        await fast.start()
        slow = sh.RawClient(srv, rcvbuf=4096)
        slow.send_text('{"type":"subscribe","after":null}')
        drainer = threading.Thread(target=drain_once_closed, args=(slow,), daemon=True)
        drainer.start()
        # warm up: a first batch reaches the fast subscriber
        await sh.run_psql_script(pg, bulk_script(tag, 1, PER_BATCH, 0))
        await fast.wait_for(sh.committed_seqs(pg, start))
        baseline = sh.vm_rss_kib(srv.proc.pid)
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(sample_rss(stop))
        t0 = time.monotonic()
        await sh.run_psql_script(pg, bulk_script(tag, BATCHES, PER_BATCH, 0.03))
        expected = sh.committed_seqs(pg, start)
        await fast.wait_for(expected, timeout=120)
        elapsed = time.monotonic() - t0
        stop.set()
        await sampler
        assert sh.metric(srv, "paytrackr_ws_slow_closed_total") >= 1, "the slow one was not closed"
        await fast.stop()
        return start, expected, baseline, elapsed, fast, slow, drainer

    start, expected, baseline, elapsed, fast, slow, drainer = asyncio.run(scenario())
    # the fast one kept receiving: everything, once, never closed
    sh.assert_exactly(fast.seqs, expected, "fast")
    assert fast.reconnects == 0 and fast.closes in ([], [1000]), fast.closes
    # the slow one finds, after what its buffers held, a close frame 4008
    drainer.join(timeout=60)
    slow.close()
    assert not drainer.is_alive(), "the slow connection did not end"
    closes = [p for op, p in frames if op == 0x8]
    assert closes and int.from_bytes(closes[0][:2], "big") == 4008, frames[-3:]
    events = sum(1 for op, _ in frames if op == 0x1)
    assert events < len(expected) // 2, "the slow one was not slow: %d events" % events
    # memory: ~40 MB of events went by; the server holds a bounded queue
    growth_mib = (max(samples) - baseline) / 1024.0
    print("\nRSS baseline %.1f MiB, max growth %.1f MiB over %d events of ~4 KB in %.1f s"
          % (baseline / 1024.0, growth_mib, len(expected), elapsed))
    assert growth_mib < 16, "server RSS grew by %.1f MiB" % growth_mib
    # Leave the shared database as the other suites found it: ~40 MB of
    # large rows would only slow down the TUI suites' meters.
    pg.psql("DELETE FROM payments WHERE payer = '%s'" % tag)
