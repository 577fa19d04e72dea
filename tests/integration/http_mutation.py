"""Mutation runs against the public port (issue 12): raw requests built from
valid ones by flipping, repeating, cutting and splicing bytes, several
pipelined on a connection and written in random splits. Shared by the CI
test (test_http_mutation.py) and the long run (tests/fuzz/http-mutate.py).

Each batch goes out on parallel connections; then the server must answer
a normal request on the public port and /healthz on the admin port. Every
answer must be a well-formed status line with an allowed status, JSON
unless it is one of the answers libwebsockets writes itself (403
text/html, see docs/fuzzing.md), and never a 5xx other than 503."""

import json
import random
import selectors
import socket
import time
import uuid

ALLOWED = {100, 101, 200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 409, 412, 413, 414,
           415, 422, 429, 431, 503}

TOKENS = [b"\r\n", b"\r\n\r\n", b"\x00", b"%", b"%0", b"%00", b"%zz", b" ", b":", b"\t", b"\n",
          b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n",
          b"Expect: 100-continue\r\n", b"Upgrade: h2c\r\n", b"Upgrade: websocket\r\n",
          b"Connection: close\r\n", b"0\r\n\r\n", b"ffffffff\r\n", b"HTTP/1.0", b"HTTP/2.0",
          b"/../", b"?a=1&a=2", b"\xff\xfe", b"{", b"}", b"\"", b"GET ", b"POST ", b"CONNECT ",
          b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]


def seeds(token):
    """Valid requests to start from."""
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n"
    body = json.dumps({"amount": 1250, "currency": "EUR", "payer": "mut-" + uuid.uuid4().hex[:8],
                       "payee": "mut-payee"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    nil = "00000000-0000-0000-0000-000000000000"
    return [
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/payments?limit=2&order=asc&status=pending HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/payments/" + nil.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"HEAD /v1/stats HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"OPTIONS /v1/payments HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/events?after=0 HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
        + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
        + b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
        b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
        + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        b"PATCH /v1/payments/" + nil.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nIf-Match: \"1\"\r\n" + auth
        + b"Content-Length: 21\r\n\r\n{\"status\":\"settled\"}\n",
        b"DELETE /v1/payments/" + nil.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: paytrackr.v1\r\n" + auth + b"\r\n",
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n" + auth + b"\r\n",
    ]


def mutate(rng, data):
    """One to four random edits of `data`."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # repeat a slice
            end = min(len(data), pos + rng.randint(1, 64))
            times = rng.choice([1, 2, 3, 50, 400])
            data[pos:pos] = bytes(data[pos:end]) * times
        elif op == 2 and data:  # cut a slice
            del data[pos:pos + rng.randint(1, 32)]
        elif op == 3:  # insert a token
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 4:  # random bytes
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 5:  # truncate
            del data[pos:]
        else:  # overwrite a byte with a delimiter
            if data:
                data[rng.randrange(len(data))] = rng.choice(b" :\r\n/%?&=\x00")
    return bytes(data)


def build_connection_bytes(rng, seed_list):
    """What one connection sends: one to four requests, valid or mutated."""
    parts = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
        base = rng.choice(seed_list)
        parts.append(base if rng.random() < 0.25 else mutate(rng, base))
    return b"".join(parts)


def splits(rng, data):
    """The pieces one connection's bytes go out in."""
    if rng.random() < 0.5:
        return [data]
    out = []
    i = 0
    while i < len(data):
        n = rng.choice([1, 2, 3, 7, 16, 64, 512, 4096])
        out.append(data[i:i + n])
        i += n
    return out


def check_responses(buf, problems, sent):
    """Checks every response in what one connection received."""
    while buf:
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return  # cut off by our deadline or the server's close
        head = buf[:head_end].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            if b"HTTP/1." not in buf[:12]:
                return  # WebSocket frames after a 101, or HTTP/2 after ours
            problems.append(("bad status line", lines[0], sent[:200]))
            return
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status not in ALLOWED:
            problems.append(("status %d" % status, head, sent[:300]))
        if status == 101:
            return
        length = int(headers.get("content-length", "0") or 0)
        if buf[head_end + 4:head_end + 12].startswith(b"HTTP/1."):
            length = 0  # the answer to a HEAD: no body follows
        body = buf[head_end + 4:head_end + 4 + length]
        ctype = headers.get("content-type", "")
        if length and status >= 400:
            if ctype == "text/html":
                if status != 403:
                    problems.append(("html %d" % status, head, sent[:300]))
            else:
                try:
                    err = json.loads(body)["error"]
                    assert err["code"] and err["message"]
                except Exception:  # noqa: BLE001 - any shape problem is reported
                    if len(body) == length:
                        problems.append(("not the JSON error", head + repr(body[:200]), sent[:300]))
        buf = buf[head_end + 4 + length:]


def run_batch(port, payloads, rng, deadline_s=1.5):
    """Sends each payload on its own connection, in random splits, all at
    once; returns {index: bytes received}."""
    sel = selectors.DefaultSelector()
    state = {}
    for i, data in enumerate(payloads):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            continue
        s.setblocking(False)
        state[s] = {"i": i, "pieces": splits(rng, data), "got": b""}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    end = time.monotonic() + deadline_s
    received = {}
    while state and time.monotonic() < end:
        for key, ev in sel.select(timeout=0.05):
            s = key.fileobj
            st = state.get(s)
            if st is None:
                continue
            if ev & selectors.EVENT_WRITE and st["pieces"]:
                try:
                    s.send(st["pieces"].pop(0))
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    st["pieces"] = []
                if not st["pieces"]:
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    st["got"] += chunk
                else:
                    received[st["i"]] = st["got"]
                    sel.unregister(s)
                    s.close()
                    del state[s]
    for s, st in state.items():
        received[st["i"]] = st["got"]
        sel.unregister(s)
        s.close()
    sel.close()
    return received


def run(port, admin_alive, token, requests, seed, batch=40, log=None):
    """The whole run: returns (connections sent, problems). admin_alive()
    raises when the server does not answer."""
    rng = random.Random(seed)
    seed_list = seeds(token)
    problems = []
    sent = 0
    while sent < requests:
        n = min(batch, requests - sent)
        payloads = [build_connection_bytes(rng, seed_list) for _ in range(n)]
        received = run_batch(port, payloads, rng)
        for i, got in received.items():
            check_responses(got, problems, payloads[i])
        sent += n
        admin_alive()
        if log:
            log("%d/%d connections, %d problems" % (sent, requests, len(problems)))
    return sent, problems
