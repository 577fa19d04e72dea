"""Reads pipelined on the service loop's own connections (db_async.c).

GET /v1/payments/{id} and GET /v1/payments run on PAYTRACKR_DB_READ_CONNECTIONS
connections (application_name 'paytrackr-reads') in libpq pipeline mode, many
reads in flight on one connection. What may go wrong there (the connection
killed or a read cancelled with reads queued behind it) must never show: the
reads go to the worker pool and every caller gets its own, right answer."""

import subprocess
import threading
import uuid

import pytest

from harness import PG_BIN, create_payment, run_concurrently, wait_until

GET_SQL = "FROM payments WHERE id = $1::uuid AND deleted_at IS NULL"


def _backends(pg, db, app):
    return pg.psql("SELECT pid, coalesce(wait_event_type, ''), query FROM pg_stat_activity "
                   "WHERE datname = '%s' AND application_name = '%s'" % (db, app), db="postgres")


def _read_backends(pg, db):
    return _backends(pg, db, "paytrackr-reads")


class TableLock:
    """Holds ACCESS EXCLUSIVE on payments in a psql session until release()."""

    def __init__(self, pg, db):
        self.proc = subprocess.Popen(
            [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(pg.port), "-U", "postgres", "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("BEGIN;\nLOCK TABLE payments IN ACCESS EXCLUSIVE MODE;\n"
                              "SELECT 'locked';\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("COMMIT;\n\\q\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


def _reads_waiting_on(pg, db):
    """Reads connections blocked behind the lock (their query is a read)."""
    return [row for row in _read_backends(pg, db) if row[1] == "Lock" and "FROM payments" in row[2]]


def _fire_reads(api, ids):
    """GETs of every id and two list pages, each in its own thread; returns
    (threads, results) where results[i] = (what, status, body)."""
    results = [None] * (len(ids) + 2)

    def get(i, path):
        r = api.get(path, timeout=60)
        results[i] = (path, r.status, r.json)

    threads = [threading.Thread(target=get, args=(i, "/v1/payments/%s" % pid))
               for i, pid in enumerate(ids)]
    threads.append(threading.Thread(target=get, args=(len(ids), "/v1/payments?limit=3")))
    threads.append(threading.Thread(target=get, args=(len(ids) + 1, "/v1/payments?limit=5&order=created_at.asc")))
    for t in threads:
        t.start()
    return threads, results


def _check_answers(ids, results):
    for i, pid in enumerate(ids):
        path, status, body = results[i]
        assert status == 200 and body["id"] == pid, results[i]
    assert results[-2][1] == 200 and len(results[-2][2]["data"]) == 3, results[-2]
    assert results[-1][1] == 200 and len(results[-1][2]["data"]) == 5, results[-1]


@pytest.mark.parametrize("setting, expected", [(None, 2), ("3", 3), ("0", 0)])
def test_reads_run_on_the_loops_connections_unless_turned_off(pg, own_db, start_server, setting,
                                                               expected):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_READ_CONNECTIONS=setting)
    db = own_db["db"]
    assert wait_until(lambda: len(_read_backends(pg, db)) == expected, 10.0,
                      message="%d read connections" % expected)
    made = create_payment(srv.api)
    r = srv.api.get("/v1/payments/%s" % made["id"])
    assert r.status == 200 and r.json["id"] == made["id"]
    ran_on_loop = any(GET_SQL in row[2] for row in _read_backends(pg, db))
    ran_on_pool = any(GET_SQL in row[2] for row in _backends(pg, db, "paytrackr-server"))
    assert ran_on_loop == (expected > 0) and ran_on_pool == (expected == 0)
    # not a connection more than configured, whatever the load
    assert len(_read_backends(pg, db)) == expected
    metrics = srv.admin.get("/metrics").raw.decode()
    assert "\npaytrackr_db_read_connections %d\n" % expected in metrics
    assert "\npaytrackr_db_read_connected %d\n" % expected in metrics
    assert "\npaytrackr_db_reads_in_flight 0\n" in metrics


def test_an_unusable_read_connection_count_exits_2_naming_it(server_factory):
    status, _, err = server_factory.run_to_exit(PAYTRACKR_DB_READ_CONNECTIONS="65")
    assert status == 2, err
    assert "PAYTRACKR_DB_READ_CONNECTIONS" in err


def test_many_reads_in_flight_on_one_connection_each_get_their_own_answer(own_db, start_server):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_READ_CONNECTIONS="1")
    ids = [create_payment(srv.api, payer="pipe-%d" % i)["id"] for i in range(12)]
    errors = []

    def client(n):
        conn = srv.api.connection(timeout=30)
        for k in range(40):
            pick = (n * 7 + k) % (len(ids) + 2)
            if pick < len(ids):
                r = srv.api.get("/v1/payments/%s" % ids[pick], conn=conn)
                if r.status != 200 or r.json["id"] != ids[pick] or r.json["payer"] != "pipe-%d" % pick:
                    errors.append(("get", ids[pick], r.status, r.json))
            elif pick == len(ids):
                missing = str(uuid.uuid4())
                r = srv.api.get("/v1/payments/%s" % missing, conn=conn)
                if r.status != 404:
                    errors.append(("missing", missing, r.status, r.json))
            else:
                limit = 1 + k % 9
                r = srv.api.get("/v1/payments?limit=%d" % limit, conn=conn)
                if r.status != 200 or len(r.json["data"]) != limit:
                    errors.append(("list", limit, r.status, r.json))
        conn.close()

    failed = [r for r in run_concurrently(16, client) if isinstance(r, BaseException)]
    assert not failed, failed[:3]
    assert not errors, errors[:5]


@pytest.mark.parametrize("how", ["terminate", "cancel"])
def test_reads_in_flight_when_their_connection_fails_are_answered(pg, own_db, start_server, how):
    """A read connection killed (or its running read cancelled, which aborts
    every read pipelined behind it) with reads queued: each read is run
    again on the pool and answered; the connection comes back."""
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_READ_CONNECTIONS="1")
    db = own_db["db"]
    ids = [create_payment(srv.api)["id"] for _ in range(8)]
    assert wait_until(lambda: len(_read_backends(pg, db)) == 1, 10.0, message="a read connection")
    pid_before = _read_backends(pg, db)[0][0]
    lock = TableLock(pg, db)
    try:
        threads, results = _fire_reads(srv.api, ids)
        assert wait_until(lambda: _reads_waiting_on(pg, db), 20.0,
                          message="the read connection blocked behind the lock")
        fn = "pg_terminate_backend" if how == "terminate" else "pg_cancel_backend"
        pg.psql("SELECT %s(%s)" % (fn, pid_before), db="postgres")
        # The reads now wait on pool workers, behind the same lock.
        assert wait_until(lambda: len(_backends(pg, db, "paytrackr-server")) > 0 and any(
            row[1] == "Lock" for row in _backends(pg, db, "paytrackr-server")), 20.0,
                          message="the reads re-run on the pool")
    finally:
        lock.release()
    for t in threads:
        t.join(timeout=60)
    _check_answers(ids, results)
    rows = _read_backends(pg, db)
    if how == "terminate":
        assert wait_until(lambda: len(_read_backends(pg, db)) == 1
                          and _read_backends(pg, db)[0][0] != pid_before, 10.0,
                          message="a new read connection")
        assert "database reads: connection lost" in srv.stderr_text() + srv.stdout_text()
    else:
        assert [row[0] for row in rows] == [pid_before]  # the connection stayed
    # and the loop's connection serves reads again: a page, then a payment
    assert srv.api.get("/v1/payments?limit=2").status == 200
    assert any("ORDER BY" in row[2] for row in _read_backends(pg, db))
    r = srv.api.get("/v1/payments/%s" % ids[0])
    assert r.status == 200 and r.json["id"] == ids[0]
    assert any(GET_SQL in row[2] for row in _read_backends(pg, db))
