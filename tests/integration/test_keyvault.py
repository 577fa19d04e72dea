"""Integration tests of server/keyvault.c through the paytrackr-kvtest driver,
against the local IMDS + Key Vault stand-in (kv_standin.py).

The driver is PAYTRACKR_KVTEST_BIN, else $PAYTRACKR_BUILD_DIR/tests/kvtest/paytrackr-kvtest;
the module is skipped when neither is set, and fails when the one named is missing
(a moved driver must not turn these tests into silent skips).
"""

import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_standin import StandIn  # noqa: E402


def _driver_path():
    explicit = os.environ.get("PAYTRACKR_KVTEST_BIN")
    if explicit:
        return explicit
    build = os.environ.get("PAYTRACKR_BUILD_DIR")
    if build:
        return os.path.join(build, "tests", "kvtest", "paytrackr-kvtest")
    return None


DRIVER = _driver_path()
if not DRIVER:
    pytest.skip("paytrackr-kvtest not named (PAYTRACKR_KVTEST_BIN / PAYTRACKR_BUILD_DIR unset)",
                allow_module_level=True)
if not os.access(DRIVER, os.X_OK):
    pytest.fail(f"paytrackr-kvtest not found at {DRIVER!r}", pytrace=False)

CLIENT_ID = "5a2d3c1e-0f4b-4e7a-9c61-2b8d7e3f4a10"
# Generous slack for process start-up under ASan and a loaded CI machine; only
# ever added to upper bounds.
SLACK = 3.0
PROXY_VARS = ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY")


@pytest.fixture
def standin():
    s = StandIn().start()
    yield s
    s.stop()


@pytest.fixture
def standin_id():
    s = StandIn(client_id=CLIENT_ID).start()
    yield s
    s.stop()


class Result:
    def __init__(self, proc, elapsed, standin):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed
        self.standin = standin

    def __repr__(self):
        return f"rc={self.rc} out={self.out!r} err={self.err!r} elapsed={self.elapsed:.2f}"


def run(standin=None, args=(), **env_over):
    """Runs the driver against `standin`; env_over overrides (None deletes)."""
    env = {k: v for k, v in os.environ.items()
           if k not in PROXY_VARS and not k.startswith(("PAYTRACKR_", "AZURE_", "KV_"))}
    env["KV_TIMEOUT_MS"] = "2000"
    env["KV_MAX_ATTEMPTS"] = "3"
    env["KV_BACKOFF_MS"] = "20"
    if standin is not None:
        env["PAYTRACKR_IMDS_ENDPOINT"] = standin.url
        env["PAYTRACKR_KEYVAULT_URL"] = standin.url
    else:
        env["PAYTRACKR_IMDS_ENDPOINT"] = "http://127.0.0.1:9"
        env["PAYTRACKR_KEYVAULT_URL"] = "http://127.0.0.1:9"
    for k, v in env_over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    t0 = time.monotonic()
    proc = subprocess.run([DRIVER, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    res = Result(proc, time.monotonic() - t0, standin)
    if standin is not None:
        assert_no_leak(res)
    return res


def assert_no_leak(res):
    """Neither the token nor the secret (nor a long piece of either) is printed."""
    s = res.standin
    text = res.out + res.err
    needles = [s.token, s.token[-32:], s.token.split(".")[-1][:24]]
    if len(s.secret_value) >= 8:  # a shorter one could match by chance
        needles += [s.secret_value, s.secret_value[-16:]]
    if "password=" in s.secret_value:
        needles.append(s.secret_value.split("password=")[1][:16])
    for needle in needles:
        assert needle not in text, f"secret material printed: {res!r}"


def fingerprint(value):
    return f"ok length={len(value.encode())} sha256={hashlib.sha256(value.encode()).hexdigest()[:16]}"


def backoff_ceiling_s(base_ms, retries):
    """Largest total back-off the client may sleep for `retries` retries."""
    return sum(min(10000, base_ms * 2 ** i) for i in range(retries)) / 1000.0


# ---------------------------------------------------------------------------
# success and request shapes


def test_happy_path_and_request_shapes(standin):
    res = run(standin)
    assert res.rc == 0, res
    assert res.out.strip() == fingerprint(standin.secret_value)
    assert res.err == ""

    reqs = standin.requests()
    assert [r["route"] for r in reqs] == ["imds", "vault"], reqs
    imds, vault = reqs
    assert imds["problems"] == [] and vault["problems"] == []
    assert imds["method"] == "GET"
    assert imds["path"] == "/metadata/identity/oauth2/token"
    assert dict(imds["query"]) == {"api-version": "2018-02-01",
                                   "resource": "https://vault.azure.net"}
    # The resource is percent-encoded as curl_easy_escape does.
    assert "resource=https%3A%2F%2Fvault.azure.net" in imds["raw_query"]
    assert "client_id" not in imds["raw_query"]
    assert imds["headers"]["metadata"] == "true"
    assert "authorization" not in imds["headers"]

    assert vault["method"] == "GET"
    assert vault["path"] == "/secrets/postgres-connection-string"
    assert vault["query"] == [("api-version", "7.4")]
    assert vault["headers"]["authorization"] == f"Bearer {standin.token}"
    assert "metadata" not in vault["headers"]


@pytest.mark.parametrize("length", [1, 55, 56, 63, 64, 65, 119, 120, 25 * 1024])
def test_secret_of_any_length_round_trips(length):
    # Block and padding edges of the driver's SHA-256, and Key Vault's
    # largest secret (25 KiB), which fits under the 64 KiB answer cap.
    value = ("p@ss=\u00e9" * length)[:length]
    with StandIn(secret_value=value) as s:
        res = run(s)
    assert res.rc == 0, res
    assert res.out.strip() == fingerprint(value)


def test_client_id_is_passed(standin_id):
    res = run(standin_id, AZURE_CLIENT_ID=CLIENT_ID)
    assert res.rc == 0, res
    imds = standin_id.requests("imds")
    assert len(imds) == 1
    assert ("client_id", CLIENT_ID) in imds[0]["query"]
    assert imds[0]["problems"] == []


def test_missing_client_id_is_refused_by_standin_and_not_retried(standin_id):
    # The stand-in expects a client_id: without one the shape is wrong (400),
    # and a 400 is final.
    res = run(standin_id)
    assert res.rc == 1, res
    assert "IMDS token request failed: HTTP 400 (Bad Request)" in res.err
    assert len(standin_id.requests("imds")) == 1
    assert standin_id.requests("vault") == []


def test_custom_secret_name_and_trailing_slashes(standin):
    standin.secret_name = "db-Conn-2"
    res = run(standin, PAYTRACKR_KEYVAULT_SECRET="db-Conn-2",
              PAYTRACKR_KEYVAULT_URL=standin.url + "//",
              PAYTRACKR_IMDS_ENDPOINT=standin.url + "/")
    assert res.rc == 0, res
    paths = [r["path"] for r in standin.requests()]
    assert paths == ["/metadata/identity/oauth2/token", "/secrets/db-Conn-2"]


# ---------------------------------------------------------------------------
# retries


@pytest.mark.parametrize("route,status", [("imds", 500), ("imds", 503), ("imds", 404),
                                          ("vault", 500), ("vault", 502)])
def test_transient_status_is_retried_then_succeeds(standin, route, status):
    standin.plan(route, {"status": status}, {"status": status})
    res = run(standin, KV_MAX_ATTEMPTS=3)
    assert res.rc == 0, res
    assert len(standin.requests(route)) == 3
    assert all(r["problems"] == [] for r in standin.requests())
    assert res.out.strip() == fingerprint(standin.secret_value)


def test_gives_up_after_max_attempts(standin):
    standin.plan("imds", *[{"status": 500}] * 10)
    res = run(standin, KV_MAX_ATTEMPTS=4, KV_BACKOFF_MS=5)
    assert res.rc == 1, res
    assert "IMDS token request failed: HTTP 500 after 4 attempts" in res.err
    assert len(standin.requests("imds")) == 4
    assert standin.requests("vault") == []


def test_backoff_grows_between_attempts(standin):
    # With base 100 ms the client sleeps a uniform draw from [0, 100], [0, 200],
    # [0, 400] ms; the total cannot exceed their sum.
    standin.plan("imds", *[{"status": 500}] * 3)
    res = run(standin, KV_MAX_ATTEMPTS=4, KV_BACKOFF_MS=100)
    assert res.rc == 0, res
    times = [r["time"] for r in standin.requests("imds")]
    assert len(times) == 4
    assert times[-1] - times[0] <= backoff_ceiling_s(100, 3) + SLACK


@pytest.mark.parametrize("route,status", [("imds", 429), ("vault", 429), ("vault", 503)])
def test_retry_after_is_honoured(standin, route, status):
    standin.plan(route, {"status": status, "retry_after": 1})
    # Own back-off is tiny, so a ~1 s gap can only come from Retry-After.
    res = run(standin, KV_BACKOFF_MS=1)
    assert res.rc == 0, res
    times = [r["time"] for r in standin.requests(route)]
    assert len(times) == 2
    gap = times[1] - times[0]
    assert 0.95 <= gap <= 1.0 + SLACK, gap


def test_connection_refused_is_retried(standin):
    # A port with nothing listening: bind, read the number, close.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    res = run(standin, PAYTRACKR_IMDS_ENDPOINT=dead, KV_MAX_ATTEMPTS=3, KV_BACKOFF_MS=5)
    assert res.rc == 1, res
    assert "IMDS token request failed:" in res.err
    assert "after 3 attempts" in res.err


def test_dropped_connection_is_retried(standin):
    standin.plan("vault", {"close": True})
    res = run(standin)
    assert res.rc == 0, res
    assert len(standin.requests("vault")) == 2


# ---------------------------------------------------------------------------
# final failures


def test_vault_403_fails_fast_naming_the_step(standin):
    standin.plan("vault", *[{"status": 403}] * 5)
    res = run(standin, KV_MAX_ATTEMPTS=5)
    assert res.rc == 1, res
    assert "Key Vault secret read failed: HTTP 403 (Forbidden)" in res.err
    assert "ForbiddenByRbac" in res.err  # Azure's error code is quoted
    assert len(standin.requests("vault")) == 1
    assert len(standin.requests("imds")) == 1


def test_vault_404_is_not_retried(standin):
    res = run(standin, PAYTRACKR_KEYVAULT_SECRET="no-such-secret", KV_MAX_ATTEMPTS=5)
    assert res.rc == 1, res
    assert "Key Vault secret read failed: HTTP 404 (Not Found)" in res.err
    assert len(standin.requests("vault")) == 1


def test_redirect_is_not_followed(standin):
    standin.plan("vault", {"status": 302, "json": {},
                           "headers": {"Location": standin.url + "/secrets/elsewhere"}})
    res = run(standin)
    assert res.rc == 1, res
    assert "Key Vault secret read failed: HTTP 302" in res.err
    assert len(standin.requests("vault")) == 1


def test_error_message_echoing_the_token_is_not_printed(standin):
    # A hostile or chatty server echoing what it got must not make the
    # client print it: only an error *code* is quoted.
    standin.plan("vault", {"status": 401, "json": {"error": {
        "code": "Unauthorized", "message": f"bad token Bearer {standin.token}"}}})
    res = run(standin)  # run() asserts no leak
    assert res.rc == 1, res
    assert "HTTP 401 (Unauthorized), error code Unauthorized" in res.err


def test_timeout_on_slow_answer(standin):
    timeout_ms, attempts, backoff_ms = 300, 2, 10
    # Each answer takes far longer than the client waits.
    standin.plan("imds", *[{"delay": 10 * timeout_ms / 1000.0}] * attempts)
    res = run(standin, KV_TIMEOUT_MS=timeout_ms, KV_MAX_ATTEMPTS=attempts,
              KV_BACKOFF_MS=backoff_ms)
    assert res.rc == 1, res
    assert "IMDS token request failed:" in res.err
    assert "imed out" in res.err  # curl: "Operation timed out after ..."
    assert f"after {attempts} attempts" in res.err
    assert len(standin.requests("imds")) == attempts
    lower = attempts * timeout_ms / 1000.0
    upper = lower + backoff_ceiling_s(backoff_ms, attempts - 1) + SLACK
    assert lower * 0.9 <= res.elapsed <= upper, res.elapsed


def test_slow_answer_then_success(standin):
    standin.plan("vault", {"delay": 3.0})
    res = run(standin, KV_TIMEOUT_MS=300, KV_MAX_ATTEMPTS=2)
    assert res.rc == 0, res
    assert len(standin.requests("vault")) == 2
    assert res.elapsed < 3.0 + SLACK


@pytest.mark.parametrize("route,raw,cause", [
    ("imds", b'{"access_token": "abc', "IMDS answer is not valid JSON"),
    ("imds", b"<html>oops</html>", "IMDS answer is not valid JSON"),
    ("imds", b"[]", "IMDS answer is not valid JSON"),
    ("vault", b'{"value": ', "Key Vault answer is not valid JSON"),
    ("vault", b"", "Key Vault answer is not valid JSON"),
])
def test_malformed_json(standin, route, raw, cause):
    standin.plan(route, {"raw": raw})
    res = run(standin)
    assert res.rc == 1, res
    assert cause in res.err
    assert len(standin.requests(route)) == 1  # a bad answer is not retried


@pytest.mark.parametrize("route,body,cause", [
    ("vault", {"id": "x", "attributes": {"enabled": True}}, "Key Vault answer has no value"),
    ("vault", {"value": ""}, "Key Vault answer has no value"),
    ("vault", {"value": 42}, "Key Vault answer has no value"),
    ("imds", {"expires_in": "86399"}, "IMDS answer has no access_token"),
    ("imds", {"access_token": ""}, "IMDS answer has no access_token"),
    ("imds", {"access_token": "a\r\nX-Injected: 1"}, "IMDS answer has a malformed access_token"),
    ("imds", {"access_token": "abc", "expires_in": "soon"},
     "IMDS answer has a malformed expires_in"),
])
def test_answer_missing_or_bad_field(standin, route, body, cause):
    standin.plan(route, {"json": body})
    res = run(standin)
    assert res.rc == 1, res
    assert cause in res.err


def test_oversized_answer_is_an_error(standin):
    standin.plan("vault", {"raw": b'{"value": "' + b"x" * (70 * 1024) + b'"}'})
    res = run(standin)
    assert res.rc == 1, res
    assert "Key Vault secret read failed: the answer is larger than 64 KiB" in res.err
    assert len(standin.requests("vault")) == 1


def test_imds_ignores_proxy_environment(standin):
    # A dead proxy: IMDS must still be reached directly (CURLOPT_NOPROXY "*"),
    # while the Key Vault call honours the proxy and so fails.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    res = run(standin, http_proxy=dead, KV_MAX_ATTEMPTS=1)
    assert len(standin.requests("imds")) == 1
    assert res.rc == 1, res
    assert "Key Vault secret read failed:" in res.err
    assert standin.requests("vault") == []


# ---------------------------------------------------------------------------
# configuration checks (no network: --check)


@pytest.mark.parametrize("url", [
    "https://myvault.vault.azure.net",
    "https://myvault.vault.azure.net/",
    "HTTPS://myvault.vault.azure.net:443",
    "http://127.0.0.1:8200",
    "http://127.9.8.7",
    "http://localhost:1234/",
    "http://[::1]:8080",
])
def test_vault_url_accepted(url):
    res = run(args=["--check"], PAYTRACKR_KEYVAULT_URL=url)
    assert res.rc == 0, res
    assert res.out.strip() == "config ok"


@pytest.mark.parametrize("url", [
    "http://myvault.vault.azure.net",
    "http://10.0.0.5",
    "http://169.254.169.254",
    "http://127.0.0.1.nip.io",
    "http://localhost.example.com",
    "http://[::2]",
    "ftp://myvault.vault.azure.net",
    "myvault.vault.azure.net",
    "https://user:pw@myvault.vault.azure.net",
    "https://myvault.vault.azure.net/secrets",
    "https://myvault.vault.azure.net?x=1",
    "https://myvault.vault.azure.net:99999",
    "https://",
    "https://my vault.net",
])
def test_vault_url_refused(url, standin):
    res = run(standin, PAYTRACKR_KEYVAULT_URL=url)
    assert res.rc == 2, res
    assert "PAYTRACKR_KEYVAULT_URL" in res.err
    assert standin.requests() == []  # refused before any request


def test_vault_url_required():
    res = run(args=["--check"], PAYTRACKR_KEYVAULT_URL=None)
    assert res.rc == 2, res
    assert "PAYTRACKR_KEYVAULT_URL is not set" in res.err


@pytest.mark.parametrize("url,ok", [
    (None, True),  # default http://169.254.169.254
    ("http://169.254.169.254", True),
    ("http://[fe80::1]", True),
    ("http://127.0.0.1:5000", True),
    ("https://imds.example.com", True),
    ("http://imds.example.com", False),
    ("http://10.1.2.3", False),
    ("http://169.254.169.254/metadata", False),
])
def test_imds_endpoint_rule(url, ok):
    res = run(args=["--check"], PAYTRACKR_IMDS_ENDPOINT=url)
    assert res.rc == (0 if ok else 2), res
    if not ok:
        assert "PAYTRACKR_IMDS_ENDPOINT" in res.err


@pytest.mark.parametrize("name", ["a", "postgres-connection-string", "A-b-9", "x" * 127])
def test_secret_name_accepted(name):
    res = run(args=["--check"], PAYTRACKR_KEYVAULT_SECRET=name)
    assert res.rc == 0, res


@pytest.mark.parametrize("name", ["x" * 128, "a/b", "../x", "a_b", "with space", "a.b",
                                  "caf\u00e9", "name?x=1", "a%2Fb"])
def test_secret_name_refused(name, standin):
    res = run(standin, PAYTRACKR_KEYVAULT_SECRET=name)
    assert res.rc == 2, res
    assert "PAYTRACKR_KEYVAULT_SECRET" in res.err
    assert standin.requests() == []


@pytest.mark.parametrize("var,value", [("KV_TIMEOUT_MS", "0"), ("KV_TIMEOUT_MS", "5s"),
                                       ("KV_MAX_ATTEMPTS", "0"), ("KV_BACKOFF_MS", "-1")])
def test_driver_refuses_bad_numbers(var, value):
    res = run(args=["--check"], **{var: value})
    assert res.rc == 2, res
    assert var in res.err


# ---------------------------------------------------------------------------
# the stand-in itself, run standalone as the server-level tests will


def test_standin_runs_standalone():
    import json
    import urllib.request

    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "kv_standin.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        req = urllib.request.Request(base + "/_standin/plan", method="POST",
                                     data=json.dumps({"route": "vault",
                                                      "actions": [{"status": 500}]}).encode())
        urllib.request.urlopen(req, timeout=5).read()
        res = run(args=[], PAYTRACKR_IMDS_ENDPOINT=base, PAYTRACKR_KEYVAULT_URL=base)
        assert res.rc == 0, res
        with urllib.request.urlopen(base + "/_standin/requests", timeout=5) as r:
            reqs = json.load(r)["requests"]
        assert [r["route"] for r in reqs] == ["imds", "vault", "vault"]
        assert all(r["problems"] == [] for r in reqs)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
