#!/usr/bin/env python3
"""Runs every paytrackr test suite and prints one closing line:
"N passed, N failed" (", N skipped" when some were skipped).

Suites:
  checks       tests/checks/*.sh       TAP: format, static analysis, shellcheck,
                                       deploy manifests, fuzzing
  unit         <build>/tests/unit/test-*   TAP, under ASan/UBSan
  integration  tests/integration (pytest, real PostgreSQL and servers)

Usage: run.py --build-dir DIR [--only checks,unit,integration] [-k EXPR]
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAP_LINE = re.compile(r"^(not ok|ok)\b(.*)$")
SUITE_TIMEOUT = 1200


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def add(self, ok, name, skipped=False):
        if skipped:
            self.skipped += 1
        elif ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)


def run(cmd, env=None, timeout=SUITE_TIMEOUT):
    """Runs cmd, echoing its output; returns (exit code, output)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              text=True, errors="replace")
        out, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        out += "\n[run.py] timed out after %d s\n" % timeout
        code = 124
    sys.stdout.write(out)
    sys.stdout.write("[run.py] %s: exit %d in %.1f s\n"
                     % (" ".join(cmd), code, time.monotonic() - started))
    sys.stdout.flush()
    return code, out


def tally_tap(tally, label, code, out):
    """Counts TAP lines; a suite that fails without a failing line counts
    as one failure itself, so a crash is never silent."""
    failed_lines = 0
    for line in out.splitlines():
        m = TAP_LINE.match(line.strip())
        if not m:
            continue
        ok = m.group(1) == "ok"
        name = "%s:%s" % (label, m.group(2).strip())
        skipped = ok and "# SKIP" in line.upper()
        tally.add(ok, name, skipped)
        if not ok:
            failed_lines += 1
    if code != 0 and failed_lines == 0:
        tally.add(False, "%s (exit %d)" % (label, code))


def run_checks(tally, env):
    """The checks get a throwaway PostgreSQL too: the deploy check starts
    the server with the environment rendered from the manifests."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from harness import PgCluster  # noqa: E402  (shared with the pytest suites)
    pg = None
    try:
        pg = PgCluster()
        env = dict(env, PAYTRACKR_TEST_DATABASE_URL=pg.url)
    except Exception as exc:  # the checks still run; the server check reports it
        print("[run.py] no PostgreSQL for the checks: %s" % exc)
    try:
        run_check_scripts(tally, env)
    finally:
        if pg:
            pg.destroy()


def run_check_scripts(tally, env):
    checks_dir = os.path.join(ROOT, "tests", "checks")
    for name in sorted(os.listdir(checks_dir)):
        if not name.endswith(".sh"):
            continue
        code, out = run(["bash", os.path.join("tests", "checks", name)], env=env)
        tally_tap(tally, "checks/" + name, code, out)


def run_unit(tally, env, build_dir):
    unit_dir = os.path.join(build_dir, "tests", "unit")
    binaries = sorted(f for f in os.listdir(unit_dir)
                      if f.startswith("test-") and os.access(os.path.join(unit_dir, f), os.X_OK)
                      and not f.endswith(".p")) if os.path.isdir(unit_dir) else []
    if not binaries:
        tally.add(False, "unit: no unit test binaries in %s" % unit_dir)
    for name in binaries:
        code, out = run([os.path.join(unit_dir, name)], env=env)
        tally_tap(tally, "unit/" + name, code, out)


PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def run_integration(tally, env, keyword):
    cmd = ["/usr/bin/python3", "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider",
           "tests/integration"]
    if keyword:
        cmd += ["-k", keyword]
    code, out = run(cmd, env=env, timeout=2400)
    summary = [l for l in out.splitlines() if re.search(r"\d+ (passed|failed|errors?)", l)]
    counts = {}
    if summary:
        for n, kind in PYTEST_COUNT.findall(summary[-1]):
            counts[kind] = int(n)
    tally.passed += counts.get("passed", 0) + counts.get("xfailed", 0)
    tally.skipped += counts.get("skipped", 0)
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0) \
        + counts.get("xpassed", 0)
    tally.failed += failed
    for line in out.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            tally.failures.append("integration: " + line)
    if code not in (0, 5) and failed == 0:
        tally.add(False, "integration (pytest exit %d)" % code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build-asan")
    ap.add_argument("--only", default="checks,unit,integration")
    ap.add_argument("-k", dest="keyword", default=None)
    args = ap.parse_args()
    build_dir = os.path.abspath(os.path.join(ROOT, args.build_dir))
    env = dict(os.environ)
    env["PAYTRACKR_BUILD_DIR"] = build_dir
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    tally = Tally()
    only = set(args.only.split(","))
    if "checks" in only:
        run_checks(tally, env)
    if "unit" in only:
        run_unit(tally, env, build_dir)
    if "integration" in only:
        run_integration(tally, env, args.keyword)
    if tally.failures:
        print("\nFailures:")
        for f in tally.failures:
            print("  " + f)
    line = "%d passed, %d failed" % (tally.passed, tally.failed)
    if tally.skipped:
        line += ", %d skipped" % tally.skipped
    print(line)
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
