"""Start-up configuration and the migrate command."""

import threading
import uuid

import pytest

from harness import create_payment, sha256_hex


@pytest.mark.parametrize("overrides,names", [
    ({"PAYTRACKR_DATABASE_URL": None}, ("PAYTRACKR_DATABASE_URL", "PAYTRACKR_KEYVAULT_URL")),
    ({"PAYTRACKR_AUTH": "maybe"}, ("PAYTRACKR_AUTH",)),
    ({"PAYTRACKR_TOKENS": "operator:nothex"}, ("PAYTRACKR_TOKENS",)),
    ({"PAYTRACKR_TOKENS": "admin:" + sha256_hex("x")}, ("PAYTRACKR_TOKENS",)),
    ({"PAYTRACKR_TOKENS": "operator" + sha256_hex("x")}, ("PAYTRACKR_TOKENS",)),
    ({"PAYTRACKR_TOKENS": None, "PAYTRACKR_TOKENS_FILE": "/nonexistent/tokens"},
     ("PAYTRACKR_TOKENS_FILE", "PAYTRACKR_TOKENS")),
    ({"PAYTRACKR_LISTEN": "nonsense"}, ("PAYTRACKR_LISTEN",)),
    ({"PAYTRACKR_LISTEN": "127.0.0.1:99999"}, ("PAYTRACKR_LISTEN",)),
    ({"PAYTRACKR_ADMIN_LISTEN": "127.0.0.1:"}, ("PAYTRACKR_ADMIN_LISTEN",)),
    ({"PAYTRACKR_DB_POOL_SIZE": "0"}, ("PAYTRACKR_DB_POOL_SIZE",)),
    ({"PAYTRACKR_DB_POOL_SIZE": "abc"}, ("PAYTRACKR_DB_POOL_SIZE",)),
    ({"PAYTRACKR_LOG_FORMAT": "xml"}, ("PAYTRACKR_LOG_FORMAT",)),
    ({"PAYTRACKR_TLS_CERT": "/nonexistent/cert.pem", "PAYTRACKR_TLS_KEY": "/nonexistent/key.pem"},
     ("PAYTRACKR_TLS_CERT", "PAYTRACKR_TLS_KEY")),
], ids=lambda v: None if isinstance(v, dict) is False else "-".join(
    "%s=%s" % (k.replace("PAYTRACKR_", ""), "unset" if x is None else x[:12]) for k, x in v.items()))
def test_unusable_setting_exits_2_naming_it(server_factory, overrides, names):
    rc, out, err = server_factory.run_to_exit(**overrides)
    assert rc == 2, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %r" % err
    assert any(n in lines[0] for n in names), (names, err)


def test_database_url_from_file(start_server, pg, server_logdir):
    path = server_logdir / ("dburl-%s" % uuid.uuid4().hex)
    path.write_text(pg.url + "\n")
    srv = start_server(PAYTRACKR_DATABASE_URL=None, PAYTRACKR_DATABASE_URL_FILE=str(path))
    create_payment(srv.api)
    srv.stop()
    srv.assert_clean()


def test_migrate_concurrently_on_fresh_database(server_factory, pg):
    db = "mig_" + uuid.uuid4().hex[:8]
    pg.psql("CREATE DATABASE %s" % db, db="postgres")
    url = "postgresql://postgres@127.0.0.1:%d/%s" % (pg.port, db)
    results = [None] * 4

    def run(i):
        results[i] = server_factory.run_to_exit(args=["migrate"], timeout=60, PAYTRACKR_DATABASE_URL=url)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for res in results:
        assert res is not None and res[0] == 0, results
    tables = {row[0] for row in pg.psql("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'public'", db=db)}
    assert {"payments", "payment_events", "idempotency_keys"} <= tables, tables
    # a second run finds nothing to do and succeeds
    rc, out, err = server_factory.run_to_exit(args=["migrate"], timeout=60, PAYTRACKR_DATABASE_URL=url)
    assert rc == 0, (out, err)
    pg.psql("DROP DATABASE %s" % db, db="postgres")


def test_first_start_on_an_empty_database_logs_no_warning(start_server, own_db):
    # The listener starts while the pool applies the migrations; its
    # first questions meet a schema that is not there yet. That is the
    # normal first start, and an operator should not see it as a warning.
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    create_payment(srv.api)
    warnings = [line for line in srv.stderr_text().splitlines() if '"level":"warn"' in line]
    assert warnings == [], warnings
