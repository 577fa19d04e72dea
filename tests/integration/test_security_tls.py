"""HTTPS/WSS on the public port: PAYTRACKR_TLS_CERT / PAYTRACKR_TLS_KEY.

Certificates come from a CA made for the session with the openssl command
line tool; clients trust only that CA and check the host name."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from harness import OPERATOR_TOKEN, payment_body, wait_until
from tls_helpers import CertAuthority, client_context, peer_serial, tls_connect


@pytest.fixture(scope="module")
def ca():
    authority = CertAuthority()
    yield authority
    authority.destroy()


@pytest.fixture(scope="module")
def tls_server(start_server, ca):
    cert, key = ca.issue("shared", 1001)
    return start_server(PAYTRACKR_TLS_CERT=cert, PAYTRACKR_TLS_KEY=key)


def https(port, ctx, timeout=10.0):
    return http.client.HTTPSConnection("localhost", port, context=ctx, timeout=timeout)


def get(conn, path="/v1/stats", token=OPERATOR_TOKEN):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    return r.status, r.read()


def test_https_request_verified_against_the_test_ca(tls_server, ca):
    conn = https(tls_server.port, client_context(ca.cert))
    try:
        status, _ = get(conn)
        assert status == 200
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.request("POST", "/v1/payments", body=json.dumps(payment_body()),
                     headers={"Authorization": "Bearer " + OPERATOR_TOKEN,
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 201
    finally:
        conn.close()


def test_tls12_with_a_modern_cipher_is_accepted(tls_server, ca):
    ctx = client_context(ca.cert, maximum=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    with tls_connect(tls_server.port, ctx) as s:
        assert s.version() == "TLSv1.2"
        assert s.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_1_2_is_refused(tls_server, ca, version):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        v = getattr(ssl.TLSVersion, version)
        # Security level 0 lets this client offer the old protocol at all.
        ctx = client_context(ca.cert, minimum=v, maximum=v, ciphers="DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as err:
        tls_connect(tls_server.port, ctx).close()
    # Refused by the server's protocol policy (alert protocol_version), not
    # as a side effect of OpenSSL's default security level (internal_error).
    assert "PROTOCOL_VERSION" in str(err.value).upper(), err.value


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"])
def test_tls12_cbc_ciphers_are_refused(tls_server, ca, cipher):
    # OpenSSL's default list offers these; the server's list does not.
    ctx = client_context(ca.cert, maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
    with pytest.raises(ssl.SSLError):
        tls_connect(tls_server.port, ctx).close()


def test_only_http11_is_negotiated(tls_server, ca):
    ctx = client_context(ca.cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_connect(tls_server.port, ctx) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_plain_http_is_refused(tls_server):
    s = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    received = b""
    try:
        s.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: localhost\r\n"
                  b"Authorization: Bearer " + OPERATOR_TOKEN.encode() + b"\r\n\r\n")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail("the server kept a plain HTTP connection open")
    finally:
        s.close()
    assert not received.startswith(b"HTTP/"), received[:200]
    assert b"{" not in received, received[:200]


def test_wss_upgrade(tls_server, ca):
    """A WebSocket upgrade over TLS reaches the stream: 101 with the
    subprotocol and the accept key RFC 6455 derives from ours."""
    with tls_connect(tls_server.port, client_context(ca.cert)) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /v1/stream HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: paytrackr.v1\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (key, OPERATOR_TOKEN)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), "the upgrade was not answered 101: %r" % head[:200]
    headers = {}
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get(b"sec-websocket-protocol") == b"paytrackr.v1", head
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    assert headers.get(b"sec-websocket-accept") == accept, head


# ---- certificate reload on SIGHUP -------------------------------------------


@pytest.fixture
def reload_setup(start_server, ca):
    """A server whose certificate files live in a directory the test may
    rewrite; yields (server, directory)."""
    d = Path(tempfile.mkdtemp(prefix="paytrackr-tlsreload-", dir="/tmp"))
    cert, key = ca.issue("first", 2001, outdir=d)
    shutil.copyfile(cert, d / "tls.crt")
    shutil.copyfile(key, d / "tls.key")
    srv = start_server(PAYTRACKR_TLS_CERT=d / "tls.crt", PAYTRACKR_TLS_KEY=d / "tls.key")
    yield srv, d
    srv.stop()
    srv.assert_clean()
    shutil.rmtree(d, ignore_errors=True)


def install(d, cert, key):
    """Replaces tls.crt and tls.key the way a mounted Secret changes: each
    file appears whole (rename)."""
    for src, name in ((cert, "tls.crt"), (key, "tls.key")):
        tmp = d / (name + ".new")
        shutil.copyfile(src, tmp)
        os.replace(tmp, d / name)


def new_connection_serial(port, ctx):
    with tls_connect(port, ctx) as s:
        return peer_serial(s)


def test_sighup_reloads_certificate_and_keeps_open_connections(reload_setup, ca):
    srv, d = reload_setup
    ctx = client_context(ca.cert)
    assert new_connection_serial(srv.port, ctx) == 2001
    before = https(srv.port, ctx, timeout=15)
    try:
        assert get(before)[0] == 200
        sock = before.sock
        assert peer_serial(sock) == 2001

        cert, key = ca.issue("second", 2002, outdir=d)
        install(d, cert, key)
        srv.signal(signal.SIGHUP)
        wait_until(lambda: new_connection_serial(srv.port, ctx) == 2002, 10,
                   message="new connections to see the reloaded certificate")
        assert "TLS certificate reloaded" in srv.stderr_text()

        # The connection made before the reload is still open and served,
        # on the same socket, with the certificate it negotiated.
        for _ in range(3):
            assert get(before)[0] == 200
        assert before.sock is sock
        assert peer_serial(before.sock) == 2001
    finally:
        before.close()
    assert srv.alive()


def test_sighup_with_a_broken_pair_keeps_the_old_certificate(reload_setup, ca):
    srv, d = reload_setup
    ctx = client_context(ca.cert)
    other_cert, _ = ca.issue("mismatch-a", 2003, outdir=d)
    _, other_key = ca.issue("mismatch-b", 2004, outdir=d)
    install(d, other_cert, other_key)  # a certificate with someone else's key
    srv.signal(signal.SIGHUP)
    wait_until(lambda: "keeping the current TLS certificate" in srv.stderr_text(), 10,
               message="the reload to be refused in the log")
    assert new_connection_serial(srv.port, ctx) == 2001
    conn = https(srv.port, ctx)
    try:
        assert get(conn)[0] == 200
    finally:
        conn.close()


def test_sighup_with_another_key_type_keeps_the_old_certificate(reload_setup, ca):
    srv, d = reload_setup
    cert, key = ca.issue("rsa", 2005, key_type="rsa", outdir=d)
    install(d, cert, key)
    srv.signal(signal.SIGHUP)
    wait_until(lambda: "another type" in srv.stderr_text(), 10,
               message="the key type change to be refused in the log")
    assert new_connection_serial(srv.port, client_context(ca.cert)) == 2001


def test_sighup_without_tls_does_not_stop_the_server(server):
    server.signal(signal.SIGHUP)
    wait_until(lambda: "nothing to reload" in server.stderr_text(), 10,
               message="SIGHUP to be logged")
    assert server.alive()
    assert server.api.get("/v1/stats").status == 200


# ---- unusable settings -------------------------------------------------------


def test_unusable_certificate_or_key_exits_2_naming_it(server_factory, ca, tmp_path):
    cert, key = ca.issue("startup", 3001, outdir=tmp_path)
    _, other_key = ca.issue("startup-other", 3002, outdir=tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = [
        ({"PAYTRACKR_TLS_CERT": garbage, "PAYTRACKR_TLS_KEY": key}, "PAYTRACKR_TLS_CERT"),
        ({"PAYTRACKR_TLS_CERT": cert, "PAYTRACKR_TLS_KEY": garbage}, "PAYTRACKR_TLS_KEY"),
        ({"PAYTRACKR_TLS_CERT": cert, "PAYTRACKR_TLS_KEY": other_key}, "PAYTRACKR_TLS_KEY"),
    ]
    for env, name in cases:
        rc, _, err = server_factory.run_to_exit(**env)
        assert rc == 2, (env, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and name in lines[0], err
