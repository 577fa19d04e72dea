"""Helpers for the WebSocket stream tests (GET /v1/stream).

Clients are real WebSocket clients: Debian's python3-websockets (asyncio)
for well-behaved ones, and a hand-rolled raw socket client for the ones
that misbehave on purpose (never read, never answer pings). Writers that
need control over their commit timing talk to PostgreSQL through `psql`,
doing exactly what the server's store does in a write: change `payments`
first, then insert the event and NOTIFY, in one transaction.
"""

import asyncio
import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import time
import uuid

import websockets

import harness

SUBPROTOCOL = "paytrackr.v1"


def ws_url(srv, path="/v1/stream", query=""):
    return "ws://127.0.0.1:%d%s%s" % (srv.port, path, ("?" + query) if query else "")


def connect(srv, token=harness.OPERATOR_TOKEN, path="/v1/stream", query="", **kw):
    """websockets.connect(...) for the stream; use with `async with`."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    kw.setdefault("max_size", 16 << 20)
    kw.setdefault("open_timeout", 15)
    return websockets.connect(ws_url(srv, path, query), subprotocols=[SUBPROTOCOL],
                              extra_headers=headers, **kw)


async def recv_json(ws, timeout=15.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, pred, timeout=15.0, what="a message"):
    """Receives messages until pred(msg); returns (msg, skipped messages)."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %s; got %r" % (what, skipped[-5:]))
        msg = await recv_json(ws, left)
        if pred(msg):
            return msg, skipped
        skipped.append(msg)


async def subscribe(ws, after=None, filt=None):
    """Sends subscribe; returns the head from `subscribed`."""
    msg = {"type": "subscribe", "after": after}
    if filt is not None:
        msg["filter"] = filt
    await ws.send(json.dumps(msg))
    reply = await recv_json(ws)
    assert reply.get("type") == "subscribed" and isinstance(reply.get("head"), int), reply
    return reply["head"]


async def request(ws, msg, timeout=15.0):
    """Sends an operation with a fresh request_id; returns its result
    (events arriving meanwhile are skipped)."""
    rid = uuid.uuid4().hex
    msg = dict(msg, request_id=rid)
    await ws.send(json.dumps(msg))
    result, _ = await recv_until(
        ws, lambda m: m.get("request_id") == rid and m.get("type") in ("result", "error"),
        timeout, "the answer to %s" % rid)
    return result


def head_seq(pg):
    return int(pg.scalar("SELECT coalesce(max(seq), 0) FROM payment_events"))


def sequence_value(pg):
    """The last seq any transaction drew (committed or not)."""
    return int(pg.scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                         "FROM payment_events_seq_seq"))


def committed_seqs(pg, after, upto=None):
    sql = "SELECT seq FROM payment_events WHERE seq > %d" % after
    if upto is not None:
        sql += " AND seq <= %d" % upto
    return [int(r[0]) for r in pg.psql(sql + " ORDER BY seq")]


class Collector:
    """A subscriber that records every event it receives, and can drop its
    connection and resume with `after` = the last seq it saw."""

    def __init__(self, srv, name, after=None, filt=None, token=harness.OPERATOR_TOKEN):
        self.srv = srv
        self.name = name
        self.after = after
        self.filt = filt
        self.token = token
        self.seqs = []
        self.events = []
        self.reconnects = 0
        self.closes = []  # close codes seen
        self._ws = None
        self._task = None
        self._stop = False
        self.errors = []

    @property
    def last(self):
        return self.seqs[-1] if self.seqs else self.after

    async def start(self):
        await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _open(self):
        self._ws = await connect(self.srv, token=self.token)
        head = await subscribe(self._ws, after=self.last, filt=self.filt)
        if self.after is None and not self.seqs:
            self.after = head

    async def _run(self):
        while not self._stop:
            try:
                msg = json.loads(await self._ws.recv())
            except websockets.ConnectionClosed as exc:
                self.closes.append(exc.code)
                if self._stop:
                    return
                await self._reconnect_now()
                continue
            if msg.get("type") == "event":
                self.seqs.append(msg["seq"])
                self.events.append(msg)
            elif msg.get("type") == "error":
                self.errors.append(msg)

    async def _reconnect_now(self):
        for attempt in range(100):
            try:
                await self._open()
                self.reconnects += 1
                return
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed,
                    asyncio.TimeoutError, AssertionError):
                await asyncio.sleep(0.05 * min(attempt + 1, 10))
        raise AssertionError("%s could not reconnect" % self.name)

    async def reconnect(self):
        """Drops the connection (a clean close) and resumes with after."""
        await self._ws.close()
        # _run sees ConnectionClosed and resumes

    async def wait_for(self, seqs, timeout=30.0):
        """Waits until the last seq of `seqs` (a sorted list) arrived."""
        deadline = time.monotonic() + timeout
        target = seqs[-1] if seqs else None
        while target is not None and (not self.seqs or self.seqs[-1] < target):
            if time.monotonic() > deadline:
                raise AssertionError("%s: timed out; has %d events, last %r, waiting for %r"
                                     % (self.name, len(self.seqs), self.last, target))
            if self._task.done():
                self._task.result()
                raise AssertionError("%s stopped" % self.name)
            await asyncio.sleep(0.02)

    async def stop(self):
        self._stop = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)


def assert_exactly(got, expected, who):
    """got must equal expected: every committed seq once, increasing."""
    if got == expected:
        return
    dup = sorted({s for s in got if got.count(s) > 1})
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    disorder = [(a, b) for a, b in zip(got, got[1:]) if b <= a][:5]
    raise AssertionError("%s: %d events, expected %d; missing %r, extra %r, duplicated %r, "
                         "out of order %r" % (who, len(got), len(expected), missing[:20],
                                              extra[:20], dup[:20], disorder))


# --------------------------------------------------------------------------
# writers that control their own commit timing (psql)
# --------------------------------------------------------------------------

def payment_json_sql(alias="p"):
    """SQL building the contract's payment JSON from a payments row."""
    ts = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
    return ("json_build_object('id', {a}.id, 'amount', {a}.amount, 'currency', {a}.currency, "
            "'payer', {a}.payer, 'payee', {a}.payee, 'reference', {a}.reference, "
            "'description', {a}.description, 'method', {a}.method, 'status', {a}.status, "
            "'metadata', {a}.metadata, 'version', {a}.version, "
            "'created_at', to_char({a}.created_at AT TIME ZONE 'UTC', {ts}), "
            "'updated_at', to_char({a}.updated_at AT TIME ZONE 'UTC', {ts}))").format(a=alias, ts=ts)


def writer_script(n, tag, rng, max_delay=0.03, rollback_share=0.2, description=None,
                  announce=True):
    """SQL for `n` transactions shaped like the server's creates (payments
    first, then the event with its NOTIFY and, with `announce`, the
    advisory lock announcing its seq, as store.c does), each sleeping a
    random time between drawing its seq and committing; some roll back
    instead. Writers that do not announce take the stable seq's slow path
    (it waits for them)."""
    desc = "NULL" if description is None else "'%s'" % description.replace("'", "''")
    ann = (", pg_advisory_xact_lock((seq >> 32)::int, ((seq << 32) >> 32)::int)"
           if announce else "")
    out = ["\\set ON_ERROR_STOP 1"]
    for i in range(n):
        delay = rng.random() * max_delay
        end = "ROLLBACK" if rng.random() < rollback_share else "COMMIT"
        out.append(
            "BEGIN;\n"
            "WITH p AS (INSERT INTO payments (amount, currency, payer, payee, description, method,"
            " status, created_at, updated_at) VALUES (%d, 'EUR', '%s', 'payee-%d', %s, 'other',"
            " 'pending', now(), now()) RETURNING *),\n"
            " e AS (INSERT INTO payment_events (type, payment_id, at, payment)"
            " SELECT 'payment.created', p.id, p.updated_at, %s FROM p RETURNING seq)\n"
            "SELECT pg_notify('paytrackr_events', seq::text)%s FROM e \\g /dev/null\n"
            "SELECT pg_sleep(%.4f) \\g /dev/null\n"
            "%s;" % (i + 1, tag, i, desc, payment_json_sql("p"), ann, delay, end))
    return "\n".join(out) + "\n"


async def run_psql_script(pg, script):
    """Runs a SQL script in one psql session (asyncio); raises on failure."""
    proc = await asyncio.create_subprocess_exec(
        str(harness.PG_BIN / "psql"), "-XAtq", "-h", "127.0.0.1", "-p", str(pg.port),
        "-U", "postgres", "-d", "paytrackr", "-f", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise AssertionError("psql writer failed (%d): %s" % (proc.returncode, err.decode()[-2000:]))
    return out.decode()


def tagged_seqs(pg, tag):
    """Committed event seqs whose payment's payer is `tag`."""
    return [int(r[0]) for r in pg.psql(
        "SELECT seq FROM payment_events WHERE payment->>'payer' = '%s' ORDER BY seq" % tag)]


# --------------------------------------------------------------------------
# a raw WebSocket client, for peers that misbehave on purpose
# --------------------------------------------------------------------------

class RawClient:
    """A WebSocket client on a plain socket: it reads only when told to,
    and never answers pings by itself."""

    def __init__(self, srv, token=harness.OPERATOR_TOKEN, rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", srv.port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: %s\r\nAuthorization: Bearer %s\r\n\r\n"
               % (srv.port, key, SUBPROTOCOL, token))
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("closed during the handshake: %r" % self.buf)
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("upgrade refused: %r" % head)

    def send_text(self, text, opcode=1, fin=True):
        payload = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def read_frame(self):
        """(opcode, payload bytes) of the next frame; EOFError at the end."""
        self._fill(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._fill(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._fill(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._fill(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def metric(srv, name):
    """A counter's value from the admin port's /metrics."""
    r = srv.admin.get("/metrics")
    assert r.status == 200, r
    m = re.search(rb"^%s (\d+)" % re.escape(name.encode()), r.raw, re.M)
    assert m, "no metric %s" % name
    return int(m.group(1))


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def random_rng(seed=None):
    seed = seed if seed is not None else random.randrange(1 << 30)
    return random.Random(seed), seed
