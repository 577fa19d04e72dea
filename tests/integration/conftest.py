"""Fixtures for the paytrackr integration tests: a real PostgreSQL cluster
and real paytrackr-server processes (see harness.py)."""

import os
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

_SERVER_PROBLEMS = []


def _interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def pytest_configure(config):
    # A run stopped with SIGTERM/SIGHUP (e.g. by `timeout`) still tears down
    # its PostgreSQL clusters and servers.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


@pytest.fixture(scope="session")
def pg():
    """The session's PostgreSQL cluster (pg.url, pg.psql(sql), pg.stop(),
    pg.start(), pg.restart(), pg.terminate_backends())."""
    cluster = harness.PgCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def server_logdir():
    path = tempfile.mkdtemp(prefix="paytrackr-it-logs-", dir="/tmp")
    yield Path(path)
    if os.environ.get("PAYTRACKR_KEEP_LOGS"):
        print("\nserver logs kept in %s" % path)
    elif not _SERVER_PROBLEMS:
        shutil.rmtree(path, ignore_errors=True)
    else:
        print("\nserver logs kept in %s" % path)


@pytest.fixture(scope="session")
def server_factory(pg, server_logdir):
    factory = harness.ServerFactory(pg, server_logdir)
    yield factory
    problems = factory.stop_all()
    if problems:
        _SERVER_PROBLEMS.extend(problems)
        pytest.fail("server problems:\n\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def start_server(server_factory):
    """start_server(wait="ready", args=(), **env_overrides) -> ServerProcess.
    An override of None removes that variable. Instances are stopped with
    SIGTERM and checked (exit 0, no sanitizer report) at session end, or
    earlier by srv.stop() / srv.assert_clean()."""
    return server_factory.start


@pytest.fixture
def own_db(pg):
    """A database of the test's own, owned by a role of its own that is not
    a superuser (so row-level security applies to it): {"db", "role",
    "url"}. The server started on it migrates it."""
    suffix = uuid.uuid4().hex[:8]
    role = db = "own_" + suffix
    pg.psql("CREATE ROLE %s LOGIN" % role, db="postgres")
    pg.psql("CREATE DATABASE %s OWNER %s" % (db, role), db="postgres")
    yield {"db": db, "role": role, "url": "postgresql://%s@127.0.0.1:%d/%s" % (role, pg.port, db)}
    pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, db="postgres")
    pg.psql("DROP ROLE IF EXISTS %s" % role, db="postgres")


@pytest.fixture(scope="module", autouse=True)
def _module_servers(server_factory):
    """Stops and checks, when a module ends, the servers its tests and
    fixtures started (the shared `server` lives on)."""
    mark = len(server_factory.instances)
    yield
    problems = server_factory.stop_started_since(mark)
    if problems:
        _SERVER_PROBLEMS.extend(problems)
        pytest.fail("server problems:\n\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def server(start_server):
    """The shared server: auth required, operator op-token, viewer view-token."""
    srv = start_server()
    srv.session_lived = True
    return srv


@pytest.fixture(scope="session")
def api(server):
    return server.api


@pytest.fixture(scope="session")
def admin(server):
    return server.admin


def pytest_sessionfinish(session, exitstatus):
    if _SERVER_PROBLEMS and session.exitstatus == 0:
        session.exitstatus = 1
