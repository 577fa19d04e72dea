"""A job never leaves a transaction open for the next one.

When a PATCH fails while building its answer, after its UPDATE and event
row, the transaction must be rolled back, not left open on the pooled
connection for the next job to commit. The failure is provoked with an
LD_PRELOAD shim (hooks/fail_answer.c) that refuses to print the answer,
as running out of memory there would."""
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import create_payment

HOOK = Path(__file__).resolve().parent / "hooks" / "fail_answer.c"


@pytest.fixture(scope="module")
def hook_so(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("a C compiler is needed to build the test shim")
    out = tmp_path_factory.mktemp("hook") / "fail_answer.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(HOOK), "-ldl"], check=True)
    return out


def test_failed_patch_answer_is_rolled_back(pg, server, start_server, hook_so):
    # One worker: the next job runs on the very connection the PATCH used.
    srv = start_server(PAYTRACKR_DB_POOL_SIZE=1, LD_PRELOAD=str(hook_so),
                       ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:verify_asan_link_order=0")
    api = srv.api
    p = create_payment(api)
    r = api.patch("/v1/payments/%s" % p["id"], {"description": "fail-the-answer"})
    assert r.status == 500, r
    # The next job on that connection is a write that commits.
    other = create_payment(api)
    assert other["version"] == 1
    row = pg.psql("SELECT version, coalesce(description, '') FROM payments WHERE id = '%s'"
                  % p["id"])
    assert row == [["1", ""]], "the failed PATCH was committed by the next job: %r" % row
    events = pg.scalar("SELECT count(*) FROM payment_events WHERE payment_id = '%s'" % p["id"])
    assert events == "1", "the failed PATCH left an event row"
    got = api.get("/v1/payments/%s" % p["id"])
    assert got.status == 200 and got.json["version"] == 1, got
    srv.stop()
    srv.assert_clean()
