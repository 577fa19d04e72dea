"""Key Vault is read by one refresher thread, never by a database worker.

With the database down, every worker's connection fails; if a failed
connect made the worker read Key Vault itself, a throttled or hanging IMDS
would hold one worker after another for minutes: requests would queue
without an answer and SIGTERM would wait for them past its grace."""
import time
import uuid

from harness import wait_until
from kv_standin import StandIn

WATCH_S = 22  # longer than KVREFRESH_MIN_MS (15 s): a second read is due
GRACE_S = 3


def answered(fn, within):
    started = time.monotonic()
    try:
        status = fn()
    except OSError as exc:
        return False, "no answer: %r" % exc
    took = time.monotonic() - started
    return took <= within, "status %r after %.1f s" % (status, took)


def test_key_vault_hanging_while_database_down(pg, server, start_server):
    with StandIn(secret_value=pg.url) as kv:
        srv = start_server(PAYTRACKR_DATABASE_URL=None, PAYTRACKR_KEYVAULT_URL=kv.url,
                           PAYTRACKR_IMDS_ENDPOINT=kv.url, PAYTRACKR_MIGRATE="off",
                           PAYTRACKR_DB_POOL_SIZE=2, PAYTRACKR_SHUTDOWN_GRACE_SECONDS=GRACE_S)
        assert kv.requests("vault"), "the server did not read Key Vault"
        # From now on IMDS and Key Vault hang far longer than the test.
        kv.plan("imds", *([{"delay": 300}] * 50))
        kv.plan("vault", *([{"delay": 300}] * 50))
        reads = len(kv.requests("imds"))
        pg.stop()
        try:
            deadline = time.monotonic() + WATCH_S
            while time.monotonic() < deadline:
                path = "/v1/payments/%s" % uuid.uuid4()
                ok, what = answered(lambda: srv.api.request("GET", path, timeout=4).status, 3.0)
                assert ok, "a read while the database is down: " + what
                ok, what = answered(lambda: srv.probe("/readyz", timeout=4), 2.0)
                assert ok, "/readyz while the database is down: " + what
            assert len(kv.requests("imds")) > reads, "the connection string was not re-read"
            started = time.monotonic()
            srv.signal(15)
            rc = srv.wait_exit(GRACE_S + 5)
            assert rc == 0, "SIGTERM: no clean exit within %d s (%r) after %.1f s" % (
                GRACE_S + 5, rc, time.monotonic() - started)
        finally:
            pg.start()
            wait_until(lambda: pg.scalar("SELECT 1") == "1", 30, message="PostgreSQL back")
