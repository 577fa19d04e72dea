"""SIGTERM in every phase, as PID 1 in a container would get it.

A process that is PID 1 of its PID namespace ignores a signal it has no
handler for, so a server that installs its handlers only once it serves
would ignore SIGTERM while it reads Key Vault at start, and `migrate`
would ignore it throughout (Kubernetes then waits out the grace period and
kills it). Each test runs the binary as PID 1 of a new PID namespace
(`unshare`), holds it in a phase that blocks, and expects SIGTERM to end
it promptly. The same tests run the binary as a plain process too (where
unshare is not allowed, only those run): there, a SIGTERM without a
handler kills the process instead of letting it exit with its status."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from harness import free_port, server_binary, wait_until
from kv_standin import StandIn

NO_USERNS = shutil.which("unshare") is None or subprocess.run(
    ["unshare", "-Urpf", "true"], capture_output=True).returncode != 0
AS = pytest.mark.parametrize("pid1", [
    pytest.param(True, id="pid1", marks=pytest.mark.skipif(
        NO_USERNS, reason="needs unprivileged user and PID namespaces (unshare -Urpf)")),
    pytest.param(False, id="plain")])

PROMPT_S = 5.0


def _child_of(pid):
    """The pid of `pid`'s only child (the server, PID 1 inside)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            return int(entry)
    return None


class Pid1:
    """The server binary as PID 1 of its own PID namespace (or, with
    pid1=False, as a plain child process)."""

    def __init__(self, server_factory, args, pid1=True, **env_overrides):
        self.env = server_factory._env(env_overrides)
        # LeakSanitizer cannot suspend threads inside the new namespace
        # ("Running thread 2 was not suspended"): it would report the
        # memory of a thread busy at exit as leaked. Leaks are checked by
        # every other test.
        if pid1:
            self.env["ASAN_OPTIONS"] = self.env["ASAN_OPTIONS"].replace("detect_leaks=1",
                                                                        "detect_leaks=0")
        self.err_path = server_factory.logdir / ("pid1-%d.stderr" % free_port())
        prefix = ["unshare", "-Urpf", "--kill-child"] if pid1 else []
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(prefix + [str(server_binary())] + list(args),
                                         env=self.env, stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.child = None if pid1 else self.proc.pid
        if pid1:
            wait_until(lambda: self._find(), 10, message="the server inside the namespace")

    def _find(self):
        self.child = _child_of(self.proc.pid)
        return self.child is not None

    def sigterm_and_wait(self):
        """SIGTERM to the server; seconds until it exited, or None."""
        started = time.monotonic()
        os.kill(self.child, signal.SIGTERM)
        try:
            self.proc.wait(timeout=PROMPT_S)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - started

    def stderr_text(self):
        return self.err_path.read_text(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.stderr_text()


def _hanging_standin(pg):
    kv = StandIn(secret_value=pg.url)
    kv.start()
    # Every IMDS call hangs longer than any test waits.
    kv.plan("imds", *([{"delay": 120}] * 20))
    return kv


def _kv_env(kv):
    return {"PAYTRACKR_DATABASE_URL": None, "PAYTRACKR_KEYVAULT_URL": kv.url,
            "PAYTRACKR_IMDS_ENDPOINT": kv.url}


@AS
@pytest.mark.parametrize("args", [(), ("migrate",)], ids=["serve", "migrate"])
def test_sigterm_while_reading_key_vault(pg, server_factory, args, pid1):
    kv = _hanging_standin(pg)
    srv = None
    try:
        srv = Pid1(server_factory, args, pid1, **_kv_env(kv))
        wait_until(lambda: kv.requests("imds"), 20, message="the Key Vault read")
        took = srv.sigterm_and_wait()
        err = srv.close()
        assert took is not None, "SIGTERM ignored while reading Key Vault:\n" + err[-2000:]
        if not args:  # serve: a clean stop
            assert srv.proc.returncode == 0, err[-2000:]
        else:
            assert srv.proc.returncode == 143, "an interrupted migrate: %r" % srv.proc.returncode
    finally:
        if srv:
            srv.close()
        kv.stop()


@AS
def test_sigterm_while_migrate_waits_for_the_database(server_factory, pid1):
    # Nothing listens on this port: migrate retries for a minute.
    url = "postgresql://nobody@127.0.0.1:%d/none?connect_timeout=2" % free_port()
    srv = Pid1(server_factory, ("migrate",), pid1, PAYTRACKR_DATABASE_URL=url)
    wait_until(lambda: "not reachable" in srv.stderr_text(), 20, message="a failed attempt")
    took = srv.sigterm_and_wait()
    err = srv.close()
    assert took is not None, "SIGTERM ignored while migrate retries:\n" + err[-2000:]
    assert srv.proc.returncode == 143, srv.proc.returncode
