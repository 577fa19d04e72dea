"""Workload Identity: with AZURE_FEDERATED_TOKEN_FILE set (as the AKS webhook
sets it, with AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_AUTHORITY_HOST),
keyvault.c gets its Key Vault token from Entra ID by the client-assertion
flow instead of IMDS. Tested against kv_standin.py, which checks the real
request shape: POST {authority}/{tenant}/oauth2/v2.0/token, form-encoded,
client_assertion = the file's token; through the paytrackr-kvtest driver
and through the server itself."""
import hashlib
import os
import secrets
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import payment_body  # noqa: E402
from kv_standin import ASSERTION_TYPE, ENTRA_SCOPE, StandIn  # noqa: E402

CLIENT_ID = "7c0e1d2a-3b4c-4d5e-8f60-718293a4b5c6"
TENANT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


def _driver():
    explicit = os.environ.get("PAYTRACKR_KVTEST_BIN")
    if explicit:
        return explicit
    build = os.environ.get("PAYTRACKR_BUILD_DIR")
    return os.path.join(build, "server", "paytrackr-kvtest") if build else None


DRIVER = _driver()


def service_account_token():
    """Shaped like the projected token the kubelet writes (a JWT)."""
    return "eyJhbGciOiJSUzI1NiJ9.%s.%s" % (secrets.token_urlsafe(40), secrets.token_urlsafe(64))


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "azure-identity-token"
    path.write_text(service_account_token() + "\n")
    return path


@pytest.fixture
def entra(token_file):
    s = StandIn(client_id=CLIENT_ID, tenant_id=TENANT_ID,
                assertion=token_file.read_text().strip()).start()
    yield s
    s.stop()


def wi_env(standin, token_file, **over):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PAYTRACKR_", "AZURE_", "KV_")) and "proxy" not in k.lower()}
    env.update({
        "PAYTRACKR_KEYVAULT_URL": standin.url,
        # IMDS points nowhere: Workload Identity must not use it.
        "PAYTRACKR_IMDS_ENDPOINT": "http://127.0.0.1:9",
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_TENANT_ID": TENANT_ID,
        # The webhook's value has a trailing slash.
        "AZURE_AUTHORITY_HOST": standin.url + "/",
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "KV_TIMEOUT_MS": "2000", "KV_MAX_ATTEMPTS": "3", "KV_BACKOFF_MS": "20",
    })
    for k, v in over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_driver(env, *args):
    if not DRIVER or not os.access(DRIVER, os.X_OK):
        pytest.skip("paytrackr-kvtest not built (PAYTRACKR_BUILD_DIR)")
    return subprocess.run([DRIVER, *args], env=env, capture_output=True, text=True, timeout=60)


def fingerprint(value):
    return "ok length=%d sha256=%s" % (len(value.encode()),
                                       hashlib.sha256(value.encode()).hexdigest()[:16])


def test_client_assertion_flow_request_shape(entra, token_file):
    res = run_driver(wi_env(entra, token_file))
    assert res.returncode == 0, res
    assert res.stdout.strip() == fingerprint(entra.secret_value)
    reqs = entra.requests()
    assert [r["route"] for r in reqs] == ["entra", "vault"], reqs
    tok = reqs[0]
    assert tok["problems"] == [], tok["problems"]
    assert tok["method"] == "POST"
    assert tok["path"] == "/%s/oauth2/v2.0/token" % TENANT_ID
    form = dict(tok["form"])
    assert form == {"client_id": CLIENT_ID, "scope": ENTRA_SCOPE,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": token_file.read_text().strip(),
                    "grant_type": "client_credentials"}
    assert reqs[1]["headers"]["authorization"] == "Bearer " + entra.token
    # Neither the assertion nor the access token is printed.
    assert entra.token not in res.stdout + res.stderr
    assert form["client_assertion"] not in res.stdout + res.stderr


def test_token_file_is_read_at_every_fetch(entra, token_file):
    assert run_driver(wi_env(entra, token_file)).returncode == 0
    # The kubelet renews the projected token: the next fetch sends the new one.
    renewed = service_account_token()
    token_file.write_text(renewed)
    entra.assertion = renewed
    res = run_driver(wi_env(entra, token_file))
    assert res.returncode == 0, res
    assert dict(entra.requests("entra")[-1]["form"])["client_assertion"] == renewed


def test_entra_rejection_is_reported_and_not_retried(entra, token_file):
    entra.plan("entra", {"status": 401})
    res = run_driver(wi_env(entra, token_file))
    assert res.returncode == 1, res
    assert "Entra ID token request failed: HTTP 401 (Unauthorized), error code invalid_client" \
        in res.stderr, res.stderr
    assert len(entra.requests("entra")) == 1 and not entra.requests("vault")


def test_entra_unavailable_is_retried(entra, token_file):
    entra.plan("entra", {"status": 503}, {"status": 500})
    res = run_driver(wi_env(entra, token_file))
    assert res.returncode == 0, res
    assert len(entra.requests("entra")) == 3


@pytest.mark.parametrize("over, needle", [
    ({"AZURE_TENANT_ID": None}, "AZURE_TENANT_ID must be set"),
    ({"AZURE_TENANT_ID": "a/b"}, "AZURE_TENANT_ID must be set"),
    ({"AZURE_CLIENT_ID": None}, "AZURE_CLIENT_ID must be set"),
    ({"AZURE_AUTHORITY_HOST": "http://login.example.com"}, "AZURE_AUTHORITY_HOST must use https"),
    ({"AZURE_AUTHORITY_HOST": "https://login.example.com/tenant"}, "AZURE_AUTHORITY_HOST must be only"),
])
def test_bad_workload_identity_settings_are_refused_offline(entra, token_file, over, needle):
    res = run_driver(wi_env(entra, token_file, **over), "--check")
    assert res.returncode == 2, res
    assert needle in res.stderr, res.stderr
    assert entra.requests() == []


def test_missing_or_empty_token_file(entra, token_file, tmp_path):
    res = run_driver(wi_env(entra, token_file, AZURE_FEDERATED_TOKEN_FILE=tmp_path / "nope"))
    assert res.returncode == 1 and "AZURE_FEDERATED_TOKEN_FILE: cannot read" in res.stderr, res
    empty = tmp_path / "empty"
    empty.write_text("\n")
    res = run_driver(wi_env(entra, token_file, AZURE_FEDERATED_TOKEN_FILE=empty))
    assert res.returncode == 1 and "does not hold a token" in res.stderr, res
    assert entra.requests() == []


def test_server_reads_the_database_url_with_workload_identity(pg, server, start_server,
                                                              entra, token_file):
    # `server` has migrated the shared database; the stand-in hands out its URL.
    entra.secret_value = pg.url
    env = wi_env(entra, token_file)
    srv = start_server(PAYTRACKR_DATABASE_URL=None, PAYTRACKR_MIGRATE="off",
                       **{k: env[k] for k in env if k.startswith(("AZURE_", "PAYTRACKR_"))})
    assert srv.api.post("/v1/payments", payment_body()).status == 201
    routes = [r["route"] for r in entra.requests()]
    assert "entra" in routes and "vault" in routes and "imds" not in routes, routes
    assert entra.token not in srv.stderr_text()
    srv.stop()
