"""Certificate rotation without a restart: the server watches
PAYTRACKR_TLS_CERT/KEY from its loop (PAYTRACKR_TLS_RELOAD_SECONDS) and
serves a renewed pair on new connections, with no SIGHUP, when the files
change the way Kubernetes and the Key Vault CSI driver change them (a
symlink swap to a new directory) or by an in-place rewrite."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import wait_until
from tls_helpers import CertAuthority, client_context, peer_serial, tls_connect


@pytest.fixture(scope="module")
def ca():
    authority = CertAuthority()
    yield authority
    authority.destroy()


def serial_of_new_connection(port, ctx):
    with tls_connect(port, ctx) as s:
        return peer_serial(s)


class MountedSecret:
    """A directory laid out like a Kubernetes Secret volume: tls.crt ->
    ..data/tls.crt, ..data -> ..<version>/, renewed by pointing ..data at a
    new version directory with one rename (the kubelet's AtomicWriter)."""

    def __init__(self, root):
        self.root = Path(root)
        self.version = 0

    def publish(self, cert, key):
        self.version += 1
        vdir = self.root / ("..v%d" % self.version)
        vdir.mkdir()
        shutil.copyfile(cert, vdir / "tls.crt")
        shutil.copyfile(key, vdir / "tls.key")
        tmp = self.root / "..data_tmp"
        os.symlink(vdir.name, tmp)
        os.replace(tmp, self.root / "..data")
        for name in ("tls.crt", "tls.key"):
            if not (self.root / name).is_symlink():
                os.symlink("..data/" + name, self.root / name)


@pytest.fixture
def mounted(start_server, ca):
    d = Path(tempfile.mkdtemp(prefix="paytrackr-tlswatch-", dir="/tmp"))
    secret = MountedSecret(d)
    secret.publish(*ca.issue("v1", 3001, outdir=d))
    srv = start_server(PAYTRACKR_TLS_CERT=d / "tls.crt", PAYTRACKR_TLS_KEY=d / "tls.key",
                       PAYTRACKR_TLS_RELOAD_SECONDS="1")
    yield srv, d, secret
    srv.stop()
    srv.assert_clean()
    shutil.rmtree(d, ignore_errors=True)


def test_symlink_swapped_certificate_is_served_without_restart(mounted, ca):
    srv, d, secret = mounted
    ctx = client_context(ca.cert)
    pid = srv.proc.pid
    assert serial_of_new_connection(srv.port, ctx) == 3001
    open_conn = tls_connect(srv.port, ctx)
    try:
        secret.publish(*ca.issue("v2", 3002, outdir=d))
        wait_until(lambda: serial_of_new_connection(srv.port, ctx) == 3002, 20,
                   message="a new connection to get the renewed certificate")
        # The connection opened before keeps the certificate it negotiated.
        assert peer_serial(open_conn) == 3001
    finally:
        open_conn.close()
    # A second renewal, several ticks later: two renewals are two reloads,
    # so the unchanged files were not reloaded on the ticks in between.
    secret.publish(*ca.issue("v3", 3003, outdir=d))
    wait_until(lambda: serial_of_new_connection(srv.port, ctx) == 3003, 20,
               message="a new connection to get the second renewal")
    assert srv.alive() and srv.proc.pid == pid, "the server restarted"
    log = srv.stderr_text()
    assert "certificate files changed: TLS certificate reloaded" in log
    assert log.count("TLS certificate reloaded") == 2, log


def test_in_place_rewrite_is_served_and_a_broken_pair_is_not(mounted, ca):
    srv, d, secret = mounted
    ctx = client_context(ca.cert)
    target = d / "..data"
    # A certificate whose key is not yet there (a writer that renews the
    # certificate first): refused once, the old pair keeps serving.
    cert, _ = ca.issue("v3", 3003, outdir=d)
    _, other_key = ca.issue("other", 3999, outdir=d)
    shutil.copyfile(cert, target / "tls.crt")
    shutil.copyfile(other_key, target / "tls.key")
    wait_until(lambda: "certificate files changed: keeping the current TLS certificate"
               in srv.stderr_text(), 20, message="the broken pair to be refused")
    assert serial_of_new_connection(srv.port, ctx) == 3001
    # Then the right key arrives, rewritten in place: now it loads.
    shutil.copyfile(d / "v3.key", target / "tls.key")
    wait_until(lambda: serial_of_new_connection(srv.port, ctx) == 3003, 20,
               message="the completed pair to be served")
    assert srv.alive()
