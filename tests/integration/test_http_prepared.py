"""The server runs its statements prepared, once per connection, unless
PAYTRACKR_DB_PREPARE=off (for a transaction-mode pooler).

PostgreSQL's own log tells: with log_statement = 'all' for the test's
role, a prepared statement runs as "execute pt<N>: ..." and an unprepared
one as "execute <unnamed>: ..."."""

import re

import pytest

from harness import create_payment, wait_until

GET_SQL = "FROM payments WHERE id = $1::uuid AND deleted_at IS NULL"


@pytest.mark.parametrize("setting, prepared", [(None, True), ("on", True), ("off", False)])
def test_statements_run_prepared_unless_turned_off(pg, own_db, start_server, setting, prepared):
    pg.psql("ALTER ROLE %s SET log_statement = 'all'" % own_db["role"], db="postgres")
    start = pg.logfile.stat().st_size
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"], PAYTRACKR_DB_POOL_SIZE=1,
                       PAYTRACKR_DB_PREPARE=setting)
    made = create_payment(srv.api)
    for _ in range(3):
        assert srv.api.get("/v1/payments/%s" % made["id"]).status == 200

    def gets():
        with open(pg.logfile, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if "execute" in line and GET_SQL in line]

    assert wait_until(lambda: len(gets()) >= 3, 10.0, message="three GETs in the log")
    named = [line for line in gets() if re.search(r"execute pt\d+: ", line)]
    unnamed = [line for line in gets() if "execute <unnamed>: " in line]
    if prepared:
        assert len(named) == 3 and not unnamed, gets()
        # prepared once: the same statement name every time
        assert len({re.search(r"execute (pt\d+):", line).group(1) for line in named}) == 1
    else:
        assert len(unnamed) == 3 and not named, gets()


def test_an_unknown_prepare_setting_exits_2_naming_it(server_factory):
    status, _, err = server_factory.run_to_exit(PAYTRACKR_DB_PREPARE="sometimes")
    assert status == 2, err
    assert "PAYTRACKR_DB_PREPARE" in err
