"""The server reading its connection string from Key Vault through the
managed identity, against the local IMDS/Key Vault stand-in and the real
test PostgreSQL: start-up, and a rotated password picked up without a
restart."""
import secrets
import time

import pytest

from harness import unique, wait_until
from kv_standin import StandIn

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def kv_role(pg):
    """A role that must log in with its password (the session cluster
    trusts everyone else), and a way to rotate that password."""
    role = "kv_" + secrets.token_hex(4)
    hba = pg.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host all %s 127.0.0.1/32 scram-sha-256\n%s" % (role, original))
    pg.psql("SELECT pg_reload_conf()", db="postgres")
    password = secrets.token_urlsafe(18)
    pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, password), db="postgres")
    pg.psql("GRANT ALL ON DATABASE paytrackr TO %s" % role, db="postgres")
    pg.psql("GRANT ALL ON ALL TABLES IN SCHEMA public TO %s; "
            "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO %s; "
            "GRANT ALL ON SCHEMA public TO %s" % (role, role, role))
    state = {"role": role, "password": password}
    yield state
    hba.write_text(original)
    pg.psql("SELECT pg_reload_conf()", db="postgres")


def conninfo(pg, role, password):
    return "host=127.0.0.1 port=%d dbname=paytrackr user=%s password=%s" % (
        pg.port, role, password)


def created(srv):
    body = {"amount": 1250, "currency": "EUR", "payer": unique("kv"), "payee": "Vault"}
    try:
        return srv.api.post("/v1/payments", body).status == 201
    except OSError:
        return False


def test_server_reads_connection_string_from_key_vault_and_follows_rotation(
        pg, server, kv_role, start_server):
    # `server` makes sure the schema exists before the role's grants matter.
    role, password = kv_role["role"], kv_role["password"]
    with StandIn(client_id=CLIENT_ID, secret_value=conninfo(pg, role, password)) as kv:
        srv = start_server(PAYTRACKR_DATABASE_URL=None, PAYTRACKR_KEYVAULT_URL=kv.url,
                           PAYTRACKR_IMDS_ENDPOINT=kv.url, AZURE_CLIENT_ID=CLIENT_ID,
                           PAYTRACKR_MIGRATE="off")
        assert created(srv)
        imds = kv.requests("imds")
        vault = kv.requests("vault")
        assert imds and vault, "the server did not ask IMDS and Key Vault"
        reads_before = len(vault)

        # Rotate: the database and the vault get the new password, the old
        # sessions are cut, and the server must follow without a restart.
        new_password = secrets.token_urlsafe(18)
        pg.psql("ALTER ROLE %s PASSWORD '%s'" % (role, new_password), db="postgres")
        kv_role["password"] = new_password
        kv.secret_value = conninfo(pg, role, new_password)
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'"
                % role, db="postgres")
        wait_until(lambda: created(srv), timeout=45, message="a create after the rotation")
        assert len(kv.requests("vault")) > reads_before, "the secret was not read again"
        assert srv.proc.poll() is None, "the server restarted or died"
        # Neither password nor token ever reaches the log.
        text = srv.stderr_text()
        assert password not in text and new_password not in text
        assert kv.token not in text
        srv.stop()


def test_key_vault_down_at_start_is_503_then_recovers(pg, server, kv_role, start_server):
    role, password = kv_role["role"], kv_role["password"]
    with StandIn(client_id=CLIENT_ID, secret_value=conninfo(pg, role, password)) as kv:
        # Key Vault answers 503 for longer than the start-up read retries:
        # the server still starts,
        # reports not ready, and answers 503 instead of crashing.
        kv.plan("vault", *([{"status": 503}] * 8))
        srv = start_server(wait="health", PAYTRACKR_DATABASE_URL=None,
                           PAYTRACKR_KEYVAULT_URL=kv.url, PAYTRACKR_IMDS_ENDPOINT=kv.url,
                           AZURE_CLIENT_ID=CLIENT_ID, PAYTRACKR_MIGRATE="off")
        wait_until(lambda: srv.probe("/healthz") == 200, timeout=60, message="liveness")
        wait_until(lambda: created(srv), timeout=90, message="a create once Key Vault answers")
        wait_until(lambda: srv.probe("/readyz") == 200, timeout=30, message="readiness")
        assert len(kv.requests("vault")) > 8, "the server never retried Key Vault"
        srv.stop()
