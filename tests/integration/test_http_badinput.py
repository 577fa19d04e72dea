"""Hostile and malformed input: refused with the right error, nothing
written, nothing crashed; odd but valid text stored verbatim."""

import json
import uuid

import pytest

from harness import (
    assert_error, create_payment, db_unchanged, parse_raw_response, payment_body, raw_exchange,
    OPERATOR_TOKEN,
)

MALFORMED = (400, "malformed_json", None)


def V(field):
    return (422, "validation_failed", field)


def _raw_body(fields):
    """A create body from a fresh valid one, with `fields` mapping a name to
    the raw JSON text (bytes) of its value, or None to drop the member."""
    base = payment_body()
    parts = []
    for k, v in base.items():
        if k not in fields:
            parts.append(json.dumps(k).encode() + b":" + json.dumps(v).encode())
    for k, lit in fields.items():
        if lit is not None:
            parts.append(json.dumps(k).encode() + b":" + lit)
    return b"{" + b",".join(parts) + b"}"


def _check(resp, expected):
    choices = expected if isinstance(expected, list) else [expected]
    failures = []
    for status, code, field in choices:
        try:
            prefix = field is not None and field.endswith("*")
            assert_error(resp, status, code, None if prefix else field)
            if prefix:
                got = resp.json["error"].get("field") or ""
                assert got.startswith(field[:-1]), "field %r does not start with %r" % (got, field[:-1])
            return
        except AssertionError as exc:
            failures.append(str(exc))
    raise AssertionError("; ".join(failures))


def _j(value):
    return json.dumps(value).encode()


CREATE_CASES = [
    # JSON syntax
    ("truncated", None, MALFORMED),
    ("empty", b"", MALFORMED),
    ("not-json", b"not json", MALFORMED),
    ("trailing-garbage", b"TRAILING", MALFORMED),
    ("single-quotes", b"{'amount': 1}", MALFORMED),
    ("trailing-comma", b"{\"amount\": 1,}", MALFORMED),
    ("bare-string-top", b"\"str\"", [MALFORMED, V(None)]),
    ("array-top", b"[]", [MALFORMED, V(None)]),
    ("null-top", b"null", [MALFORMED, V(None)]),
    ("number-top", b"123", [MALFORMED, V(None)]),
    ("duplicate-key", {"amount": b"5, \"amount\": 6"}, [MALFORMED, V("amount")]),
    ("deep-nesting", {"metadata": b"[" * 30000 + b"]" * 30000}, [MALFORMED, V("metadata*")]),
    ("deep-object", {"metadata": b"{\"a\":" * 10000 + b"1" + b"}" * 10000}, [MALFORMED, V("metadata*")]),
    # invalid UTF-8 and raw control bytes inside strings
    ("utf8-ff", {"payer": b"\"ab\xff\xfe\""}, MALFORMED),
    ("utf8-overlong", {"payer": b"\"\xc0\xaf\""}, MALFORMED),
    ("utf8-surrogate", {"payer": b"\"\xed\xa0\x80\""}, MALFORMED),
    ("utf8-truncated", {"payer": b"\"x\xe2\x82\""}, MALFORMED),
    ("utf8-beyond-10ffff", {"payer": b"\"\xf4\x90\x80\x80\""}, MALFORMED),
    ("literal-newline", {"payer": b"\"a\nb\""}, MALFORMED),
    ("literal-0x01", {"payer": b"\"a\x01b\""}, MALFORMED),
    ("lone-surrogate-escape", {"payer": b"\"a\\ud800b\""}, [MALFORMED, V("payer")]),
    ("nul-escape", {"payer": b"\"a\\u0000b\""}, [MALFORMED, V("payer")]),
    # control characters, escaped
    ("ctl-0001", {"payer": _j("a\u0001b")}, V("payer")),
    ("ctl-001f", {"payee": _j("a\u001fb")}, V("payee")),
    ("ctl-tab", {"payer": _j("a\tb")}, V("payer")),
    ("ctl-newline", {"payee": _j("a\nb")}, V("payee")),
    ("ctl-del", {"payer": _j("a\u007fb")}, V("payer")),
    ("ctl-c1", {"payer": _j("a\u0085b")}, V("payer")),
    ("ctl-c1-9f", {"payee": _j("a\u009fb")}, V("payee")),
    # amount
    ("amount-string", {"amount": b"\"100\""}, V("amount")),
    ("amount-true", {"amount": b"true"}, V("amount")),
    ("amount-null", {"amount": b"null"}, V("amount")),
    ("amount-array", {"amount": b"[1]"}, V("amount")),
    ("amount-object", {"amount": b"{}"}, V("amount")),
    ("amount-missing", {"amount": None}, V("amount")),
    ("amount-12.5", {"amount": b"12.5"}, V("amount")),
    ("amount-12.0", {"amount": b"12.0"}, V("amount")),
    ("amount-1e3", {"amount": b"1e3"}, V("amount")),
    ("amount-1E3", {"amount": b"1E3"}, V("amount")),
    ("amount-1.0e2", {"amount": b"1.0e2"}, V("amount")),
    ("amount-1e400", {"amount": b"1e400"}, V("amount")),
    ("amount-1e-400", {"amount": b"1e-400"}, V("amount")),
    ("amount-10e30", {"amount": str(10 ** 30).encode()}, V("amount")),
    ("amount-max+1", {"amount": b"1000000000000000"}, V("amount")),
    ("amount-2^63", {"amount": b"9223372036854775808"}, V("amount")),
    ("amount-2^64+1", {"amount": b"18446744073709551617"}, V("amount")),
    ("amount-2^64+1000000", {"amount": b"18446744073710551616"}, V("amount")),
    ("amount-zero", {"amount": b"0"}, V("amount")),
    ("amount-minus-zero", {"amount": b"-0"}, V("amount")),
    ("amount-negative", {"amount": b"-5"}, V("amount")),
    ("amount-min-int64", {"amount": b"-9223372036854775808"}, V("amount")),
    ("amount-leading-zero", {"amount": b"0100"}, [MALFORMED, V("amount")]),
    ("amount-hex", {"amount": b"0x10"}, MALFORMED),
    ("amount-nan", {"amount": b"NaN"}, MALFORMED),
    ("amount-infinity", {"amount": b"Infinity"}, MALFORMED),
    ("amount-plus", {"amount": b"+5"}, MALFORMED),
    # currency
    ("currency-number", {"currency": b"978"}, V("currency")),
    ("currency-null", {"currency": b"null"}, V("currency")),
    ("currency-missing", {"currency": None}, V("currency")),
    ("currency-lower", {"currency": b"\"eur\""}, V("currency")),
    ("currency-mixed", {"currency": b"\"Eur\""}, V("currency")),
    ("currency-unknown", {"currency": b"\"XYZ\""}, V("currency")),
    ("currency-withdrawn-DEM", {"currency": b"\"DEM\""}, V("currency")),
    ("currency-withdrawn-FRF", {"currency": b"\"FRF\""}, V("currency")),
    ("currency-withdrawn-HRK", {"currency": b"\"HRK\""}, V("currency")),
    ("currency-long", {"currency": b"\"EURO\""}, V("currency")),
    ("currency-short", {"currency": b"\"EU\""}, V("currency")),
    ("currency-empty", {"currency": b"\"\""}, V("currency")),
    ("currency-space", {"currency": b"\" EUR\""}, V("currency")),
    # payer / payee
    ("payer-number", {"payer": b"5"}, V("payer")),
    ("payer-null", {"payer": b"null"}, V("payer")),
    ("payer-array", {"payer": b"[\"a\"]"}, V("payer")),
    ("payer-missing", {"payer": None}, V("payer")),
    ("payer-empty", {"payer": b"\"\""}, V("payer")),
    ("payer-201-ascii", {"payer": _j("a" * 201)}, V("payer")),
    ("payer-201-2byte", {"payer": _j("\u00e9" * 201)}, V("payer")),
    ("payer-201-emoji", {"payer": _j("\U0001F600" * 201)}, V("payer")),
    ("payee-number", {"payee": b"1.5"}, V("payee")),
    ("payee-object", {"payee": b"{}"}, V("payee")),
    ("payee-missing", {"payee": None}, V("payee")),
    ("payee-empty", {"payee": b"\"\""}, V("payee")),
    ("payee-201-3byte", {"payee": _j("\u20ac" * 201)}, V("payee")),
    # reference / description
    ("reference-number", {"reference": b"7"}, V("reference")),
    ("reference-object", {"reference": b"{}"}, V("reference")),
    ("reference-101", {"reference": _j("r" * 101)}, V("reference")),
    ("reference-101-multibyte", {"reference": _j("\u00fc" * 101)}, V("reference")),
    ("description-number", {"description": b"1"}, V("description")),
    ("description-array", {"description": b"[]"}, V("description")),
    ("description-1001", {"description": _j("d" * 1001)}, V("description")),
    # method / status
    ("method-number", {"method": b"1"}, V("method")),
    ("method-unknown", {"method": b"\"paypal\""}, V("method")),
    ("method-upper", {"method": b"\"CARD\""}, V("method")),
    ("method-empty", {"method": b"\"\""}, V("method")),
    ("status-number", {"status": b"1"}, V("status")),
    ("status-unknown", {"status": b"\"bogus\""}, V("status")),
    ("status-upper", {"status": b"\"PENDING\""}, V("status")),
    # metadata
    ("metadata-string", {"metadata": b"\"x\""}, V("metadata*")),
    ("metadata-array", {"metadata": b"[]"}, V("metadata*")),
    ("metadata-number", {"metadata": b"1"}, V("metadata*")),
    ("metadata-21-keys", {"metadata": _j({"k%d" % i: "v" for i in range(21)})}, V("metadata*")),
    ("metadata-key-41", {"metadata": _j({"k" * 41: "v"})}, V("metadata*")),
    ("metadata-key-41-multibyte", {"metadata": _j({"\u00e4" * 41: "v"})}, V("metadata*")),
    ("metadata-value-501", {"metadata": _j({"k": "v" * 501})}, V("metadata*")),
    ("metadata-value-int", {"metadata": b"{\"a\": 1}"}, V("metadata*")),
    ("metadata-value-null", {"metadata": b"{\"a\": null}"}, V("metadata*")),
    ("metadata-value-object", {"metadata": b"{\"a\": {}}"}, V("metadata*")),
    ("metadata-value-array", {"metadata": b"{\"a\": [\"x\"]}"}, V("metadata*")),
    ("metadata-value-bool", {"metadata": b"{\"a\": true}"}, V("metadata*")),
    # unknown and server-owned fields
    ("unknown-foo", {"foo": b"1"}, V("foo")),
    ("unknown-Amount", {"Amount": b"1"}, V("Amount")),
    ("unknown-deleted_at", {"deleted_at": b"null"}, V("deleted_at")),
    ("owned-id", {"id": _j(str(uuid.uuid4()))}, V("id")),
    ("owned-version", {"version": b"1"}, V("version")),
    ("owned-created_at", {"created_at": b"\"2026-11-24T12:00:00.123Z\""}, V("created_at")),
    ("owned-updated_at", {"updated_at": b"\"2026-11-24T12:00:00.123Z\""}, V("updated_at")),
]


def _case_body(spec, name):
    if name == "truncated":
        full = json.dumps(payment_body()).encode()
        return full[:len(full) // 2]
    if name == "trailing-garbage":
        return json.dumps(payment_body()).encode() + b" x"
    if isinstance(spec, dict):
        return _raw_body(spec)
    return spec


@pytest.mark.parametrize("name,spec,expected", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_bad_create_is_refused_and_writes_nothing(api, pg, name, spec, expected):
    raw = _case_body(spec, name)
    with db_unchanged(pg):
        r = api.post("/v1/payments", raw=raw)
    _check(r, expected)


@pytest.fixture
def target(api):
    return create_payment(api, reference="patch-target", metadata={"k": "v"})


PATCH_CASES = [c for c in CREATE_CASES
               if not c[0].endswith("-missing") and c[0] not in ("truncated", "trailing-garbage")
               and not c[0].startswith("status-")]
PATCH_CASES += [
    ("status-number", {"status": b"1"}, V("status")),
    ("status-unknown", {"status": b"\"bogus\""}, V("status")),
    ("method-null", {"method": b"null"}, V("method")),
    ("status-null", {"status": b"null"}, V("status")),
]


def _patch_raw(spec):
    if not isinstance(spec, dict):
        return spec
    parts = [json.dumps(k).encode() + b":" + lit for k, lit in spec.items() if lit is not None]
    return b"{" + b",".join(parts) + b"}"


@pytest.mark.parametrize("name,spec,expected", PATCH_CASES, ids=["patch-" + c[0] for c in PATCH_CASES])
def test_bad_patch_is_refused_and_changes_nothing(api, pg, target, name, spec, expected):
    raw = _patch_raw(spec)
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % target["id"], raw=raw)
    _check(r, expected)
    assert api.get("/v1/payments/%s" % target["id"]).json == target


# --------------------------------------------------------------- accepted edge values

VERBATIM = [
    "' OR 1=1 --",
    "'; DROP TABLE payments; --",
    "Robert'); DELETE FROM payment_events;--",
    "back\\slash \\\\ double",
    "\"double quotes\" and 'single'",
    "percent % under_score",
    "emoji \U0001F4B8\U0001F600 and \u00e9\u00e8 \u4e2d\u6587 \u0645\u0631\u062d\u0628\u0627",
    "$1 $$ E'\\x00' {} [] <script>alert(1)</script>",
    "zero\u200bwidth \ufeffbom",
]


@pytest.mark.parametrize("text", VERBATIM, ids=["verbatim-%d" % i for i in range(len(VERBATIM))])
def test_special_text_stored_verbatim(api, pg, text):
    body = payment_body(payer=text, payee=text + " payee", reference=text[:100],
                        description=text + " description", metadata={text[:40]: text, "plain": text})
    r = api.post("/v1/payments", body)
    assert r.status == 201, r
    p = r.json
    for k, v in body.items():
        assert p[k] == v, k
    got = api.get("/v1/payments/%s" % p["id"]).json
    assert got == p
    assert pg.scalar("SELECT payer FROM payments WHERE id = '%s'" % p["id"]) == text
    # and PATCH stores it just as verbatim
    r = api.patch("/v1/payments/%s" % p["id"], {"description": text, "reference": text[::-1][:100]})
    assert r.status == 200, r
    assert r.json["description"] == text and r.json["reference"] == text[::-1][:100]


def test_description_may_span_lines(api):
    # only payer and payee are restricted to text without control characters
    text = "line one\nline two\r\n\tindented"
    r = api.post("/v1/payments", payment_body(description=text))
    assert r.status == 201, r
    assert r.json["description"] == text
    assert api.get("/v1/payments/%s" % r.json["id"]).json["description"] == text


@pytest.mark.parametrize("field,value", [
    ("payer", "a" * 200), ("payer", "\u00e9" * 200), ("payer", "\U0001F600" * 200),
    ("payee", "\u20ac" * 200), ("reference", "r" * 100), ("reference", "\u00fc" * 100),
    ("description", "d" * 1000), ("description", "\U0001F600" * 1000),
    ("amount", 1), ("amount", 999999999999999),
    ("currency", "JPY"), ("currency", "KWD"), ("currency", "USD"), ("currency", "CHF"),
    ("method", "card"), ("method", "bank_transfer"), ("method", "cash"), ("method", "wallet"),
    ("method", "other"), ("status", "pending"), ("reference", None), ("description", None),
    ("metadata", {}), ("metadata", {"k%02d" % i: "v" * 500 for i in range(20)}),
    ("metadata", {"k" * 40: "v"}), ("metadata", {"\u00e4" * 40: "\u00f6" * 500}),
])
def test_boundary_values_accepted(api, field, value):
    body = payment_body(**{field: value})
    r = api.post("/v1/payments", body)
    assert r.status == 201, r
    assert r.json[field] == value
    assert api.get("/v1/payments/%s" % r.json["id"]).json[field] == value


def test_unicode_escapes_are_decoded(api):
    tag = uuid.uuid4().hex[:8]
    raw = ('{"amount":5,"currency":"EUR","payer":"Caf\\u00e9 %s","payee":"\\ud83d\\ude00 %s"}'
           % (tag, tag)).encode()
    r = api.post("/v1/payments", raw=raw)
    assert r.status == 201, r
    assert r.json["payer"] == "Caf\u00e9 " + tag
    assert r.json["payee"] == "\U0001F600 " + tag


def test_amount_exact_beyond_double_precision(api):
    r = api.post("/v1/payments", raw=_raw_body({"amount": b"999999999999999"}))
    assert r.status == 201
    assert b"999999999999999" in r.raw
    r2 = api.post("/v1/payments", raw=_raw_body({"amount": b"900719925474099"}))
    assert r2.json["amount"] == 900719925474099


# --------------------------------------------------------------- size limits

def _padded(size):
    """A valid create body of exactly `size` bytes (white space padding)."""
    body = json.dumps(payment_body()).encode()
    assert len(body) < size
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_of_exactly_64_kib_is_accepted(api):
    raw = _padded(64 * 1024)
    assert len(raw) == 65536
    r = api.post("/v1/payments", raw=raw)
    assert r.status == 201, r


@pytest.mark.parametrize("size", [64 * 1024 + 1, 200 * 1024, 4 * 1024 * 1024])
def test_body_over_64_kib_is_413(api, pg, size):
    raw = _padded(size)
    with db_unchanged(pg):
        resp = raw_exchange(api.host, api.port,
                            b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                            + OPERATOR_TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                            b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    status, headers, body, _ = parse_raw_response(resp)
    assert status == 413, resp[:500]
    assert body and body.get("error", {}).get("code") == "payload_too_large", resp[:500]


def test_oversized_patch_is_413(api, pg, target):
    raw = b"{\"description\": \"x\"" + b" " * (64 * 1024) + b"}"
    with db_unchanged(pg):
        r = api.patch("/v1/payments/%s" % target["id"], raw=raw)
    assert_error(r, 413, "payload_too_large")


def test_chunked_body_over_64_kib_is_refused(api, pg):
    raw = _padded(100 * 1024)
    chunks = [raw[i:i + 8192] for i in range(0, len(raw), 8192)]
    conn = api.connection()
    with db_unchanged(pg):
        try:
            conn.putrequest("POST", "/v1/payments")
            conn.putheader("Authorization", "Bearer " + OPERATOR_TOKEN)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for c in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(c), c))
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = conn.getresponse()
            status = resp.status
            data = resp.read()
        finally:
            conn.close()
    assert status in (413, 411, 400), (status, data[:300])
    if status == 413:
        assert json.loads(data)["error"]["code"] == "payload_too_large"


@pytest.mark.xfail(strict=True, reason="libwebsockets 4.1.6 closes the connection when headers "
                   "overflow its buffer and offers no hook to answer 431 first; tracked in the "
                   "limits issue (#4)")
def test_headers_over_16_kib_are_431(api, pg):
    with db_unchanged(pg):
        resp = raw_exchange(api.host, api.port,
                            b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                            + OPERATOR_TOKEN.encode() + b"\r\nX-Pad: " + b"a" * (20 * 1024)
                            + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    status, _, _, _ = parse_raw_response(resp)
    assert status == 431, resp[:300]


def test_content_length_larger_than_body_does_not_write(api, pg):
    raw = json.dumps(payment_body()).encode()
    with db_unchanged(pg):
        resp = raw_exchange(api.host, api.port,
                            b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                            + OPERATOR_TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                            b"Content-Length: " + str(len(raw) + 50).encode() + b"\r\nConnection: close\r\n\r\n"
                            + raw, timeout=3.0)
    status, _, _, _ = parse_raw_response(resp)
    assert status in (None, 400, 408), resp[:300]


def test_server_survives_garbage_requests(api):
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET /v1/payments HTTP/9.9\r\n\r\n",
                 b"GET " + b"/a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"PATCH /v1/payments/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                 b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"):
        try:
            raw_exchange(api.host, api.port, junk, timeout=3.0)
        except OSError:
            pass
    assert api.get("/v1/payments?limit=1").status == 200
