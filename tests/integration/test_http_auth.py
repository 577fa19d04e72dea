"""Bearer tokens, roles, auth off."""

import uuid

import pytest

from harness import (
    assert_error, create_payment, db_unchanged, payment_body, sha256_hex, OPERATOR_TOKEN, VIEWER_TOKEN,
)


def _assert_401(r):
    assert_error(r, 401, "unauthenticated")
    assert r.headers.get("www-authenticate", "").split(" ")[0].lower() == "bearer", r.headers


def _routes(pid):
    return [
        ("GET", "/v1/payments", None),
        ("GET", "/v1/payments/%s" % pid, None),
        ("GET", "/v1/payments/%s/events" % pid, None),
        ("GET", "/v1/events", None),
        ("GET", "/v1/stats", None),
        ("GET", "/v1/openapi.json", None),
        ("POST", "/v1/payments", payment_body()),
        ("PATCH", "/v1/payments/%s" % pid, {"description": "x"}),
        ("DELETE", "/v1/payments/%s" % pid, None),
        ("GET", "/v1/me", None),
        ("GET", "/v1/payments/%s/refunds" % pid, None),
        ("POST", "/v1/payments/%s/refunds" % pid, {"amount": 1}),
        ("GET", "/v1/payments/export.csv", None),
    ]


def test_no_token_is_401_everywhere(api, pg):
    p = create_payment(api)
    with db_unchanged(pg):
        for method, path, body in _routes(p["id"]):
            _assert_401(api.request(method, path, body, token=None))
    assert api.get("/v1/payments/%s" % p["id"]).json == p


@pytest.mark.parametrize("authz", ["Bearer wrong-token", "Bearer ", "Bearer", "Basic b3AtdG9rZW46",
                                   OPERATOR_TOKEN, "Bearer " + sha256_hex(OPERATOR_TOKEN),
                                   "Bearer op-token-x", "Bearer op-toke", "Token op-token",
                                   "Bearer " + "a" * 4000])
def test_bad_credentials_are_401(api, pg, authz):
    p = create_payment(api)
    with db_unchanged(pg):
        for method, path, body in _routes(p["id"]):
            r = api.request(method, path, body, token=None, headers={"Authorization": authz})
            _assert_401(r)


def test_viewer_reads(api):
    p = create_payment(api)
    for method, path, body in [r for r in _routes(p["id"]) if r[0] == "GET"]:
        r = api.request(method, path, body, token=VIEWER_TOKEN)
        assert r.status == 200, (path, r)


def test_viewer_cannot_write(api, pg):
    p = create_payment(api)
    with db_unchanged(pg):
        for method, path, body in [r for r in _routes(p["id"]) if r[0] != "GET"]:
            assert_error(api.request(method, path, body, token=VIEWER_TOKEN), 403, "forbidden")
    assert api.get("/v1/payments/%s" % p["id"]).json == p


def test_operator_writes(api):
    p = create_payment(api)
    assert api.patch("/v1/payments/%s" % p["id"], {"description": "x"}).status == 200
    assert api.delete("/v1/payments/%s" % p["id"]).status == 204


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_admin_probes_need_no_token(admin, path):
    assert admin.get(path).status == 200
    assert admin.get(path, headers={"Authorization": "Bearer nonsense"}).status == 200


def test_auth_off_treats_everyone_as_operator(start_server):
    srv = start_server(PAYTRACKR_AUTH="off", PAYTRACKR_TOKENS=None)
    api = srv.api
    r = api.post("/v1/payments", payment_body(), token=None)
    assert r.status == 201, r
    pid = r.json["id"]
    assert api.get("/v1/payments/%s" % pid, token=None).status == 200
    assert api.patch("/v1/payments/%s" % pid, {"description": "d"}, token=None).status == 200
    assert api.delete("/v1/payments/%s" % pid, token=None).status == 204
    srv.stop()
    srv.assert_clean()


def test_tokens_from_file_with_newlines(start_server, server_logdir):
    path = server_logdir / ("tokens-%s" % uuid.uuid4().hex)
    path.write_text("operator:%s\nviewer:%s\n" % (sha256_hex("file-op"), sha256_hex("file-view")))
    srv = start_server(PAYTRACKR_TOKENS=None, PAYTRACKR_TOKENS_FILE=str(path))
    api = srv.api
    r = api.post("/v1/payments", payment_body(), token="file-op")
    assert r.status == 201, r
    assert api.get("/v1/payments/%s" % r.json["id"], token="file-view").status == 200
    assert_error(api.post("/v1/payments", payment_body(), token="file-view"), 403, "forbidden")
    _assert_401(api.get("/v1/payments", token=OPERATOR_TOKEN))
    srv.stop()
    srv.assert_clean()
    for secret in ("file-op", "file-view"):
        assert secret not in srv.stderr_text() and secret not in srv.stdout_text()


def test_hash_token_command(server_factory):
    rc, out, _ = server_factory.run_to_exit(args=["hash-token"], stdin="op-token")
    assert rc == 0
    assert out.strip() == sha256_hex("op-token")
    rc, out, _ = server_factory.run_to_exit(args=["hash-token"], stdin="op-token\n")
    assert rc == 0
    assert out.strip() == sha256_hex("op-token")
