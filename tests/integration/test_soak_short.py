"""The soak (tests/bench/soak.py, docs/soak.md) in short, against this
build: 40 s of mixed HTTP and WebSocket load over two servers, with a
fault every 8 s (listener backends terminated, server b restarted twice,
PostgreSQL restarted once). It must exit 0: every subscriber got every
committed event exactly once and in order, no 5xx but 503 and those only
in outages, clean exits. This keeps the soak itself from rotting; the RSS
figures are computed but not judged (40 s under ASan says nothing about
growth; the 10-minute release run does)."""

import os
import subprocess
import sys

import harness

SOAK = harness.REPO_ROOT / "tests" / "bench" / "soak.py"


def test_soak_short():
    env = dict(os.environ)
    env["PAYTRACKR_BUILD_DIR"] = str(harness.server_binary().parents[1])
    cmd = ["/usr/bin/python3", str(SOAK), "--duration", "40", "--fault-interval", "8",
           "--restart-every", "2", "--writers", "4", "--rate", "8", "--subscribers", "4",
           "--filtered", "2", "--ws-writers", "2", "--recover-timeout", "30",
           "--catchup-timeout", "60", "--no-rss-check",
           # The clients ping (as Python's websockets does by default), often
           # enough to meet the server's own pings many times in 40 s.
           "--client-pings", "1", "--server-env", "PAYTRACKR_WS_PING_SECONDS=2"]
    try:
        proc = subprocess.run(cmd, env=env, cwd=str(harness.REPO_ROOT), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=420,
                              text=True, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        raise AssertionError("the short soak did not end within 420 s:\n%s" % (out or "")[-8000:])
    sys.stdout.write(proc.stdout[-6000:])
    assert proc.returncode == 0 and "PASSED" in proc.stdout, \
        "the short soak failed (exit %d):\n%s" % (proc.returncode, proc.stdout[-12000:])
