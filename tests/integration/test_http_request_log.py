"""One JSON log line per request, whole, however many requests share a loop
turn: the service thread writes a turn's request lines together (one
write), so none may be lost, repeated or cut."""

import json
import threading

from harness import create_payment, run_concurrently, wait_until


def _request_lines(srv):
    lines = {}
    for line in srv.stderr_text().splitlines():
        obj = json.loads(line)  # every line is a whole JSON object
        if obj.get("msg") == "request":
            lines.setdefault(obj["request_id"], []).append(obj)
    return lines


def test_every_request_has_exactly_one_whole_log_line(start_server):
    srv = start_server()
    made = create_payment(srv.api)
    ids, lock = [], threading.Lock()

    def client(n):
        conn = srv.api.connection(timeout=30)
        for k in range(40):
            path = "/v1/payments/%s" % made["id"] if k % 2 else "/v1/payments?limit=2"
            r = srv.api.get(path, conn=conn)
            assert r.status == 200
            with lock:
                ids.append((r.headers["x-request-id"], path))
        conn.close()

    failed = [r for r in run_concurrently(8, client) if isinstance(r, BaseException)]
    assert not failed, failed[:3]
    assert len(ids) == 320
    assert wait_until(lambda: all(rid in _request_lines(srv) for rid, _ in ids), 10.0,
                      message="a log line for every request")
    lines = _request_lines(srv)
    for rid, path in ids:
        assert len(lines[rid]) == 1, lines[rid]
        line = lines[rid][0]
        assert line["status"] == 200 and line["method"] == "GET" and line["path"] == path.split("?")[0], line

