"""Expired idempotency keys are deleted on a timer of their own
(PAYTRACKR_HOUSEKEEPING_SECONDS, jittered), not inside the readiness
ping: readiness only checks, and every replica's 2 s ping is not a
DELETE."""
import time

from harness import wait_until

PING_TICKS_S = 5  # at least two readiness pings (every 2 s)


def _add_keys(pg, db, n, age):
    pg.psql("INSERT INTO idempotency_keys (caller, key, request_hash, status, body, created_at) "
            "SELECT 'hk', 'key-' || i, 'h', 201, '{}', now() - interval '%s' "
            "FROM generate_series(1, %d) i" % (age, n), db=db)


def _count(pg, db, where="true"):
    return int(pg.psql("SELECT count(*) FROM idempotency_keys WHERE caller = 'hk' AND %s"
                       % where, db=db)[0][0])


def test_readiness_ping_deletes_nothing(pg, own_db, start_server):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_HOUSEKEEPING_SECONDS=3600)
    _add_keys(pg, own_db["db"], 10, "26 hours")
    # A negative claim needs time: wait out a few readiness pings, each
    # observed as a ready answer.
    deadline = time.monotonic() + PING_TICKS_S
    while time.monotonic() < deadline:
        assert srv.probe("/readyz") == 200
        time.sleep(0.5)
    assert _count(pg, own_db["db"]) == 10, "the readiness ping deleted expired keys"
    srv.stop()
    srv.assert_clean()


def test_housekeeping_deletes_only_expired_keys_in_batches(pg, own_db, start_server):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_HOUSEKEEPING_SECONDS=1)
    # More than one batch (1000) of expired keys, and keys still promised.
    _add_keys(pg, own_db["db"], 2500, "26 hours")
    pg.psql("INSERT INTO idempotency_keys (caller, key, request_hash, status, body, created_at) "
            "SELECT 'hk', 'young-' || i, 'h', 201, '{}', now() - interval '23 hours' "
            "FROM generate_series(1, 5) i", db=own_db["db"])
    wait_until(lambda: _count(pg, own_db["db"], "key LIKE 'key-%'") == 0, 30,
               message="expired keys deleted")
    assert _count(pg, own_db["db"], "key LIKE 'young-%'") == 5, "a key younger than 24 h went"
    srv.stop()
    srv.assert_clean()
