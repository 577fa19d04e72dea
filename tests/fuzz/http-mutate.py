#!/usr/bin/env python3
"""The long mutation run against a real paytrackr-server (issue 12; the
short one is tests/integration/test_http_mutation.py). Starts its own
PostgreSQL and server from the ASan build, sends CONNECTIONS connections
of mutated, pipelined requests in batches, checks every answer and the
server's liveness after every batch, and prints a summary. Record results
in docs/fuzzing.md.

Usage: tests/fuzz/http-mutate.py [--build-dir build-asan] [--seed N]
                                 [--connections N]
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build-asan")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=20000)
    args = ap.parse_args()
    os.environ["PAYTRACKR_BUILD_DIR"] = str((ROOT / args.build_dir).resolve())
    import harness  # noqa: E402  (needs PAYTRACKR_BUILD_DIR)
    import http_mutation  # noqa: E402

    logdir = Path("/tmp/paytrackr-http-mutate-%d" % os.getpid())
    logdir.mkdir()
    pg = harness.PgCluster()
    factory = harness.ServerFactory(pg, logdir)
    t0 = time.monotonic()
    try:
        srv = factory.start(PAYTRACKR_RATE_LIMIT_RPS=100000, PAYTRACKR_RATE_LIMIT_BURST=100000,
                            PAYTRACKR_AUTH_FAIL_RPS=100000, PAYTRACKR_AUTH_FAIL_BURST=100000,
                            PAYTRACKR_HEADER_TIMEOUT_SECONDS=2)

        def alive():
            r = srv.api.request("GET", "/v1/stats", timeout=5)
            assert r.status == 200, r
            assert srv.admin.request("GET", "/healthz", timeout=5).status == 200

        def log(line):
            print("[%6.0f s] %s" % (time.monotonic() - t0, line), flush=True)

        sent, problems = http_mutation.run(srv.port, alive, harness.OPERATOR_TOKEN,
                                           args.connections, args.seed, log=log)
    finally:
        leftovers = factory.stop_all()
        pg.destroy()
    for p in problems[:20]:
        print("PROBLEM", repr(p)[:2000])
    for p in leftovers:
        print("SERVER", p[:4000])
    print("seed %d: %d connections in %.0f s, %d problems, server clean: %s (logs in %s)"
          % (args.seed, sent, time.monotonic() - t0, len(problems), not leftovers, logdir))
    return 1 if problems or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
