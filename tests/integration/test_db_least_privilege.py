"""The application logs into PostgreSQL as a least-privileged role:
`paytrackr-server migrate` runs as the schema owner
(PAYTRACKR_MIGRATE_DATABASE_URL) and creates the application's login from
PAYTRACKR_DATABASE_URL as a member of paytrackr_app (migration 0006), which
may read and write rows and nothing else. Real PostgreSQL, password
authentication enforced for that role."""
import os
import secrets
import subprocess

import pytest

from harness import PG_BIN, payment_body, server_binary


@pytest.fixture
def setup(pg):
    """A fresh database owned by the superuser, a login name for the app, and
    pg_hba demanding that login's password (the session cluster trusts
    everyone else)."""
    tag = secrets.token_hex(4)
    db, login = "lp_" + tag, "lp_app_" + tag
    pg.psql("CREATE DATABASE %s" % db, db="postgres")
    hba = pg.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host all %s 127.0.0.1/32 scram-sha-256\n%s" % (login, original))
    pg.psql("SELECT pg_reload_conf()", db="postgres")
    state = {"db": db, "login": login,
             "owner_url": "postgresql://postgres@127.0.0.1:%d/%s" % (pg.port, db)}
    yield state
    hba.write_text(original)
    pg.psql("SELECT pg_reload_conf()", db="postgres")
    pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, db="postgres")
    pg.psql("DROP ROLE IF EXISTS %s" % login, db="postgres")


def app_url(pg, s, password):
    return "host=127.0.0.1 port=%d dbname=%s user=%s password=%s" % (
        pg.port, s["db"], s["login"], password)


def migrate(env_over):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYTRACKR_", "AZURE_"))}
    env["PAYTRACKR_LOG_FORMAT"] = "text"
    env.update(env_over)
    return subprocess.run([str(server_binary()), "migrate"], env=env, capture_output=True,
                          text=True, timeout=120)


def as_app(pg, s, password, sql):
    return subprocess.run(
        [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(pg.port), "-U", s["login"], "-d", s["db"], "-c", sql],
        env=dict(os.environ, PGPASSWORD=password), capture_output=True, text=True, timeout=60)


def test_migrate_sets_up_a_row_only_login_and_the_server_runs_on_it(pg, setup, start_server):
    password = secrets.token_urlsafe(18)
    res = migrate({"PAYTRACKR_MIGRATE_DATABASE_URL": setup["owner_url"],
                   "PAYTRACKR_DATABASE_URL": app_url(pg, setup, password)})
    assert res.returncode == 0, res.stderr
    assert password not in res.stdout + res.stderr

    attrs = pg.psql("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin,"
                    " pg_has_role('%s', 'paytrackr_app', 'MEMBER')"
                    " FROM pg_roles WHERE rolname = '%s'" % (setup["login"], setup["login"]),
                    db="postgres")
    assert attrs == [["f", "f", "f", "f", "t", "t"]], attrs

    # The server works on that login alone.
    srv = start_server(PAYTRACKR_DATABASE_URL=app_url(pg, setup, password),
                       PAYTRACKR_MIGRATE="off")
    assert srv.api.post("/v1/payments", payment_body()).status == 201
    assert srv.api.get("/v1/payments").status == 200
    srv.stop()

    # Rows yes; schema, migration record and truncation no.
    assert as_app(pg, setup, password, "SELECT count(*) FROM payments").returncode == 0
    for sql in ("CREATE TABLE intruder (i int)", "DROP TABLE payments",
                "TRUNCATE payments CASCADE", "DELETE FROM schema_migrations",
                "ALTER TABLE payments ADD COLUMN x int"):
        r = as_app(pg, setup, password, sql)
        assert r.returncode != 0, (sql, r)
        assert "permission denied" in r.stderr or "must be owner" in r.stderr, (sql, r)
    # Wrong password: refused (the password really is set).
    assert as_app(pg, setup, "not-" + password, "SELECT 1").returncode != 0


def test_rerun_rotates_the_password(pg, setup):
    first, second = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    for pw in (first, second):
        res = migrate({"PAYTRACKR_MIGRATE_DATABASE_URL": setup["owner_url"],
                       "PAYTRACKR_DATABASE_URL": app_url(pg, setup, pw)})
        assert res.returncode == 0, res.stderr
    assert as_app(pg, setup, second, "SELECT 1").returncode == 0
    assert as_app(pg, setup, first, "SELECT 1").returncode != 0


def test_the_app_login_must_not_be_the_owner(pg, setup):
    res = migrate({"PAYTRACKR_MIGRATE_DATABASE_URL": setup["owner_url"],
                   "PAYTRACKR_DATABASE_URL": setup["owner_url"]})
    assert res.returncode == 1
    assert "is the migration's own role" in res.stderr, res.stderr
