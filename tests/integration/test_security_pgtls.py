"""PostgreSQL over TLS: sslmode=verify-full with the CA in
PAYTRACKR_DB_SSLROOTCERT, for the request pool, the LISTEN connection and
`paytrackr-server migrate`; a server given the wrong CA stays not ready."""


import pytest

from harness import assert_error, create_payment, payment_body, wait_until
from tls_helpers import CertAuthority, TlsPgCluster


@pytest.fixture(scope="module")
def pg_ca():
    authority = CertAuthority(name="paytrackr test PostgreSQL CA")
    yield authority
    authority.destroy()


@pytest.fixture(scope="module")
def tls_pg(pg_ca):
    cert, key = pg_ca.issue("postgres", 5001)
    cluster = TlsPgCluster(cert, key)
    try:
        yield cluster
    finally:
        cluster.destroy()


def server_connections(cluster):
    """(application_name, ssl) of the server's connections."""
    return cluster.psql(
        "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s "
        "USING (pid) WHERE a.application_name LIKE 'paytrackr-%' ORDER BY 1")


def test_server_works_with_verify_full(start_server, tls_pg, pg_ca):
    srv = start_server(PAYTRACKR_DATABASE_URL=tls_pg.tls_url(),
                       PAYTRACKR_DB_SSLROOTCERT=pg_ca.cert)
    p = create_payment(srv.api)
    assert srv.api.get("/v1/payments/" + p["id"]).status == 200
    rows = server_connections(tls_pg)
    names = {name for name, _ in rows}
    assert "paytrackr-server" in names, rows
    assert "paytrackr-listener" in names, "the LISTEN connection is missing: %r" % rows
    assert all(ssl == "t" for _, ssl in rows), "a connection without TLS: %r" % rows
    srv.stop()
    srv.assert_clean()


def test_server_with_the_wrong_ca_stays_not_ready(start_server, tls_pg):
    other = CertAuthority(name="some other CA")
    try:
        srv = start_server(wait="health", PAYTRACKR_DATABASE_URL=tls_pg.tls_url(),
                           PAYTRACKR_DB_SSLROOTCERT=other.cert)
        # Not ready while connecting, and still not once it has failed.
        assert srv.probe("/readyz") == 503
        wait_until(lambda: "certificate verify failed" in srv.stderr_text(), 15,
                   message="the server to try the database and refuse its certificate")
        assert srv.probe("/readyz") == 503
        r = srv.api.post("/v1/payments", payment_body())
        assert_error(r, 503, "unavailable")
        assert r.headers.get("retry-after", "").isdigit()
        assert "certificate verify failed" in srv.stderr_text()
        srv.stop()
        srv.assert_clean()
    finally:
        other.destroy()


def test_server_refuses_a_host_name_the_certificate_does_not_name(start_server, tls_pg, pg_ca):
    url = ("postgresql://postgres@not-the-name:%d/paytrackr?hostaddr=127.0.0.1"
           "&sslmode=verify-full" % tls_pg.port)
    srv = start_server(wait="health", PAYTRACKR_DATABASE_URL=url,
                       PAYTRACKR_DB_SSLROOTCERT=pg_ca.cert)
    wait_until(lambda: "does not match host name" in srv.stderr_text(), 15,
               message="the server to try the database and refuse its host name")
    assert srv.probe("/readyz") == 503
    assert_error(srv.api.get("/v1/stats"), 503, "unavailable")
    srv.stop()
    srv.assert_clean()


def test_migrate_uses_the_ca_file(server_factory, tls_pg, pg_ca):
    rc, out, err = server_factory.run_to_exit(
        timeout=60, args=["migrate"], PAYTRACKR_DATABASE_URL=tls_pg.tls_url(),
        PAYTRACKR_DB_SSLROOTCERT=pg_ca.cert)
    assert rc == 0, err
    assert "schema up to date" in err
