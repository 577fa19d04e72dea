#!/usr/bin/env python3
"""Creates payments through the HTTP API for tests/bench/webhook-bench.sh:
webhook-writer.py PORT RATE SECONDS (RATE 0: as fast as THREADS allow,
COUNT payments in all). Prints the number created."""
import http.client
import json
import os
import sys
import threading
import time

port, rate, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
threads = int(os.environ.get("THREADS", "4"))
total = int(os.environ.get("COUNT", "0")) or int(rate * secs)
lock = threading.Lock()
state = {"next": 0, "failed": []}
t0 = time.monotonic()


def take():
    with lock:
        i = state["next"]
        if i >= total:
            return None
        state["next"] += 1
        return i


def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = {"amount": 1250, "currency": "EUR", "payer": "bench payer", "payee": "bench payee"}
    while True:
        i = take()
        if i is None:
            break
        if rate > 0:  # paced: payment i is due at i / rate
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c.request("POST", "/v1/payments", json.dumps(body),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        answer = r.read()
        if r.status != 201:
            with lock:  # sys.exit() here would end this thread only
                state["failed"].append("create failed: %d %r" % (r.status, answer[:200]))
            return


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if state["failed"]:
    sys.exit("\n".join(state["failed"]))
print(total)
