"""Keepalive on the stream: every PONG answers one of the client's own
PINGs, and a silent peer is still dropped.

lws 4.1.6's own keepalive ping wrote its payload over a client's pending
PONG (docs/soak.md), so a client pinging often got, now and then, a PONG
answering none of its PINGs; Python's `websockets` then closes the
connection. The server sends its own PINGs instead. The proof: raw
clients pinging every millisecond against PAYTRACKR_WS_PING_SECONDS=1
get only PONGs carrying payloads they sent. PAYTRACKR_PING_PROOF_SECONDS
sets how long (tests/bench/soak.sh runs it for 45 s)."""
import os
import threading
import time

from harness import wait_until
from stream_helpers import RawClient

PROOF_S = float(os.environ.get("PAYTRACKR_PING_PROOF_SECONDS", "12"))
CLIENTS = 3
PING, PONG, CLOSE = 9, 10, 8


class Pinger:
    """A raw client that PINGs every millisecond with a unique payload,
    answers the server's PINGs, and checks every PONG."""

    def __init__(self, srv, n):
        self.ws = RawClient(srv, timeout=5.0)
        self.n = n
        self.lock = threading.Lock()
        self.sent = set()
        self.pongs = 0
        self.server_pings = 0
        self.strange = []
        self.error = None
        self.stop = threading.Event()

    def send(self, payload, opcode):
        with self.lock:
            self.ws.send_text(payload, opcode=opcode)

    def ping_loop(self):
        i = 0
        try:
            while not self.stop.is_set():
                payload = b"c%d-%d" % (self.n, i)
                with self.lock:
                    self.sent.add(payload)
                    self.ws.send_text(payload, opcode=PING)
                i += 1
                time.sleep(0.001)
        except OSError as exc:
            self.error = self.error or "send: %r" % exc

    def read_loop(self):
        try:
            while not self.stop.is_set():
                op, payload = self.ws.read_frame()
                if op == PONG:
                    self.pongs += 1
                    with self.lock:
                        known = payload in self.sent
                    if not known:
                        self.strange.append(payload)
                elif op == PING:
                    self.server_pings += 1
                    self.send(payload, PONG)
                elif op == CLOSE:
                    self.error = "closed by the server: %r" % payload
                    return
        except (OSError, EOFError) as exc:
            if not self.stop.is_set():
                self.error = "read: %r" % exc


def test_every_pong_carries_a_payload_the_client_sent(start_server):
    srv = start_server(PAYTRACKR_WS_PING_SECONDS=1)
    pingers = [Pinger(srv, n) for n in range(CLIENTS)]
    threads = []
    for p in pingers:
        threads += [threading.Thread(target=p.ping_loop), threading.Thread(target=p.read_loop)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + PROOF_S
    while time.monotonic() < deadline and not any(p.error or p.strange for p in pingers):
        time.sleep(0.1)
    for p in pingers:
        p.stop.set()
    for p in pingers:
        p.ws.sock.shutdown(2)
    for t in threads:
        t.join(timeout=10)
    for p in pingers:
        p.ws.close()
    for p in pingers:
        assert not p.strange, "client %d got %d PONG(s) with a payload it never sent: %r" % (
            p.n, len(p.strange), p.strange[:3])
        assert p.error is None, "client %d: %s" % (p.n, p.error)
        assert p.pongs > 100, "client %d got only %d PONGs" % (p.n, p.pongs)
    srv.stop()
    srv.assert_clean()


def test_server_pings_and_drops_a_silent_peer(start_server):
    srv = start_server(PAYTRACKR_WS_PING_SECONDS=1)
    silent = RawClient(srv, timeout=10.0)
    answering = Pinger(srv, 0)
    reader = threading.Thread(target=answering.read_loop)
    reader.start()
    try:
        started = time.monotonic()
        # The silent client is pinged first ...
        op, payload = silent.read_frame()
        assert op == PING and payload, (op, payload)
        # ... and, never answering, dropped after two intervals of silence.
        try:
            while True:
                op, payload = silent.read_frame()
                assert op in (PING, CLOSE), (op, payload)
        except (EOFError, ConnectionResetError):
            pass
        took = time.monotonic() - started
        assert took < 5, "a silent peer was dropped only after %.1f s" % took
        # The client that answers the server's PINGs stays.
        wait_until(lambda: answering.server_pings >= 3, 10, message="three server pings answered")
        assert answering.error is None, answering.error
    finally:
        answering.stop.set()
        answering.ws.sock.shutdown(2)
        reader.join(timeout=10)
        answering.ws.close()
        silent.close()
    srv.stop()
    srv.assert_clean()
