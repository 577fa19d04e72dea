"""A local webhook receiver for the tests: an http.server on a free
loopback port, in a thread, that records every request and answers as the
test commands (200, a status, a delay, a Retry-After)."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Delivery:
    def __init__(self, path, headers, body, t):
        self.path = path
        self.headers = headers
        self.raw = body
        self.t = t
        self.event = json.loads(body.decode("utf-8"))

    @property
    def seq(self):
        return self.event["seq"]

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")


def verify(secret, delivery):
    """The Standard Webhooks check, written independently of the server:
    which of the space-separated v1 signatures match `secret`."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg_id = delivery.headers["webhook-id"]
    ts = delivery.headers["webhook-timestamp"]
    signed = msg_id.encode() + b"." + ts.encode() + b"." + delivery.raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sigs = delivery.headers["webhook-signature"].split(" ")
    return [s for s in sigs if s.startswith("v1,") and hmac.compare_digest(s[3:], expected)]


class Receiver:
    """receiver.url(name) is a distinct path per endpoint; plan(status=...,
    delay=..., retry_after=..., count=N) sets how the next N requests
    (None: all) are answered; after them it answers 200 again."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.deliveries = []
        self.connections = 0
        self._plan = []  # (status, delay, retry_after, remaining or None)
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, delay, retry_after = receiver._answer()
                with receiver.lock:
                    receiver.deliveries.append(Delivery(self.path, headers, body, time.monotonic()))
                    receiver.cond.notify_all()
                if delay:
                    receiver.release.wait(delay)
                try:
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", str(retry_after))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512

            def get_request(self):
                conn = super().get_request()
                with receiver.lock:
                    receiver.connections += 1
                return conn

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name="hook"):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def plan(self, status=200, delay=0, retry_after=None, count=None):
        with self.lock:
            self._plan = [[status, delay, retry_after, count]]

    def plan_steps(self, *steps):
        """Answers the next requests by (status, delay, count) steps in
        turn, then 200 again."""
        with self.lock:
            self._plan = [[status, delay, None, count] for status, delay, count in steps]

    def _answer(self):
        with self.lock:
            if not self._plan:
                return 200, 0, None
            p = self._plan[0]
            if p[3] is not None:
                p[3] -= 1
                if p[3] <= 0:
                    self._plan.pop(0)
            return p[0], p[1], p[2]

    def for_path(self, name):
        with self.lock:
            return [d for d in self.deliveries if d.path == "/" + name]

    def wait_for(self, pred, timeout=30.0, what="deliveries"):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred(self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s; got %d: %s" % (
                        what, len(self.deliveries),
                        [(d.path, d.seq) for d in self.deliveries][-20:]))
                self.cond.wait(min(left, 0.2))
            return list(self.deliveries)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
