"""A bounded, seeded mutation run against the public port (issue 12): a
few thousand requests derived from valid ones (see http_mutation.py),
pipelined in random splits, with the server answering a normal request
and /healthz after every batch. The longer run is tests/fuzz/http-mutate.py
(docs/fuzzing.md). PAYTRACKR_MUTATION_SEED and _CONNECTIONS override."""

import os

import http_mutation
from harness import OPERATOR_TOKEN


def test_mutated_requests_never_stop_the_server(start_server):
    srv = start_server(PAYTRACKR_RATE_LIMIT_RPS=100000, PAYTRACKR_RATE_LIMIT_BURST=100000,
                       PAYTRACKR_AUTH_FAIL_RPS=100000, PAYTRACKR_AUTH_FAIL_BURST=100000,
                       PAYTRACKR_HEADER_TIMEOUT_SECONDS=2)
    seed = int(os.environ.get("PAYTRACKR_MUTATION_SEED", "12"))
    count = int(os.environ.get("PAYTRACKR_MUTATION_CONNECTIONS", "1000"))

    def alive():
        r = srv.api.request("GET", "/v1/stats", timeout=5)
        assert r.status == 200, r
        assert srv.admin.request("GET", "/healthz", timeout=5).status == 200

    sent, problems = http_mutation.run(srv.port, alive, OPERATOR_TOKEN, count, seed)
    assert sent == count
    assert not problems, "seed %d: %d problems, first: %r" % (seed, len(problems), problems[:3])
    assert srv.alive()
