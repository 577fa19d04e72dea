"""Driving the real paytrackr-tui in tmux for the integration tests.

Each Tui runs in a tmux server of its own (a unique -L socket), in a pane
of a known size, with a shell wrapper that records the TUI's exit status
and the terminal's modes after it exits (to check that it restored them).
Everything waits by polling capture-pane against a deadline; nothing
sleeps a fixed time to hope the screen is ready.
"""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unicodedata
import uuid
from pathlib import Path

import pytest

from harness import REPO_ROOT, SANITIZER_MARKERS

EXIT_MARK = "__TUI_EXIT:"


def tui_binary():
    build = os.environ.get("PAYTRACKR_BUILD_DIR", "build-asan")
    path = Path(build)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path / "tui" / "paytrackr-tui"


def require_tui():
    """Skips the calling test when the TUI was not built (the only reason
    to skip: a misbehaving server must fail the test instead)."""
    binary = tui_binary()
    if not binary.exists():
        pytest.skip("paytrackr-tui not built at %s (set PAYTRACKR_BUILD_DIR)" % binary)
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    return binary


def display_width(text):
    """Terminal columns of text: East Asian wide and fullwidth count 2."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class Tui:
    """One paytrackr-tui in its own tmux server."""

    def __init__(self, url, token="op-token", args=(), cols=120, rows=40, env=None):
        self.binary = require_tui()
        self.socket = "pt-tui-" + uuid.uuid4().hex[:10]
        self.dir = Path(tempfile.mkdtemp(prefix="paytrackr-tui-", dir="/tmp"))
        self.stderr_path = self.dir / "stderr"
        self.stty_path = self.dir / "stty"
        self.log_path = self.dir / "lws.log"
        self.closed = False
        env_vars = {
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "tmux-256color",
            "PAYTRACKR_TUI_LOG": str(self.log_path),
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        }
        if token is not None:
            env_vars["PAYTRACKR_TOKEN"] = token
        env_vars.update(env or {})
        exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in env_vars.items())
        cmd = "%s %s --url %s %s" % (exports, shlex.quote(str(self.binary)), shlex.quote(url),
                                      " ".join(shlex.quote(a) for a in args))
        script = ("%s 2>%s; rc=$?; stty -a >%s 2>&1; printf '\\n%s%%s\\n' \"$rc\"; exec sleep 3600"
                  % (cmd, shlex.quote(str(self.stderr_path)), shlex.quote(str(self.stty_path)),
                     EXIT_MARK))
        self._tmux("new-session", "-d", "-s", "tui", "-x", str(cols), "-y", str(rows),
                   "sh", "-c", script)
        # keep the pane at the size asked for, whatever clients attach
        self._tmux("set-option", "-g", "window-size", "manual", check=False)

    # -- plumbing
    def _tmux(self, *args, check=True):
        proc = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null"] + list(args),
                              capture_output=True, text=True, timeout=20)
        if check and proc.returncode != 0:
            raise RuntimeError("tmux %s failed: %s" % (args, proc.stderr))
        return proc.stdout

    # -- reading
    def screen(self):
        return self._tmux("capture-pane", "-p", "-t", "tui")

    def lines(self):
        return self.screen().split("\n")

    def wait_for(self, predicate, timeout=10.0, message=None):
        """Polls the screen until predicate(screen) (or `predicate` as a
        substring) holds; returns the screen. On timeout fails with the
        last screen and the TUI's stderr."""
        if isinstance(predicate, str):
            text = predicate
            predicate = lambda s: text in s  # noqa: E731
            message = message or repr(text)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; screen:\n%s\nstderr:\n%s"
                                     % (timeout, message or "the screen", screen,
                                        self.stderr_text()[-3000:]))
            time.sleep(0.03)

    def wait_gone(self, text, timeout=10.0):
        return self.wait_for(lambda s: text not in s, timeout, "%r to disappear" % text)

    def status_bar(self):
        lines = [l for l in self.lines() if l.strip()]
        return lines[-1] if lines else ""

    def line_with(self, text):
        for line in self.lines():
            if text in line:
                return line
        return None

    def option(self, fmt):
        return self._tmux("display-message", "-p", "-t", "tui", fmt).strip()

    def alternate_screen_on(self):
        return self.option("#{alternate_on}") == "1"

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stty_text(self):
        try:
            return self.stty_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- acting
    def keys(self, *keys):
        """tmux key names: 'Enter', 'Tab', 'Escape', 'NPage', 'j', ..."""
        for k in keys:
            self._tmux("send-keys", "-t", "tui", k)

    def press(self, key, times):
        """Sends `key` `times` times in one tmux command (a burst)."""
        self._tmux("send-keys", "-t", "tui", *([key] * times))

    def type(self, text):
        self._tmux("send-keys", "-t", "tui", "-l", "--", text)

    def resize(self, cols, rows):
        self._tmux("resize-window", "-t", "tui", "-x", str(cols), "-y", str(rows))

    def tui_pid(self):
        """The TUI process (the child of the pane's shell), or None."""
        shell = int(self.option("#{pane_pid}"))
        try:
            children = Path("/proc/%d/task/%d/children" % (shell, shell)).read_text().split()
        except OSError:
            return None
        for pid in children:
            try:
                exe = os.readlink("/proc/%s/exe" % pid)
            except OSError:
                continue
            if exe.endswith("paytrackr-tui"):
                return int(pid)
        return None

    def signal(self, sig=signal.SIGTERM):
        pid = self.tui_pid()
        assert pid is not None, "the TUI is not running"
        os.kill(pid, sig)

    def wait_exit(self, timeout=10.0):
        """Waits for the TUI to exit; returns its exit status."""
        screen = self.wait_for(lambda s: EXIT_MARK in s, timeout, "the TUI to exit")
        for line in screen.split("\n"):
            if EXIT_MARK in line:
                return int(line.split(EXIT_MARK, 1)[1].strip() or "-1")
        return None

    def assert_clean(self):
        err = self.stderr_text()
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "sanitizer report from the TUI:\n%s" % err[-5000:]

    def close(self):
        """Ends the tmux server (and with it the TUI) and checks the TUI's
        stderr for sanitizer reports."""
        if self.closed:
            return
        self.closed = True
        pid = self.tui_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                self.wait_exit(10.0)
            except (OSError, AssertionError):
                pass
        self._tmux("kill-server", check=False)
        try:
            self.assert_clean()
        finally:
            if not os.environ.get("PAYTRACKR_KEEP_LOGS"):
                shutil.rmtree(self.dir, ignore_errors=True)


def ws_url(server):
    return "ws://127.0.0.1:%d" % server.port


def tag(prefix):
    """A unique name: prefix-<8 hex>."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def open_filtered(tui, text):
    """Filters the table to `text` and waits until its one row is there."""
    tui.keys("/")
    tui.type(text)
    tui.keys("Enter")
    # The count comes from /v1/stats, apart from the rows: wait for the row
    # itself too (the text in the header and in the table).
    return tui.wait_for(lambda s: "filter:" in s and s.count(text) >= 2 and "1 payment" in s,
                        message="the filtered row %r" % text)


@pytest.fixture
def tui_factory():
    """tui_factory(url, **kw) -> Tui; every one is closed (and checked for
    sanitizer reports) at the end of the test."""
    made = []

    def make(url, **kw):
        t = Tui(url, **kw)
        made.append(t)
        return t

    yield make
    errors = []
    for t in made:
        try:
            t.close()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "\n\n".join(errors)


def curl_create(server, body, token="op-token"):
    """POST /v1/payments with the curl command line tool; returns the
    created payment."""
    import json

    proc = subprocess.run(
        ["curl", "-sS", "-X", "POST", "-H", "Authorization: Bearer " + token,
         "-H", "Content-Type: application/json", "--data-binary", json.dumps(body),
         "-w", "\n%{http_code}", "http://127.0.0.1:%d/v1/payments" % server.port],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    text, _, code = proc.stdout.rpartition("\n")
    assert code == "201", (code, text)
    return json.loads(text)
