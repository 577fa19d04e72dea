"""TLS helpers for the integration tests: a throwaway CA and certificates
made with the `openssl` command line tool (nothing fixed on disk), client
contexts that trust only that CA, and a PostgreSQL cluster serving TLS."""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import harness


def _openssl(*args, cwd):
    proc = subprocess.run(["openssl"] + list(args), cwd=str(cwd), capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s %s" % (args[0], proc.stdout, proc.stderr))
    return proc.stdout


def _newkey_args(key_type):
    if key_type == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    return ["-newkey", "rsa:2048"]


class CertAuthority:
    """A CA in its own temporary directory. issue() makes server
    certificates signed by it."""

    def __init__(self, name="paytrackr test CA", key_type="ec"):
        self.dir = Path(tempfile.mkdtemp(prefix="paytrackr-ca-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        _openssl("req", "-x509", "-new", *_newkey_args(key_type), "-nodes",
                 "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                 "-subj", "/CN=%s" % name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.cert, 0o644)

    def issue(self, name, serial, cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"),
              key_type="ec", outdir=None):
        """Writes NAME.crt and NAME.key (into outdir or the CA's directory);
        returns (cert path, key path)."""
        out = Path(outdir) if outdir else self.dir
        cert, key, csr = out / (name + ".crt"), out / (name + ".key"), out / (name + ".csr")
        ext = out / (name + ".ext")
        ext.write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n" % ",".join(sans))
        _openssl("req", "-new", *_newkey_args(key_type), "-nodes", "-keyout", str(key),
                 "-out", str(csr), "-subj", "/CN=%s" % cn, cwd=out)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-set_serial", str(serial), "-days", "2", "-out", str(cert),
                 "-extfile", str(ext), cwd=out)
        os.chmod(cert, 0o644)
        os.chmod(key, 0o600)
        return cert, key

    def destroy(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def client_context(cafile, minimum=ssl.TLSVersion.TLSv1_2, maximum=None, ciphers=None):
    """A client context that trusts only `cafile` and checks the host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if ciphers:
        ctx.set_ciphers(ciphers)
    ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def tls_connect(port, ctx, host="localhost", timeout=10.0):
    """A TLS socket to 127.0.0.1:port, verified for `host`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def peer_serial(tls_sock):
    """The serial number of the certificate the server presented, as an int."""
    return int(tls_sock.getpeercert()["serialNumber"], 16)


class TlsPgCluster(harness.PgCluster):
    """A PgCluster that also serves TLS with the given certificate and key
    (ssl=on; plain connections are still accepted, so the tests check
    pg_stat_ssl to see that a connection used TLS)."""

    def __init__(self, cert, key):
        self._tls_dir = Path(tempfile.mkdtemp(prefix="paytrackr-pgtls-", dir="/tmp"))
        os.chmod(self._tls_dir, 0o755)
        self._tls_cert = self._tls_dir / "server.crt"
        self._tls_key = self._tls_dir / "server.key"
        shutil.copyfile(cert, self._tls_cert)
        shutil.copyfile(key, self._tls_key)
        os.chmod(self._tls_cert, 0o644)
        os.chmod(self._tls_key, 0o600)
        if os.geteuid() == 0:
            # PostgreSQL refuses a key that its own user cannot read
            # privately.
            shutil.chown(self._tls_key, "postgres", "postgres")
            shutil.chown(self._tls_cert, "postgres", "postgres")
        super().__init__()

    def _run_pg(self, cmd, what, timeout=60, check=True):
        if what == "pg_ctl start" and "-o" in cmd:
            i = cmd.index("-o") + 1
            cmd = cmd[:i] + [cmd[i] + " -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s"
                             % (self._tls_cert, self._tls_key)] + cmd[i + 1:]
        return super()._run_pg(cmd, what, timeout=timeout, check=check)

    def tls_url(self, sslmode="verify-full"):
        """A URI that names the host `localhost` (what the certificate
        says) and connects to 127.0.0.1."""
        return ("postgresql://postgres@localhost:%d/paytrackr?hostaddr=127.0.0.1&sslmode=%s"
                % (self.port, sslmode))

    def destroy(self):
        super().destroy()
        shutil.rmtree(self._tls_dir, ignore_errors=True)
