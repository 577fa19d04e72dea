"""Helpers for the paytrackr integration tests.

Everything here talks to real processes: a throwaway PostgreSQL cluster and
the real `paytrackr-server` binary. HTTP goes through http.client (standard
library only), the database through the `psql` command line client.
"""

import atexit
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

PG_BIN = Path(os.environ.get("PAYTRACKR_PG_BIN", "/usr/lib/postgresql/15/bin"))
REPO_ROOT = Path(__file__).resolve().parents[2]

OPERATOR_TOKEN = "op-token"
VIEWER_TOKEN = "view-token"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

PAYMENT_FIELDS = {
    "id", "amount", "currency", "payer", "payee", "reference", "description",
    "method", "status", "metadata", "version", "created_at", "updated_at",
    "amount_refunded",
}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_tokens_setting():
    return "operator:%s,viewer:%s" % (sha256_hex(OPERATOR_TOKEN), sha256_hex(VIEWER_TOKEN))


def server_binary():
    build = os.environ.get("PAYTRACKR_BUILD_DIR", "build-asan")
    path = Path(build)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path / "server" / "paytrackr-server"


def build_file(*parts):
    """A file of the build (PAYTRACKR_BUILD_DIR), asserted to exist."""
    build = Path(os.environ.get("PAYTRACKR_BUILD_DIR", "build-asan"))
    if not build.is_absolute():
        build = REPO_ROOT / build
    path = build.joinpath(*parts)
    assert path.exists(), "%s is not built (PAYTRACKR_BUILD_DIR=%s)" % (path, build)
    return path


def free_port():
    """A port that was free on 127.0.0.1 a moment ago."""
    return free_ports(1)[0]


def free_ports(n):
    """`n` distinct ports that were free on 127.0.0.1 a moment ago: held
    open together while chosen, so that two calls in a row cannot return
    the same one (which once gave a server the same public and admin
    port)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Polls `predicate` until it returns a truthy value; returns that value.
    Raises AssertionError naming `message` when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, message, extra))
        time.sleep(interval)


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

_LIVE_CLUSTERS = set()
_LIVE_SERVERS = set()


@atexit.register
def _cleanup_leftovers():
    """Last resort when pytest exits without running fixture teardown."""
    for srv in list(_LIVE_SERVERS):
        if srv.alive():
            srv.proc.kill()
    for cluster in list(_LIVE_CLUSTERS):
        cluster.destroy()


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when the test process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class PgCluster:
    """A throwaway PostgreSQL 15 cluster on a free loopback port."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="paytrackr-pg-", dir="/tmp"))
        _LIVE_CLUSTERS.add(self)
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.port = None
        self.running = False
        try:
            self.sockdir.mkdir()
            if os.geteuid() == 0:
                subprocess.run(["chown", "-R", "postgres:postgres", str(self.base)], check=True)
            self._run_pg([str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust",
                          "-U", "postgres", "--encoding=UTF8", "--locale=C.UTF-8"],
                         what="initdb", timeout=120)
            self._first_start()
            self.psql("CREATE DATABASE paytrackr", db="postgres")
        except BaseException:
            self.destroy()
            raise

    # -- plumbing
    def _as_postgres(self, cmd):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + cmd
        return cmd

    def _run_pg(self, cmd, what, timeout=60, check=True):
        proc = subprocess.run(self._as_postgres(cmd), capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.base))
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (%d): %s %s\n%s" % (
                what, proc.returncode, proc.stdout, proc.stderr, self.log_tail()))
        return proc

    def log_tail(self, n=4000):
        try:
            return self.logfile.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _pg_ctl_start(self):
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=1000" % (self.port, self.sockdir))
        return self._run_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                             "-w", "-t", "60", "-o", opts, "start"], what="pg_ctl start",
                            check=False, timeout=90)

    def _first_start(self):
        for _ in range(5):
            self.port = free_port()
            before = len(self.log_tail(10 ** 9))
            proc = self._pg_ctl_start()
            if proc.returncode == 0:
                self.running = True
                return
            fresh = self.log_tail(10 ** 9)[before:]
            if "in use" not in fresh and "could not bind" not in fresh:
                break
        raise RuntimeError("pg_ctl start failed: %s %s\n%s" % (proc.stdout, proc.stderr, self.log_tail()))

    # -- public API
    @property
    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/paytrackr" % self.port

    def psql(self, sql, db="paytrackr"):
        """Runs SQL with psql; returns the result rows as lists of strings."""
        proc = subprocess.run(
            [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
            capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("psql failed (%d) for %r: %s" % (proc.returncode, sql, proc.stderr))
        return [line.split("\t") for line in proc.stdout.splitlines()]

    def scalar(self, sql):
        rows = self.psql(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, "expected one value from %r, got %r" % (sql, rows)
        return rows[0][0]

    def count(self, sql):
        return int(self.scalar(sql))

    def stop(self, mode="fast"):
        self._run_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                      "-m", mode, "stop"], what="pg_ctl stop")
        self.running = False

    def start(self):
        proc = self._pg_ctl_start()
        if proc.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s %s\n%s" % (proc.stdout, proc.stderr, self.log_tail()))
        self.running = True

    def restart(self):
        self.stop()
        self.start()

    def terminate_backends(self):
        """pg_terminate_backend of every other backend on the paytrackr database;
        returns how many were terminated."""
        return self.count(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = 'paytrackr' AND pid <> pg_backend_pid()")

    def destroy(self):
        if self.data.exists():
            self._run_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
                          "-m", "immediate", "stop"], what="pg_ctl stop", check=False)
        self.running = False
        shutil.rmtree(self.base, ignore_errors=True)
        _LIVE_CLUSTERS.discard(self)


def db_counts(pg):
    """Row counts that a refused request must leave alone."""
    row = pg.psql("SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM payment_events), "
                  "(SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM refunds), "
                  "(SELECT coalesce(sum(version), 0) FROM payments), "
                  "(SELECT coalesce(sum(amount_refunded), 0) FROM payments)")[0]
    return {"payments": int(row[0]), "payment_events": int(row[1]), "idempotency_keys": int(row[2]),
            "refunds": int(row[3]), "versions": int(row[4]), "amount_refunded": int(row[5])}


@contextlib.contextmanager
def db_unchanged(pg):
    before = db_counts(pg)
    yield
    after = db_counts(pg)
    assert after == before, "the database changed: before %r, after %r" % (before, after)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Resp(tuple):
    """(status, headers, json, raw) with attribute access too."""

    def __new__(cls, status, headers, body_json, raw):
        return super().__new__(cls, (status, headers, body_json, raw))

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    json = property(lambda self: self[2])
    raw = property(lambda self: self[3])

    def __repr__(self):
        raw = self[3]
        shown = raw[:600] + (b"..." if len(raw) > 600 else b"")
        return "<Resp %d %r %r>" % (self[0], self[1], shown)


def _collect_headers(msg):
    headers = {}
    for name, value in msg.items():
        key = name.lower()
        headers[key] = value if key not in headers else headers[key] + ", " + value
    return headers


def _decode_json(raw):
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


class Api:
    """A tiny HTTP client for one host:port."""

    def __init__(self, host, port, default_token=OPERATOR_TOKEN, timeout=15.0, source=None):
        self.host = host
        self.port = port
        self.default_token = default_token
        self.timeout = timeout
        self.source = source  # a local address to connect from, e.g. 127.0.0.2

    def connection(self, timeout=None):
        return http.client.HTTPConnection(
            self.host, self.port, timeout=timeout or self.timeout,
            source_address=(self.source, 0) if self.source else None)

    def request(self, method, path, body=None, headers=None, token="__default__", raw=None,
                conn=None, timeout=None):
        """Sends one request. `body` is JSON-encoded; `raw` (bytes) is sent
        verbatim instead. Content-Type defaults to application/json when
        there is a body. `token=None` sends no Authorization header. Returns
        Resp(status, lower-cased headers, parsed JSON or None, raw bytes)."""
        if token == "__default__":
            token = self.default_token
        hdrs = {}
        payload = None
        if raw is not None:
            payload = raw if isinstance(raw, (bytes, bytearray)) else raw.encode("utf-8")
        elif body is not None:
            payload = json.dumps(body).encode("utf-8")
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        for k, v in (headers or {}).items():
            # case-insensitive override; None removes
            for existing in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=payload, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, _collect_headers(r.msg), _decode_json(data), data)
        finally:
            if own:
                c.close()

    # shorthands
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def raw_exchange(host, port, data, timeout=15.0, read_limit=1 << 20, source=None):
    """Sends raw bytes on a fresh TCP connection (tolerating a peer that
    stops reading) and returns everything the server sent until it closed
    the connection, a full response arrived, or the timeout passed."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    received = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(received) < read_limit:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
            if _response_complete(received):
                break
    finally:
        s.close()
    return received


def _response_complete(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if m:
        return len(body) >= int(m.group(1))
    status = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return bool(status) and (status.group(1) in (b"204", b"304") or status.group(1).startswith(b"1"))


def parse_raw_response(buf):
    """(status, headers, json-or-None, body) from raw response bytes; status
    is None when nothing parseable arrived."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None, {}, None, buf
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return int(m.group(1)), headers, _decode_json(body), body


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------

class ServerProcess:
    """One running paytrackr-server with its own ports and log files."""

    def __init__(self, env, logdir, name):
        self.env = env
        self.name = name
        self.port = int(env["PAYTRACKR_LISTEN"].rsplit(":", 1)[1])
        self.admin_port = int(env["PAYTRACKR_ADMIN_LISTEN"].rsplit(":", 1)[1])
        self.stdout_path = Path(logdir) / ("%s.stdout" % name)
        self.stderr_path = Path(logdir) / ("%s.stderr" % name)
        self.proc = None
        self.returncode = None
        self.expected_rc = 0
        self.session_lived = False  # set for the session's shared servers
        self.checked = False  # stopped and checked before the session's end

    def spawn(self, args=()):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([str(server_binary())] + list(args), env=self.env,
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         cwd=str(REPO_ROOT), preexec_fn=_die_with_parent)
        _LIVE_SERVERS.add(self)

    @property
    def api(self):
        return Api("127.0.0.1", self.port)

    @property
    def admin(self):
        return Api("127.0.0.1", self.admin_port, default_token=None)

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def probe(self, path, timeout=2.0):
        try:
            return self.admin.request("GET", path, timeout=timeout).status
        except (OSError, http.client.HTTPException):
            return None

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                return False
            if self.probe("/readyz", timeout=1.0) == 200:
                return True
            time.sleep(0.05)
        raise AssertionError("server %s not ready (GET /readyz != 200) within %.0fs; stderr tail:\n%s"
                             % (self.name, timeout, self.stderr_text()[-3000:]))

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=20.0):
        """SIGTERM, then wait; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "killed after %.0fs without exiting on SIGTERM" % timeout
                return self.returncode
        if self.returncode is None:
            self.returncode = self.proc.returncode
        return self.returncode

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.returncode = self.proc.returncode
        return self.returncode

    def problems(self):
        """What is wrong with this instance's run so far (sanitizer reports,
        bad exit status, tokens in the clear in its output)."""
        found = []
        err = self.stderr_text()
        out = self.stdout_text()
        for marker in SANITIZER_MARKERS:
            if marker in err or marker in out:
                idx = err.find(marker)
                ctx = err[max(0, idx - 200): idx + 3000] if idx >= 0 else out[:3000]
                found.append("%s: %r in its output:\n%s" % (self.name, marker, ctx))
        if self.returncode is not None and self.returncode != self.expected_rc:
            found.append("%s: exit status %r, expected %r; stderr tail:\n%s"
                         % (self.name, self.returncode, self.expected_rc, err[-2000:]))
        for tok in (OPERATOR_TOKEN, VIEWER_TOKEN, "op2-token"):
            if tok in err or tok in out:
                found.append("%s: the token %r appears in the clear in its log" % (self.name, tok))
        return found

    def assert_clean(self):
        problems = self.problems()
        assert not problems, "\n\n".join(problems)


class ServerFactory:
    """Starts servers on free ports; remembers them to stop and check them."""

    def __init__(self, pg, logdir):
        self.pg = pg
        self.logdir = Path(logdir)
        self.instances = []
        self._n = 0
        self._lock = threading.Lock()

    def base_env(self, db_url):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYTRACKR_")}
        env.update({
            "PAYTRACKR_DATABASE_URL": db_url,
            "PAYTRACKR_TOKENS": default_tokens_setting(),
            "PAYTRACKR_LOG_FORMAT": "json",
            "PAYTRACKR_DB_POOL_SIZE": "4",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        return env

    def _env(self, overrides):
        env = self.base_env(self.pg.url)
        public, admin = free_ports(2)
        env["PAYTRACKR_LISTEN"] = "127.0.0.1:%d" % public
        env["PAYTRACKR_ADMIN_LISTEN"] = "127.0.0.1:%d" % admin
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def _name(self):
        with self._lock:
            self._n += 1
            return "server%d" % self._n

    def start(self, wait="ready", args=(), **env_overrides):
        """Starts a server. wait="ready": until /readyz is 200 (20 s);
        wait="health": until /healthz is 200 (database may be down);
        wait=None: return at once."""
        binary = server_binary()
        if not binary.exists():
            raise AssertionError("server binary %s does not exist (set PAYTRACKR_BUILD_DIR)" % binary)
        for attempt in range(3):
            srv = ServerProcess(self._env(env_overrides), self.logdir, self._name())
            srv.spawn(args)
            self.instances.append(srv)
            if wait is None:
                return srv
            if wait == "ready":
                ok = srv.wait_ready()
            else:
                ok = wait_until(lambda: srv.probe("/healthz", 1.0) == 200 or not srv.alive(),
                                20.0, message="/healthz of %s" % srv.name) and srv.alive()
                if not ok:
                    srv.returncode = srv.proc.returncode
            if ok:
                return srv
            err = srv.stderr_text()
            srv.expected_rc = srv.returncode  # reported below, not twice at teardown
            # A port taken meanwhile, or an explicit port the harness also
            # chose for the other listener: new ports, once more.
            lowered = err.lower()
            if ("in use" in lowered or "bind" in lowered or "another port" in lowered) \
                    and attempt < 2:
                continue
            raise AssertionError("server %s exited with %r before it was up; stderr:\n%s"
                                 % (srv.name, srv.returncode, err[-4000:]))
        raise AssertionError("could not start a server")

    def run_to_exit(self, timeout=20.0, args=(), stdin=None, **env_overrides):
        """Runs the binary expecting it to exit by itself; returns
        (exit status, stdout text, stderr text). Sanitizer output fails."""
        binary = server_binary()
        if not binary.exists():
            raise AssertionError("server binary %s does not exist (set PAYTRACKR_BUILD_DIR)" % binary)
        env = self._env(env_overrides)
        proc = subprocess.run([str(binary)] + list(args), env=env, capture_output=True,
                              input=stdin.encode() if isinstance(stdin, str) else stdin,
                              timeout=timeout, cwd=str(REPO_ROOT))
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "sanitizer report (%s):\n%s" % (marker, err[-4000:])
        return proc.returncode, out, err

    def stop_all(self):
        problems = []
        for srv in self.instances:
            if srv.checked:
                continue
            srv.stop()
            problems.extend(srv.problems())
        return problems

    def stop_started_since(self, mark):
        """Stops and checks the instances started after `mark` (a length of
        self.instances) that are not session-lived; returns their problems.
        A module's servers end with the module: every live server LISTENs
        and reads every event, so servers left running by earlier modules
        would load the database and the machine for the rest of the run."""
        problems = []
        for srv in self.instances[mark:]:
            if srv.session_lived or srv.proc is None:
                continue
            srv.stop()
            problems.extend(srv.problems())
            srv.checked = True
        return problems


# --------------------------------------------------------------------------
# Payments
# --------------------------------------------------------------------------

def payment_body(**overrides):
    """A valid create body with unique payer/payee; overrides replace keys,
    a value of `...` (Ellipsis) removes the key."""
    tag = uuid.uuid4().hex[:10]
    body = {
        "amount": 12345,
        "currency": "EUR",
        "payer": "payer-" + tag,
        "payee": "payee-" + tag,
    }
    for k, v in overrides.items():
        if v is ...:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def create_payment(api, **overrides):
    r = api.post("/v1/payments", payment_body(**overrides))
    assert r.status == 201, r
    return r.json


def assert_payment_shape(p):
    assert isinstance(p, dict), p
    missing = PAYMENT_FIELDS - set(p)
    assert not missing, "payment lacks %s: %r" % (sorted(missing), p)
    assert UUID_RE.match(p["id"]), p["id"]
    assert type(p["amount"]) is int, p
    assert type(p["version"]) is int and p["version"] >= 1, p
    assert type(p["amount_refunded"]) is int and 0 <= p["amount_refunded"] <= p["amount"], p
    assert isinstance(p["metadata"], dict), p
    assert TIMESTAMP_RE.match(p["created_at"]), p["created_at"]
    assert TIMESTAMP_RE.match(p["updated_at"]), p["updated_at"]


def assert_error(resp, status, code, field=None):
    """The contract's error body with this status and code (and field)."""
    assert resp.status == status, "expected %d %s, got %r" % (status, code, resp)
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", resp
    body = resp.json
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), resp
    err = body["error"]
    assert err.get("code") == code, "expected code %s, got %r" % (code, resp)
    assert isinstance(err.get("message"), str) and err["message"], resp
    if field is not None:
        assert err.get("field") == field, "expected field %r, got %r" % (field, resp)


def assert_error_one_of(resp, choices):
    """Like assert_error, for points where the contract allows either of a
    few (status, code, field) answers."""
    failures = []
    for choice in choices:
        try:
            assert_error(resp, *choice)
            return
        except AssertionError as exc:
            failures.append(str(exc))
    raise AssertionError("none of %r matched %r" % (choices, resp))


def etag_of(version):
    return '"%d"' % version


def run_concurrently(n, fn):
    """Runs fn(i) in n threads released together by a barrier; returns the
    results in index order (an exception is returned as the result)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # reported to the caller
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
