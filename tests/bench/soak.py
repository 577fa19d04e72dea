#!/usr/bin/python3
"""Soak with faults: paytrackr under mixed HTTP and WebSocket load while its
database connections, its processes and PostgreSQL are broken on purpose.

What runs (all on loopback, everything bounded in time):

  * its own PostgreSQL cluster and two servers, "a" and "b", on free ports,
    from $PAYTRACKR_BUILD_DIR (default build-release);
  * N HTTP writer threads, each at a bounded rate, round-robin over both
    servers: creates (with Idempotency-Key, retried with the same key when
    the outcome is unknown), status and description PATCHes with If-Match,
    DELETEs, GETs (some with If-None-Match), lists, the events feed, stats;
  * M WebSocket subscribers split over both servers, subscribing with
    after=0 (the whole history) and, after every disconnect, with
    after=<last seq seen>; the last --filtered of them filter on
    currency JPY; every event they receive goes to their own log file;
  * a WebSocket writer per server doing create and list over the socket;
  * a fault schedule, every --fault-interval seconds: the listener backends
    are terminated (pg_stat_activity.application_name 'paytrackr-listener');
    every --restart-every-th tick server "b" is restarted (SIGTERM, wait for
    a clean exit, start again on the same ports); PostgreSQL is restarted
    once, at the first other tick past --pg-restart-at of the run;
  * RSS and open file descriptors of both servers from /proc every second.

At the end the writers stop, a last sentinel payment is created and every
subscriber must reach it (bounded wait), then it checks:

  1. each subscriber's log holds exactly the committed events of
     payment_events that match its filter: every seq once, strictly
     increasing, with the type, payment id and version of the table's row;
  2. no HTTP answer or WebSocket result was a 5xx other than 503, and 503s
     and dropped connections happened only during an outage (the fault's
     window plus a few seconds) on the server it affected;
  3. no answer had a status the request could not get (e.g. 404 for a
     payment the writer knows exists, 304 missing for a matching ETag);
  4. the database is consistent: one payment per idempotency key, each
     acknowledged create is there, each payment's last event carries its
     current version;
  5. server "a", which lives through the whole run, did not grow: the
     median RSS of the last 20% of samples is within the tolerance of the
     median just after warm-up (the 20%..30% samples); open fds likewise;
  6. every server process exited 0 on SIGTERM with no sanitizer report,
     every fault was recovered from (both servers ready again) in time.

Prints a summary (also summary.json in the work directory) and exits 0 when
every check passed, 1 otherwise. Usage: soak.py --help.
"""

import argparse
import asyncio
import collections
import csv
import http.client
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402

LISTENER_APP = "paytrackr-listener"  # server/listener.c's application_name
FILTER_CURRENCY = "JPY"
CURRENCIES = ("EUR", "USD", "JPY")
METHODS = ("card", "bank_transfer", "cash", "wallet", "other")
NEXT_STATUS = {"pending": ("settled", "failed", "cancelled"), "settled": ("refunded",)}
# after a fault is over (both servers ready again), 503s and dropped
# connections are still excused for this long
SETTLE_S = 3.0
HTTP_TIMEOUT_S = 10.0


def log(msg):
    sys.stdout.write("[soak %7.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stdout.flush()


T0 = time.monotonic()
# when the load and the fault schedule start: times in the summary, the
# problems and outcomes.csv count from here, like the fault plan
RUN = {"t0": T0}


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


# --------------------------------------------------------------------------
# the two servers
# --------------------------------------------------------------------------

class Servers:
    """Servers "a" and "b" with fixed ports; "b" can be restarted on the
    same ports. Every process ever started is kept to be checked."""

    def __init__(self, pg, logdir, extra_env):
        self.pg = pg
        self.logdir = Path(logdir)
        self.factory = harness.ServerFactory(pg, logdir)
        self.envs = {}
        self.current = {}
        self.incarnation = {}
        self.history = []  # every ServerProcess started
        self.lock = threading.Lock()
        for name in ("a", "b"):
            env = self.factory.base_env(pg.url)
            env.pop("PAYTRACKR_DB_POOL_SIZE", None)  # the real default
            env["PAYTRACKR_LISTEN"] = "127.0.0.1:%d" % harness.free_port()
            env["PAYTRACKR_ADMIN_LISTEN"] = "127.0.0.1:%d" % harness.free_port()
            env.update(extra_env)
            self.envs[name] = env
            self.incarnation[name] = -1

    def port(self, name):
        return int(self.envs[name]["PAYTRACKR_LISTEN"].rsplit(":", 1)[1])

    def start(self, name, timeout=60.0):
        """Starts `name` on its ports and waits for /readyz (the port may be
        briefly unavailable right after the previous process exited).
        Must run on the main thread: the child dies with the thread that
        started it (PR_SET_PDEATHSIG)."""
        assert threading.current_thread() is threading.main_thread()
        deadline = time.monotonic() + timeout
        while True:
            self.incarnation[name] += 1
            srv = harness.ServerProcess(self.envs[name], self.logdir,
                                        "%s.%d" % (name, self.incarnation[name]))
            srv.spawn()
            self.history.append(srv)
            with self.lock:
                self.current[name] = srv
            left = deadline - time.monotonic()
            if srv.wait_ready(timeout=max(left, 1.0)):
                return srv
            srv.returncode = srv.proc.returncode
            err = srv.stderr_text()
            if "bind" in err.lower() or "in use" in err.lower():
                srv.expected_rc = srv.returncode  # a lost race for the port, not a finding
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
            raise RuntimeError("server %s exited with %r at start:\n%s"
                               % (srv.name, srv.returncode, err[-3000:]))

    def stop(self, name, timeout):
        with self.lock:
            srv = self.current.get(name)
        if srv is not None:
            srv.stop(timeout=timeout)
        return srv

    def pids(self):
        with self.lock:
            return [(n, self.incarnation[n], s.proc.pid) for n, s in sorted(self.current.items())
                    if s.alive()]

    def all_ready(self):
        with self.lock:
            servers = list(self.current.values())
        return all(s.alive() and s.probe("/readyz", timeout=1.0) == 200 for s in servers)

    def problems(self):
        found = []
        for srv in self.history:
            found.extend(srv.problems())
        return found


# --------------------------------------------------------------------------
# outcomes and fault windows
# --------------------------------------------------------------------------

class Outcomes:
    """Every request's outcome, from all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []  # (t_start, t_end, server, channel, op, status, note)

    def add(self, t0, t1, server, channel, op, status, note=""):
        with self.lock:
            self.rows.append((t0, t1, server, channel, op, status, note))


class Faults:
    """The fault windows: (kind, servers affected, start, end)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows = []
        self.records = []

    def open(self, kind, affects, detail=""):
        w = {"kind": kind, "affects": affects, "start": time.monotonic(), "end": None,
             "detail": detail, "recovered_s": None, "ok": True}
        with self.lock:
            self.windows.append(w)
        return w

    def close(self, w):
        w["end"] = time.monotonic()

    def excuses(self, server, t0, t1):
        """Whether a 503 or a dropped connection on `server` during
        [t0, t1] falls inside an outage that affected it."""
        with self.lock:
            for w in self.windows:
                if server not in w["affects"]:
                    continue
                end = (w["end"] if w["end"] is not None else float("inf")) + SETTLE_S
                if t0 <= end and t1 >= w["start"]:
                    return True
        return False


# --------------------------------------------------------------------------
# HTTP writers
# --------------------------------------------------------------------------

class Pacer:
    """At most `rate` operations a second; never catches up in a burst."""

    def __init__(self, rate, stop):
        self.period = 1.0 / rate
        self.next = time.monotonic()
        self.stop = stop

    def wait(self):
        self.next += self.period
        now = time.monotonic()
        if self.next < now - 1.0:
            self.next = now
        return not self.stop.wait(max(0.0, self.next - now))


class Tracked:
    __slots__ = ("id", "version", "status", "stale", "currency")

    def __init__(self, p):
        self.id = p["id"]
        self.version = p["version"]
        self.status = p["status"]
        self.currency = p["currency"]
        self.stale = False


class HttpWriter(threading.Thread):
    """One writer: a bounded-rate mix of operations, round-robin over the
    servers, on one keep-alive connection per server. It knows the state
    of its own payments, so it can tell which answers are possible; after
    an answer it cannot interpret (a dropped connection, a 5xx) the
    payment is "stale" and re-read before the next change."""

    WEIGHTS = (("create", 5), ("patch_status", 3), ("patch_desc", 1), ("delete", 1),
               ("get", 3), ("get_etag", 1), ("list", 2), ("events", 1), ("stats", 0.3))

    def __init__(self, idx, args, servers, outcomes, stop, run_tag):
        super().__init__(name="http-writer-%d" % idx, daemon=True)
        self.idx = idx
        self.servers = servers
        self.outcomes = outcomes
        self.stop = stop
        self.rate = args.rate
        self.rng = random.Random(args.seed * 1000 + idx)
        self.run_tag = run_tag
        self.conns = {}
        self.turn = idx % 2
        self.mine = collections.OrderedDict()
        self.pending_create = None  # (key, body) whose outcome is unknown
        self.acked = {}  # idempotency key -> payment id of a 201
        self.unexpected = []
        self.keepalive_retries = 0
        self.ops = collections.Counter()
        self.crashed = None

    # -- plumbing
    def _conn(self, name):
        entry = self.conns.get(name)
        if entry is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.servers.port(name),
                                              timeout=HTTP_TIMEOUT_S)
            entry = self.conns[name] = (conn, [0])  # the connection, requests on it
        return entry

    def _drop(self, name):
        c = self.conns.pop(name, None)
        if c is not None:
            c[0].close()

    def _send(self, name, method, path, body, headers):
        hdrs = {"Authorization": "Bearer " + harness.OPERATOR_TOKEN}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in (0, 1):
            conn, uses = self._conn(name)
            reused = uses[0] > 0
            try:
                conn.request(method, path, body=payload, headers=hdrs)
                r = conn.getresponse()
                raw = r.read()
                uses[0] += 1
                if r.will_close:
                    self._drop(name)
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data, raw
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(name)
                if reused and attempt == 0:
                    # the server closed an idle keep-alive connection just
                    # as we sent: try once on a fresh one (every operation
                    # here is safe to repeat: creates carry an
                    # Idempotency-Key, changes an If-Match)
                    self.keepalive_retries += 1
                    continue
                return None, {}, None, repr(exc).encode()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(name)
                return None, {}, None, repr(exc).encode()
        raise AssertionError("unreachable")

    def request(self, op, method, path, body=None, headers=None, expect=(), stale=False):
        """Sends one request to the next server; returns (status, headers,
        json). `expect` are the statuses this request may get; 429 and, in
        an outage, 503 and dropped connections are judged later. With
        `stale`, 404/409/412 are possible too."""
        name = ("a", "b")[self.turn]
        self.turn ^= 1
        t0 = time.monotonic()
        status, hdrs, data, raw = self._send(name, method, path, body, headers)
        t1 = time.monotonic()
        self.ops[op] += 1
        note = ""
        if status is None:
            note = raw.decode(errors="replace")[:200]
        elif status not in expect and status not in (429, 503) and \
                not (stale and status in (404, 409, 412)) and status < 500:
            self.unexpected.append("%s %s %s -> %d %s" % (name, method, path, status,
                                                           raw[:300].decode(errors="replace")))
            note = "unexpected"
        elif status >= 500:
            note = raw[:200].decode(errors="replace")
        self.outcomes.add(t0, t1, name, "http", op, status, note)
        return status, hdrs, data

    # -- operations
    def _pick(self, pred):
        cands = [p for p in self.mine.values() if pred(p)]
        return self.rng.choice(cands) if cands else None

    def _forget(self, p):
        self.mine.pop(p.id, None)

    def _remember(self, payment):
        p = Tracked(payment)
        self.mine[p.id] = p
        while len(self.mine) > 300:
            self.mine.popitem(last=False)
        return p

    def refresh(self, p):
        status, _, data = self.request("get", "GET", "/v1/payments/" + p.id, expect=(200, 404))
        if status == 200:
            p.version, p.status, p.stale = data["version"], data["status"], False
        elif status == 404:
            self._forget(p)

    def op_create(self):
        if self.pending_create is None:
            key = "%s-%d-%s" % (self.run_tag, self.idx, uuid.uuid4().hex[:12])
            body = {"amount": self.rng.randint(1, 10 ** 6),
                    "currency": self.rng.choice(CURRENCIES),
                    "payer": "soak " + key, "payee": "payee %d" % self.rng.randint(1, 50),
                    "method": self.rng.choice(METHODS)}
            if self.rng.random() < 0.5:
                body["reference"] = "REF-%d" % self.rng.randint(1, 10 ** 6)
            if self.rng.random() < 0.3:
                body["metadata"] = {"soak": "yes", "writer": str(self.idx)}
            if self.rng.random() < 0.1:
                body["status"] = "settled"
            retry = False
        else:
            key, body = self.pending_create
            retry = True
        status, hdrs, data = self.request("create", "POST", "/v1/payments", body,
                                          {"Idempotency-Key": key}, expect=(201,), stale=retry)
        if status == 201:
            self.pending_create = None
            if key in self.acked and self.acked[key] != data["id"]:
                self.unexpected.append("key %s answered with two ids %s, %s"
                                       % (key, self.acked[key], data["id"]))
            self.acked[key] = data["id"]
            self._remember(data)
        elif status is None or status >= 500 or status in (409, 429):
            self.pending_create = (key, body)
        else:
            self.pending_create = None

    def op_patch(self, what):
        if what == "status":
            p = self._pick(lambda p: p.stale or p.status in NEXT_STATUS)
        else:
            p = self._pick(lambda p: True)
        if p is None:
            return self.op_create()
        if p.stale:
            return self.refresh(p)
        if what == "status":
            if p.status not in NEXT_STATUS:
                return
            change = {"status": self.rng.choice(NEXT_STATUS[p.status])}
        else:
            change = {"description": "soak change %s" % uuid.uuid4().hex[:8]}
        status, _, data = self.request("patch_" + what, "PATCH", "/v1/payments/" + p.id, change,
                                       {"If-Match": harness.etag_of(p.version)}, expect=(200,))
        if status == 200:
            p.version, p.status = data["version"], data["status"]
        else:
            p.stale = True

    def op_delete(self):
        p = self._pick(lambda p: True)
        if p is None:
            return self.op_create()
        if p.stale:
            return self.refresh(p)
        status, _, _ = self.request("delete", "DELETE", "/v1/payments/" + p.id, expect=(204,))
        if status == 204:
            self._forget(p)
        else:
            p.stale = True

    def op_get(self, etag):
        p = self._pick(lambda p: True)
        if p is None:
            return self.op_create()
        if p.stale:
            return self.refresh(p)
        headers = {"If-None-Match": harness.etag_of(p.version)} if etag else None
        status, _, data = self.request("get_etag" if etag else "get", "GET", "/v1/payments/" + p.id,
                                       headers=headers, expect=(304,) if etag else (200,))
        if status == 200 and data.get("version") != p.version:
            self.unexpected.append("GET %s: version %r, the writer made %d"
                                   % (p.id, data.get("version"), p.version))
        if status not in (200, 304):
            p.stale = True

    def op_list(self):
        q = self.rng.choice(("limit=20", "limit=20&currency=JPY", "limit=10&status=pending",
                             "limit=20&order=created_at.asc", "limit=5&q=soak"))
        status, _, data = self.request("list", "GET", "/v1/payments?" + q, expect=(200,))
        if status == 200 and data.get("next_cursor"):
            self.request("list", "GET", "/v1/payments?%s&cursor=%s" % (q, data["next_cursor"]),
                         expect=(200,))

    def op_events(self):
        after = self.rng.randint(0, max(0, self.last_seq_hint - 50)) if self.last_seq_hint else 0
        status, _, data = self.request("events", "GET", "/v1/events?after=%d&limit=50" % after,
                                       expect=(200,))
        if status == 200:
            seqs = [e["seq"] for e in data.get("data", [])]
            if any(b <= a for a, b in zip([after] + seqs, seqs)):
                self.unexpected.append("GET /v1/events?after=%d: seqs not increasing above it: %r"
                                       % (after, seqs[:20]))
            if seqs:
                self.last_seq_hint = max(self.last_seq_hint, seqs[-1])

    last_seq_hint = 0

    def run(self):
        pacer = Pacer(self.rate, self.stop)
        ops = [o for o, _ in self.WEIGHTS]
        weights = [w for _, w in self.WEIGHTS]
        try:
            while pacer.wait():
                op = self.rng.choices(ops, weights)[0]
                if self.pending_create is not None:
                    op = "create"
                if op == "create":
                    self.op_create()
                elif op == "patch_status":
                    self.op_patch("status")
                elif op == "patch_desc":
                    self.op_patch("desc")
                elif op == "delete":
                    self.op_delete()
                elif op == "get":
                    self.op_get(False)
                elif op == "get_etag":
                    self.op_get(True)
                elif op == "list":
                    self.op_list()
                elif op == "events":
                    self.op_events()
                else:
                    self.request("stats", "GET", "/v1/stats", expect=(200,))
        except Exception as exc:  # reported as a failure
            self.crashed = "%s: %r" % (self.name, exc)
        finally:
            for name in list(self.conns):
                self._drop(name)


# --------------------------------------------------------------------------
# WebSocket clients (one asyncio loop on its own thread)
# --------------------------------------------------------------------------

def stamp():
    """Wall-clock time as the servers log it, for reading logs side by side."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (now % 1 * 1000)


def close_code(exc):
    """How a WebSocket connection ended, for the summary: the close code
    the server sent ("server 1001"), else the one we sent when websockets
    itself failed the connection ("client 1011" on a keepalive ping
    timeout), else the exception's name."""
    rcvd = getattr(exc, "rcvd", None)
    sent = getattr(exc, "sent", None)
    if rcvd is not None:
        return "server %d" % rcvd.code
    if sent is not None:
        return "client %d %s" % (sent.code, sent.reason)
    if hasattr(exc, "rcvd"):
        return "no close frame"
    return type(exc).__name__


class Subscriber:
    """Subscribes with after=0 and, after each disconnect, with after=the
    last seq it saw; writes every message that matters to its log."""

    def __init__(self, idx, server, filt, logpath, roam=False):
        self.idx = idx
        self.name = "sub%d@%s%s" % (idx, server, "~" if roam else "")
        self.server = server
        self.roam = roam  # reconnects to the other server, as through a load balancer
        self.switches = 0
        self.filt = filt
        self.logpath = logpath
        self.last = 0
        self.count = 0
        self.connects = 0
        self.reconnects = 0
        self.closes = collections.Counter()
        self.failed_attempts = 0
        self.longest_gap = 0.0
        self.gap_started = None
        self.errors = []
        self.violations = 0  # seq not above the previous one, as received
        self.close_events = []  # (monotonic time, server, how)
        self.crashed = None


class WsClients(threading.Thread):
    """Runs the subscribers and the WebSocket writers until told to stop."""

    def __init__(self, args, servers, outcomes, workdir, run_tag):
        super().__init__(name="ws-clients", daemon=True)
        import websockets  # Debian python3-websockets
        self.websockets = websockets
        self.args = args
        self.servers = servers
        self.outcomes = outcomes
        self.run_tag = run_tag
        self.loop = None
        self.stop_event = None
        self.writers_stop = None
        self.ready = threading.Event()
        self.writers_done = threading.Event()
        self.subs = []
        n_filtered = min(args.filtered, args.subscribers)
        for i in range(args.subscribers):
            server = ("a", "b")[i % 2]
            filt = {"currency": FILTER_CURRENCY} if i >= args.subscribers - n_filtered else None
            self.subs.append(Subscriber(i, server, filt, Path(workdir) / ("sub%d.log" % i),
                                        roam=i % 4 == 3))
        self.ws_ops = collections.Counter()
        self.ws_unexpected = []
        self.crashed = None

    def url(self, server):
        return "ws://127.0.0.1:%d/v1/stream" % self.servers.port(server)

    async def _connect(self, server):
        return await self.websockets.connect(
            self.url(server), subprotocols=["paytrackr.v1"],
            extra_headers={"Authorization": "Bearer " + harness.OPERATOR_TOKEN},
            open_timeout=10, close_timeout=5, max_size=16 << 20,
            ping_interval=self.args.client_pings or None, ping_timeout=20)

    async def _subscriber(self, sub):
        ws_exc = (OSError, asyncio.TimeoutError, self.websockets.InvalidHandshake,
                  self.websockets.ConnectionClosed, EOFError)
        with open(sub.logpath, "w") as out:
            out.write("# %s filter=%s\n" % (sub.name, json.dumps(sub.filt)))
            backoff = 0.05
            sub.gap_started = time.monotonic()
            while not self.stop_event.is_set():
                ws = None
                try:
                    ws = await self._connect(sub.server)
                    msg = {"type": "subscribe", "after": sub.last}
                    if sub.filt:
                        msg["filter"] = sub.filt
                    await ws.send(json.dumps(msg))
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if reply.get("type") != "subscribed":
                        raise AssertionError("subscribe answered %r" % reply)
                    sub.connects += 1
                    if sub.connects > 1:
                        sub.reconnects += 1
                    sub.longest_gap = max(sub.longest_gap, time.monotonic() - sub.gap_started)
                    sub.gap_started = None
                    backoff = 0.05
                    out.write("# %s connect %d to %s after=%d head=%s\n"
                              % (stamp(), sub.connects, sub.server, sub.last, reply.get("head")))
                    stop_wait = asyncio.ensure_future(self.stop_event.wait())
                    try:
                        while True:
                            recv = asyncio.ensure_future(ws.recv())
                            done, _ = await asyncio.wait({recv, stop_wait},
                                                         return_when=asyncio.FIRST_COMPLETED)
                            if recv not in done:
                                recv.cancel()
                                break
                            m = json.loads(recv.result())
                            if m.get("type") == "event":
                                seq = m["seq"]
                                p = m.get("payment") or {}
                                out.write("%d\t%s\t%s\t%s\n" % (seq, m.get("event"), p.get("id"),
                                                               p.get("version")))
                                if seq <= sub.last:
                                    sub.violations += 1
                                sub.last = max(sub.last, seq)
                                sub.count += 1
                            elif m.get("type") == "error":
                                sub.errors.append(m)
                                out.write("# %s error %s\n" % (stamp(), json.dumps(m)))
                    finally:
                        stop_wait.cancel()
                    await ws.close()
                    return
                except ws_exc as exc:
                    if self.stop_event.is_set():
                        return
                    code = close_code(exc)
                    if sub.gap_started is None:
                        sub.gap_started = time.monotonic()
                        sub.closes[code] += 1
                        sub.close_events.append((sub.gap_started, sub.server, code))
                        out.write("# %s closed %s on %s: %r\n" % (stamp(), code, sub.server, exc))
                        if sub.roam and sub.connects:
                            sub.server = "b" if sub.server == "a" else "a"
                            sub.switches += 1
                    else:
                        sub.failed_attempts += 1
                    if ws is not None:
                        await ws.close()
                    try:
                        await asyncio.wait_for(self.stop_event.wait(), backoff)
                    except asyncio.TimeoutError:
                        pass
                    backoff = min(backoff * 2, 0.5)
                except AssertionError as exc:
                    sub.errors.append(str(exc))
                    if ws is not None:
                        await ws.close()
                    await asyncio.sleep(0.2)

    async def _writer(self, server, idx):
        """create and list over the socket, at --ws-rate a second."""
        rng = random.Random(self.args.seed * 7 + idx)
        ws_exc = (OSError, asyncio.TimeoutError, self.websockets.InvalidHandshake,
                  self.websockets.ConnectionClosed, EOFError)
        period = 1.0 / self.args.ws_rate
        ws = None
        pending = None
        while not self.writers_stop.is_set():
            try:
                await asyncio.wait_for(self.writers_stop.wait(), period)
                break
            except asyncio.TimeoutError:
                pass
            t0 = time.monotonic()
            op = "ws_create" if rng.random() < 0.6 or pending else "ws_list"
            try:
                if ws is None:
                    ws = await self._connect(server)
                rid = uuid.uuid4().hex
                if op == "ws_create":
                    if pending is None:
                        key = "%s-ws%d-%s" % (self.run_tag, idx, uuid.uuid4().hex[:12])
                        pending = (key, {"amount": rng.randint(1, 10 ** 6),
                                         "currency": rng.choice(CURRENCIES),
                                         "payer": "soak " + key, "payee": "ws payee"})
                    msg = {"type": "create", "request_id": rid, "idempotency_key": pending[0],
                           "payment": pending[1]}
                else:
                    msg = {"type": "list", "request_id": rid, "query": {"limit": 10}}
                await ws.send(json.dumps(msg))
                deadline = time.monotonic() + HTTP_TIMEOUT_S
                while True:
                    left = max(0.1, deadline - time.monotonic())
                    m = json.loads(await asyncio.wait_for(ws.recv(), left))
                    if m.get("request_id") == rid:
                        break
                status = m.get("status") if m.get("type") == "result" else None
                note = ""
                ok = (201,) if op == "ws_create" else (200,)
                if status is None:
                    note = "error message %s" % json.dumps(m)[:200]
                    self.ws_unexpected.append("%s %s: %s" % (server, op, note))
                    status = 0
                elif status not in ok and status not in (429, 503) and \
                        not (op == "ws_create" and status == 409) and status < 500:
                    note = "unexpected"
                    self.ws_unexpected.append("%s %s -> %d %s" % (server, op, status,
                                                                json.dumps(m)[:300]))
                settled = status == 201 or (400 <= status < 500 and status not in (409, 429))
                if op == "ws_create" and settled:
                    pending = None
                self.ws_ops[op] += 1
                self.outcomes.add(t0, time.monotonic(), server, "ws", op, status, note)
            except ws_exc as exc:
                if self.writers_stop.is_set():
                    break
                self.ws_ops[op] += 1
                self.outcomes.add(t0, time.monotonic(), server, "ws", op, None,
                                  "%s at %s: %r" % (close_code(exc), stamp(), exc)[:300])
                if ws is not None:
                    await ws.close()
                ws = None
        if ws is not None:
            await ws.close()

    async def _main(self):
        self.stop_event = asyncio.Event()
        self.writers_stop = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.ready.set()
        subs = [asyncio.ensure_future(self._subscriber(s)) for s in self.subs]
        writers = asyncio.gather(*(self._writer(("a", "b")[i % 2], i)
                                   for i in range(self.args.ws_writers)), return_exceptions=True)
        writers.add_done_callback(lambda _: self.writers_done.set())
        for res in await writers:
            if isinstance(res, BaseException):
                self.crashed = repr(res)
        results = await asyncio.gather(*subs, return_exceptions=True)
        for sub, res in zip(self.subs, results):
            if isinstance(res, BaseException):
                sub.crashed = repr(res)

    def run(self):
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported as a failure
            self.crashed = repr(exc)
        finally:
            self.ready.set()

    def _call(self, fn):
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def stop_writers(self, timeout):
        """Stops the WebSocket writers; True once they have."""
        self._call(lambda: self.writers_stop.set())
        return self.writers_done.wait(timeout)

    def request_stop(self):
        self._call(lambda: (self.writers_stop.set(), self.stop_event.set()))


# --------------------------------------------------------------------------
# RSS sampling
# --------------------------------------------------------------------------

def proc_sample(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, fds
    except (OSError, StopIteration, ValueError):
        return None


class Sampler(threading.Thread):
    """VmRSS and open fds of every live server, once a second, to a CSV."""

    def __init__(self, servers, path, stop):
        super().__init__(name="rss-sampler", daemon=True)
        self.servers = servers
        self.path = path
        self.stop = stop
        self.samples = []  # (elapsed, server, incarnation, pid, rss_kib, fds)
        self.start_t = time.monotonic()

    def run(self):
        with open(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["elapsed_s", "server", "incarnation", "pid", "rss_kib", "fds"])
            while True:
                now = time.monotonic() - self.start_t
                for name, inc, pid in self.servers.pids():
                    s = proc_sample(pid)
                    if s:
                        row = (round(now, 2), name, inc, pid, s[0], s[1])
                        self.samples.append(row)
                        w.writerow(row)
                f.flush()
                if self.stop.wait(1.0):
                    return


# --------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------

def listener_pids(pg):
    """The backends of the servers' LISTEN connections (server/listener.c
    names them with application_name)."""
    return {int(r[0]) for r in pg.psql(
        "SELECT pid FROM pg_stat_activity WHERE datname = 'paytrackr' "
        "AND application_name = '%s'" % LISTENER_APP)}


def wait_recovered(servers, pg, w, timeout, gone=frozenset(), want_listeners=2):
    """Waits (bounded) until both servers are ready and a listener backend
    per server is connected again (none of the pids in `gone`); records
    how long it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if servers.all_ready() and len(listener_pids(pg) - gone) >= want_listeners:
                w["recovered_s"] = round(time.monotonic() - w["start"], 2)
                faults_close(w)
                return True
        except RuntimeError:  # psql while PostgreSQL is still coming up
            pass
        time.sleep(0.1)
    w["ok"] = False
    w["detail"] += "; not recovered within %.0f s" % timeout
    faults_close(w)
    return False


def faults_close(w):
    if w["end"] is None:
        w["end"] = time.monotonic()


def fault_schedule(args):
    """[(t, [kinds])] for the run: a listener kill every tick, a restart of
    b every --restart-every-th, PostgreSQL once."""
    ticks = []
    k = 1
    while k * args.fault_interval <= args.duration - min(args.fault_interval, 10.0) * 0.5:
        ticks.append(k)
        k += 1
    pg_tick = None
    if args.pg_restart_at >= 0:
        for k in ticks:
            if k * args.fault_interval >= args.duration * args.pg_restart_at and \
                    not (args.restart_every and k % args.restart_every == 0):
                pg_tick = k
                break
    plan = []
    for k in ticks:
        if k == pg_tick:
            kinds = ["restart_pg"]
        else:
            kinds = ["kill_listener"]
            if args.restart_every and k % args.restart_every == 0:
                kinds.append("restart_b")
        plan.append((k * args.fault_interval, kinds))
    return plan


def run_fault(kind, servers, pg, faults, args):
    if kind == "kill_listener":
        w = faults.open(kind, ())  # HTTP and the stream's sockets must not notice
        # the CTE first picks the listeners, only then are they terminated
        killed = {int(r[0]) for r in pg.psql(
            "WITH l AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = 'paytrackr' "
            "AND application_name = '%s') SELECT pid FROM l WHERE pg_terminate_backend(pid)"
            % LISTENER_APP)}
        w["detail"] = "terminated %d listener backend(s)" % len(killed)
        if len(killed) < 2:
            w["ok"] = False
            w["detail"] += " (expected one per server: 2)"
        wait_recovered(servers, pg, w, args.recover_timeout, gone=killed)
    elif kind == "restart_b":
        w = faults.open(kind, ("b",))
        old = servers.stop("b", timeout=args.grace + 15)
        stopped = time.monotonic() - w["start"]
        w["detail"] = "%s exited %r after %.1f s" % (old.name, old.returncode, stopped)
        if old.returncode != 0:
            w["ok"] = False
        servers.start("b", timeout=args.recover_timeout)
        wait_recovered(servers, pg, w, args.recover_timeout)
    elif kind == "restart_pg":
        w = faults.open(kind, ("a", "b"))
        pg.restart()
        w["detail"] = "PostgreSQL down for %.1f s" % (time.monotonic() - w["start"])
        wait_recovered(servers, pg, w, args.recover_timeout)
    else:
        raise ValueError(kind)
    log("fault %-13s %s; recovered in %s s%s" % (kind, w["detail"], w["recovered_s"],
                                                 "" if w["ok"] else "  <-- FAILED"))
    return w


# --------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------

def read_sub_log(path):
    """The (seq, type, payment id, version) lines of a subscriber's log."""
    got = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            seq, typ, pid, ver = line.rstrip("\n").split("\t")
            got.append((int(seq), typ, pid, ver))
    return got


def db_events(pg):
    rows = pg.psql("SELECT seq, type, payment_id, payment->>'version', payment->>'currency' "
                   "FROM payment_events ORDER BY seq")
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def compare_events(got, expected, who):
    """Problems with a subscriber's events against the table's."""
    seqs = [g[0] for g in got]
    exp_seqs = [e[0] for e in expected]
    if seqs == exp_seqs:
        bad = [(g, e) for g, e in zip(got, expected) if tuple(g) != tuple(e[:4])]
        if bad:
            return ["%s: %d events differ from the table's, e.g. got %r, table %r"
                    % (who, len(bad), bad[0][0], bad[0][1][:4])]
        return []
    counts = collections.Counter(seqs)
    dup = sorted(s for s, c in counts.items() if c > 1)
    missing = sorted(set(exp_seqs) - set(seqs))
    extra = sorted(set(seqs) - set(exp_seqs))
    disorder = [(a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
    return ["%s: received %d events, the table has %d; missing %d %r, extra %d %r, "
            "duplicated %d %r, out of order %d %r"
            % (who, len(seqs), len(exp_seqs), len(missing), missing[:10], len(extra), extra[:10],
               len(dup), dup[:10], len(disorder), disorder[:5])]


def median_window(values, lo, hi):
    n = len(values)
    part = values[int(n * lo): max(int(n * hi), int(n * lo) + 1)]
    return statistics.median(part) if part else None


def memory_verdict(samples, args):
    """(problems, figures) for server a; b's incarnations are reported."""
    problems = []
    figures = {}
    by = collections.defaultdict(list)
    for t, name, inc, pid, rss, fds in samples:
        by[(name, inc)].append((t, rss, fds))
    for (name, inc), rows in sorted(by.items()):
        rss = [r[1] for r in rows]
        fds = [r[2] for r in rows]
        fig = {"samples": len(rows), "first_kib": rss[0], "max_kib": max(rss), "last_kib": rss[-1]}
        if len(rows) >= 10:
            fig["warm_median_kib"] = median_window(rss, args.warmup, args.warmup + 0.1)
            fig["end_median_kib"] = median_window(rss, 0.8, 1.0)
            fig["warm_median_fds"] = median_window(fds, args.warmup, args.warmup + 0.1)
            fig["end_median_fds"] = median_window(fds, 0.8, 1.0)
            fig["growth_kib"] = fig["end_median_kib"] - fig["warm_median_kib"]
            fig["growth_pct"] = round(100.0 * fig["growth_kib"] / fig["warm_median_kib"], 2)
        figures["%s.%d" % (name, inc)] = fig
    a = figures.get("a.0")
    if not a or "warm_median_kib" not in a:
        problems.append("memory: too few RSS samples of server a (%r)" % (a,))
        return problems, figures
    allowed = a["warm_median_kib"] * (1 + args.rss_tolerance_pct / 100.0) + args.rss_tolerance_kib
    a["allowed_end_median_kib"] = round(allowed)
    if a["end_median_kib"] > allowed:
        problems.append("memory: server a grew after warm-up: median RSS %d KiB at %d%%..%d%% of "
                        "the run, %d KiB in the last 20%% (allowed %d KiB)"
                        % (a["warm_median_kib"], args.warmup * 100, (args.warmup + 0.1) * 100,
                           a["end_median_kib"], allowed))
    if a["end_median_fds"] > a["warm_median_fds"] + args.fd_tolerance:
        problems.append("fds: server a holds more open files after warm-up: median %s, then %s "
                        "(allowed +%d)" % (a["warm_median_fds"], a["end_median_fds"],
                                           args.fd_tolerance))
    return problems, figures


def http_verdict(outcomes, faults):
    """(problems, figures) from every request's outcome."""
    problems = []
    by_status = collections.Counter()
    stray = []
    bad5xx = []
    excused = collections.Counter()
    for t0, t1, server, channel, op, status, note in outcomes.rows:
        key = "%s %s" % (channel, status if status is not None else "dropped")
        by_status[key] += 1
        if status is not None and status >= 500 and status != 503:
            bad5xx.append("%s on %s: %s %d %s" % (channel, server, op, status, note))
        elif status == 503 or status is None:
            if faults.excuses(server, t0, t1):
                excused[key] += 1
            else:
                stray.append("%s %s on %s at %.1f s: %s %s" % (channel, op, server,
                                                                t0 - RUN["t0"],
                                                                status or "dropped", note))
    if bad5xx:
        problems.append("%d answers were 5xx other than 503, e.g.:\n    %s"
                        % (len(bad5xx), "\n    ".join(bad5xx[:10])))
    if stray:
        problems.append("%d 503s or dropped connections outside any outage, e.g.:\n    %s"
                        % (len(stray), "\n    ".join(stray[:10])))
    return problems, {"by_status": dict(sorted(by_status.items())),
                      "excused_in_outages": dict(excused), "stray": len(stray),
                      "bad_5xx": len(bad5xx)}


def db_verdict(pg, writers):
    problems = []
    dups = pg.psql("SELECT payer, count(*) FROM payments WHERE payer LIKE 'soak %' "
                   "GROUP BY payer HAVING count(*) > 1 LIMIT 10")
    if dups:
        problems.append("database: one Idempotency-Key made several payments: %r" % dups)
    acked = {}
    for w in writers:
        acked.update(w.acked)
    ids = {r[0] for r in pg.psql("SELECT id FROM payments")}
    lost = [k for k, pid in acked.items() if pid not in ids]
    if lost:
        problems.append("database: %d acknowledged creates are not in payments, e.g. %r"
                        % (len(lost), lost[:5]))
    mismatch = pg.psql(
        "SELECT p.id, p.version, e.version, p.deleted_at IS NOT NULL, e.type FROM payments p "
        "LEFT JOIN LATERAL (SELECT (payment->>'version')::bigint AS version, type "
        "FROM payment_events WHERE payment_id = p.id ORDER BY seq DESC LIMIT 1) e ON true "
        "WHERE e.version IS DISTINCT FROM p.version "
        "OR ((p.deleted_at IS NOT NULL) <> (e.type = 'payment.deleted')) LIMIT 10")
    if mismatch:
        problems.append("database: payments whose last event does not match the row "
                        "(id, version, event version, deleted, event type): %r" % mismatch)
    counts = pg.psql("SELECT (SELECT count(*) FROM payments), "
                     "(SELECT count(*) FROM payment_events)")[0]
    return problems, {"payments": int(counts[0]), "events": int(counts[1]),
                      "acknowledged_creates": len(acked)}


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--duration", type=float, default=600, help="seconds of load and faults")
    ap.add_argument("--fault-interval", type=float, default=30,
                    help="seconds between fault ticks (a listener kill each)")
    ap.add_argument("--restart-every", type=int, default=3,
                    help="restart server b every Nth tick (0: never)")
    ap.add_argument("--pg-restart-at", type=float, default=0.5,
                    help="restart PostgreSQL at the first tick past this fraction of the run "
                         "(negative: never)")
    ap.add_argument("--writers", type=int, default=6, help="HTTP writer threads")
    ap.add_argument("--rate", type=float, default=8, help="requests a second per HTTP writer")
    ap.add_argument("--subscribers", type=int, default=6, help="WebSocket subscribers")
    ap.add_argument("--filtered", type=int, default=2,
                    help="how many of them filter on currency %s" % FILTER_CURRENCY)
    ap.add_argument("--ws-writers", type=int, default=2, help="WebSocket create/list clients")
    ap.add_argument("--ws-rate", type=float, default=2, help="operations a second per WS writer")
    ap.add_argument("--client-pings", type=float, default=20,
                    help="seconds between the WebSocket clients' own keepalive pings, each "
                         "of which must be answered within 20 s (0: none)")
    ap.add_argument("--grace", type=int, default=10, help="PAYTRACKR_SHUTDOWN_GRACE_SECONDS")
    ap.add_argument("--recover-timeout", type=float, default=60,
                    help="seconds a fault may take to be recovered from")
    ap.add_argument("--catchup-timeout", type=float, default=120,
                    help="seconds the subscribers get to reach the last event")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run that is warm-up")
    ap.add_argument("--rss-tolerance-pct", type=float, default=10)
    ap.add_argument("--rss-tolerance-kib", type=int, default=4096)
    ap.add_argument("--fd-tolerance", type=int, default=8)
    ap.add_argument("--no-rss-check", action="store_true",
                    help="report the RSS figures without judging them")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra environment variable for the servers (repeatable)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None, help="where logs, CSVs and the summary go")
    ap.add_argument("--keep", action="store_true", help="keep the work directory when all passed")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.duration <= 0 or args.fault_interval <= 0 or args.rate <= 0 or args.ws_rate <= 0:
        ap.error("durations and rates must be positive")
    if any("=" not in e for e in args.server_env):
        ap.error("--server-env takes NAME=VALUE")
    return args


def server_log_levels(servers):
    out = {}
    for srv in servers.history:
        counts = collections.Counter()
        examples = collections.OrderedDict()
        for line in srv.stderr_text().splitlines() + srv.stdout_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            lvl = rec.get("level")
            counts[lvl] += 1
            if lvl in ("warn", "error") and len(examples) < 8:
                examples.setdefault(rec.get("msg"), 0)
                examples[rec.get("msg")] += 1
        out[srv.name] = {"levels": dict(counts), "warn_error_msgs": list(examples)}
    return out


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("PAYTRACKR_BUILD_DIR", "build-release")
    binary = harness.server_binary()
    if not binary.exists():
        print("soak: no server binary at %s (set PAYTRACKR_BUILD_DIR)" % binary)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="paytrackr-soak-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    run_tag = "r%s" % uuid.uuid4().hex[:6]
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    # everything below is bounded; this is the last resort
    hard_deadline = args.duration + args.catchup_timeout + 4 * args.recover_timeout + 180
    watchdog = threading.Timer(hard_deadline, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    log("binary %s, work directory %s, seed %d" % (binary, workdir, args.seed))
    log("%.0f s, faults every %.0f s, %d HTTP writers x %.1f/s, %d subscribers (%d filtered), "
        "%d WS writers x %.1f/s" % (args.duration, args.fault_interval, args.writers, args.rate,
                                    args.subscribers, min(args.filtered, args.subscribers),
                                    args.ws_writers, args.ws_rate))
    pg = None
    servers = None
    stop = threading.Event()
    writers, ws, sampler = [], None, None
    problems = []
    summary = {"args": vars(args), "binary": str(binary), "workdir": str(workdir)}
    outcomes, faults = Outcomes(), Faults()
    try:
        pg = harness.PgCluster()
        extra = {"PAYTRACKR_SHUTDOWN_GRACE_SECONDS": str(args.grace)}
        extra.update(e.split("=", 1) for e in args.server_env)
        servers = Servers(pg, workdir, extra)
        servers.start("a")
        servers.start("b")
        log("PostgreSQL on %d, server a on %d, b on %d" % (pg.port, servers.port("a"),
                                                           servers.port("b")))
        sampler = Sampler(servers, workdir / "rss.csv", stop)
        sampler.start()
        ws = WsClients(args, servers, outcomes, workdir, run_tag)
        ws.start()
        ws.ready.wait(10)
        writers = [HttpWriter(i, args, servers, outcomes, stop, run_tag)
                   for i in range(args.writers)]
        for w in writers:
            w.start()
        start = RUN["t0"] = time.monotonic()
        plan = fault_schedule(args)
        log("fault plan: %s" % ", ".join("%.0fs %s" % (t, "+".join(k)) for t, k in plan))
        if args.pg_restart_at >= 0 and not any("restart_pg" in k for _, k in plan):
            log("note: no tick is left for the PostgreSQL restart (run longer or with "
                "more frequent ticks)")
        for at, kinds in plan:
            left = start + at - time.monotonic()
            if left > 0:
                time.sleep(left)  # the schedule itself is timing
            for kind in kinds:
                run_fault(kind, servers, pg, faults, args)
        left = start + args.duration - time.monotonic()
        if left > 0:
            time.sleep(left)
        log("load over; stopping the writers")
        stop.set()
        for w in writers:
            w.join(HTTP_TIMEOUT_S * 2 + 5)
        if not ws.stop_writers(HTTP_TIMEOUT_S + 10):
            problems.append("the WebSocket writers did not stop")

        # the sentinel: the last event; every subscriber must reach it
        sentinel = None
        for _ in range(50):
            r = harness.Api("127.0.0.1", servers.port("a")).post(
                "/v1/payments", {"amount": 1, "currency": FILTER_CURRENCY,
                                 "payer": "soak sentinel", "payee": "soak sentinel"},
                headers={"Idempotency-Key": run_tag + "-sentinel"})
            if r.status == 201:
                sentinel = r.json["id"]
                break
            time.sleep(0.2)
        if sentinel is None:
            raise RuntimeError("could not create the sentinel payment: %r" % (r,))
        catch_deadline = time.monotonic() + args.catchup_timeout
        target = 0
        while True:
            head = int(pg.scalar("SELECT coalesce(max(seq), 0) FROM payment_events"))
            if head == target:
                break
            target = head
            while time.monotonic() < catch_deadline and \
                    any(s.last < target for s in ws.subs if s.crashed is None) and ws.is_alive():
                time.sleep(0.05)
            if time.monotonic() >= catch_deadline:
                break
        behind = ["%s at %d" % (s.name, s.last) for s in ws.subs if s.last < target]
        catchup_s = round(time.monotonic() - (start + args.duration), 1)
        if behind:
            problems.append("catch-up: after %.0f s these subscribers had not reached seq %d: %s"
                            % (args.catchup_timeout, target, ", ".join(behind)))
        log("subscribers caught up to seq %d in %.1f s after the load stopped%s"
            % (target, catchup_s, "" if not behind else " (not all: %s)" % behind))
        ws.request_stop()
        ws.join(30)
        if ws.is_alive():
            problems.append("the WebSocket clients did not stop within 30 s")
        stop.set()
        sampler.join(5)
        for name in ("a", "b"):
            servers.stop(name, timeout=args.grace + 15)

        # ---- verification
        events = db_events(pg)
        for sub in ws.subs:
            expected = [e for e in events if not sub.filt or e[4] == sub.filt["currency"]]
            got = read_sub_log(sub.logpath)
            problems.extend(compare_events(got, expected, sub.name))
            if sub.crashed:
                problems.append("%s crashed: %s" % (sub.name, sub.crashed))
            if sub.errors:
                problems.append("%s got error messages: %r" % (sub.name, sub.errors[:3]))
            # a connection may end in an outage of its server, or with 4008
            # (too slow: the contract's way), never otherwise
            odd = ["%s on %s at %.1f s" % (how, server, t - RUN["t0"])
                   for t, server, how in sub.close_events
                   if how != "server 4008" and not faults.excuses(server, t, t)]
            if odd:
                problems.append("%s was disconnected outside any outage: %s"
                                % (sub.name, "; ".join(odd[:5])))
        for w in writers:
            if w.crashed:
                problems.append(w.crashed)
            if w.is_alive():
                problems.append("%s did not stop" % w.name)
        if ws.crashed:
            problems.append("WebSocket clients: %s" % ws.crashed)
        unexpected = [u for w in writers for u in w.unexpected] + ws.ws_unexpected
        if unexpected:
            problems.append("%d answers the request could not get, e.g.:\n    %s"
                            % (len(unexpected), "\n    ".join(unexpected[:10])))
        p, http_fig = http_verdict(outcomes, faults)
        problems.extend(p)
        p, db_fig = db_verdict(pg, writers)
        problems.extend(p)
        p, mem_fig = memory_verdict(sampler.samples, args)
        if args.no_rss_check:
            mem_fig["not_judged"] = p
        else:
            problems.extend(p)
        for w in faults.windows:
            if not w["ok"]:
                problems.append("fault %s: %s" % (w["kind"], w["detail"]))
        problems.extend(servers.problems())

        ops = collections.Counter()
        for w in writers:
            ops.update(w.ops)
        ops.update(ws.ws_ops)
        summary.update({
            "seed": args.seed,
            "elapsed_s": round(time.monotonic() - start, 1),
            "requests": sum(ops.values()),
            "ops": dict(sorted(ops.items())),
            "keepalive_retries": sum(w.keepalive_retries for w in writers),
            "http": http_fig,
            "database": db_fig,
            "catchup_s": catchup_s,
            "last_seq": target,
            "subscribers": [{"name": s.name, "filter": s.filt,
                             "events": len(read_sub_log(s.logpath)),
                             "connects": s.connects, "reconnects": s.reconnects,
                             "server_switches": s.switches,
                             "closes": dict(s.closes), "failed_attempts": s.failed_attempts,
                             "longest_gap_s": round(s.longest_gap, 2)} for s in ws.subs],
            "faults": [{"kind": w["kind"], "at_s": round(w["start"] - start, 1),
                        "detail": w["detail"], "recovered_s": w["recovered_s"], "ok": w["ok"]}
                       for w in faults.windows],
            "memory": mem_fig,
            "server_logs": server_log_levels(servers),
        })
    except (Interrupted, KeyboardInterrupt) as exc:
        problems.append("interrupted (%s); the watchdog fires after %.0f s"
                        % (exc, hard_deadline))
    except Exception as exc:
        import traceback
        traceback.print_exc()
        problems.append("the soak itself failed: %r" % (exc,))
    finally:
        stop.set()
        if ws is not None:
            ws.request_stop()
        for w in writers:
            w.join(HTTP_TIMEOUT_S + 5)
        if ws is not None:
            ws.join(15)
        if servers is not None:
            for srv in servers.history:
                if srv.alive():
                    srv.stop(timeout=args.grace + 15)
        if pg is not None:
            pg.destroy()
        watchdog.cancel()
    summary["problems"] = problems
    summary["passed"] = not problems
    with open(workdir / "outcomes.csv", "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["start_s", "ms", "server", "channel", "op", "status", "note"])
        for t0, t1, server, channel, op, status, note in outcomes.rows:
            cw.writerow([round(t0 - RUN["t0"], 3), round((t1 - t0) * 1000, 1), server, channel, op,
                         status if status is not None else "dropped", note])
    with open(workdir / "summary.json", "w") as f:
        json.dump(summary, f, indent=2, default=str)
    print_summary(summary, workdir)
    if not problems and not args.keep and args.workdir is None:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not problems else 1


def print_summary(s, workdir):
    out = []
    out.append("=" * 72)
    out.append("paytrackr soak summary")
    if "elapsed_s" in s:
        a = s["args"]
        out.append("  ran %.0f s (load %.0f s), seed %d, binary %s"
                   % (s["elapsed_s"], a["duration"], s["seed"], s["binary"]))
        out.append("  requests: %d  %s" % (s["requests"], s["ops"]))
        out.append("  answers: %s" % s["http"]["by_status"])
        out.append("  excused in outages: %s; keep-alive retries %d"
                   % (s["http"]["excused_in_outages"], s["keepalive_retries"]))
        out.append("  database: %d payments, %d events, %d acknowledged creates"
                   % (s["database"]["payments"], s["database"]["events"],
                      s["database"]["acknowledged_creates"]))
        out.append("  faults:")
        for f in s["faults"]:
            out.append("    %6.1fs %-13s recovered in %-6s %s%s"
                       % (f["at_s"], f["kind"], f["recovered_s"], f["detail"],
                          "" if f["ok"] else "  FAILED"))
        out.append("  subscribers (caught up to seq %d %.1f s after the load):"
                   % (s["last_seq"], s["catchup_s"]))
        for sub in s["subscribers"]:
            out.append("    %-9s %-18s %6d events, %d reconnects, closes %s, longest gap %.1f s"
                       % (sub["name"], json.dumps(sub["filter"]) if sub["filter"] else "all",
                          sub["events"], sub["reconnects"], sub["closes"], sub["longest_gap_s"]))
        out.append("  memory (KiB; warm = median at %d%%..%d%%, end = median of the last 20%%):"
                   % (a["warmup"] * 100, (a["warmup"] + 0.1) * 100))
        for name, m in s["memory"].items():
            if name == "not_judged":
                continue
            if "warm_median_kib" in m:
                out.append("    %-4s first %7d  warm %7d  end %7d  max %7d  growth %+6d (%+.1f%%)  "
                           "fds %s -> %s%s"
                           % (name, m["first_kib"], m["warm_median_kib"], m["end_median_kib"],
                              m["max_kib"], m["growth_kib"], m["growth_pct"], m["warm_median_fds"],
                              m["end_median_fds"],
                              "  (allowed end %d)" % m["allowed_end_median_kib"]
                              if "allowed_end_median_kib" in m else ""))
            else:
                out.append("    %-4s first %7d  max %7d  (%d samples)"
                           % (name, m["first_kib"], m["max_kib"], m["samples"]))
        if "not_judged" in s["memory"]:
            out.append("    (not judged: --no-rss-check)")
        for name, lg in s["server_logs"].items():
            if lg["warn_error_msgs"]:
                out.append("  %s log levels %s; warn/error: %s" % (name, lg["levels"],
                                                                  lg["warn_error_msgs"]))
    out.append("  work directory: %s%s" % (workdir, "" if s["problems"] or s["args"]["keep"]
                                            or s["args"]["workdir"] else " (removed)"))
    if s["problems"]:
        out.append("FAILED, %d problem(s):" % len(s["problems"]))
        for p in s["problems"]:
            out.append("  - " + p)
    else:
        out.append("PASSED: every subscriber got every committed event exactly once and in "
                   "order; no 5xx but 503, and those only in outages; %s"
                   % ("memory not judged" if "not_judged" in s.get("memory", {})
                      else "no growth after warm-up"))
    print("\n".join(out))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
