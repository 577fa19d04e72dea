"""paytrackr-tui over wss:// against the real server serving TLS: it verifies
the server's certificate against --ca-file (else the system's CAs) and the
certificate's names against the host it connects to."""

import http.client
import json
import uuid

import pytest

from harness import OPERATOR_TOKEN, payment_body
from tls_helpers import CertAuthority, client_context
from tui_helpers import tui_factory  # noqa: F401

# What the status bar shows (after "last error: "): OpenSSL's reason in the
# middle. The pane is wide enough for the whole line.
CERT_MESSAGE = "TLS: certificate refused: %s (--ca-file for a private CA)"
WIDE = 200


@pytest.fixture(scope="module")
def ca():
    authority = CertAuthority(name="paytrackr TUI test CA")
    yield authority
    authority.destroy()


@pytest.fixture(scope="module")
def tls_server(start_server, ca):
    cert, key = ca.issue("tui-tls", 2001)  # DNS:localhost, IP:127.0.0.1
    return start_server(PAYTRACKR_TLS_CERT=cert, PAYTRACKR_TLS_KEY=key)


@pytest.fixture(scope="module")
def other_host_server(start_server, ca):
    cert, key = ca.issue("other-host", 2002, cn="other.example", sans=("DNS:other.example",))
    return start_server(PAYTRACKR_TLS_CERT=cert, PAYTRACKR_TLS_KEY=key)


def wss(srv, host="127.0.0.1"):
    return "wss://%s:%d" % (host, srv.port)


def create_over_https(srv, ca, body):
    conn = http.client.HTTPSConnection("localhost", srv.port, context=client_context(ca.cert),
                                       timeout=15)
    try:
        conn.request("POST", "/v1/payments", body=json.dumps(body),
                     headers={"Authorization": "Bearer " + OPERATOR_TOKEN,
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read()
        assert r.status == 201, (r.status, text)
        return json.loads(text)
    finally:
        conn.close()


def refused_for_its_certificate(tui, reason):
    """Waits for the TUI to show why it refused the certificate, and checks
    that it never got LIVE."""
    screen = tui.wait_for(CERT_MESSAGE % reason, timeout=15)
    bar = tui.status_bar()
    assert "OFFLINE" in bar or "CONNECTING" in bar, screen
    assert "LIVE" not in bar, screen
    return screen


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tui_with_the_ca_goes_live_and_shows_a_payment(tls_server, ca, tui_factory, host):
    t = tui_factory(wss(tls_server, host), args=("--ca-file", str(ca.cert)))
    t.wait_for("LIVE", timeout=15)
    payer = "tlspayer-" + uuid.uuid4().hex[:8]
    create_over_https(tls_server, ca, payment_body(payer=payer, amount=1234, currency="EUR"))
    line = t.wait_for(payer) and t.line_with(payer)
    assert "12.34" in line and "EUR" in line, line
    assert "certificate refused" not in t.screen()


def test_tui_without_the_ca_refuses_the_certificate(tls_server, tui_factory):
    # the system's CAs do not know the test CA
    t = tui_factory(wss(tls_server), cols=WIDE)
    refused_for_its_certificate(t, "unable to get local issuer certificate")


@pytest.mark.parametrize("host, reason", [("127.0.0.1", "IP address mismatch"),
                                          ("localhost", "hostname mismatch")])
def test_tui_refuses_a_certificate_for_another_host(other_host_server, ca, tui_factory, host,
                                                    reason):
    # signed by the trusted CA, but names only other.example
    t = tui_factory(wss(other_host_server, host), args=("--ca-file", str(ca.cert)), cols=WIDE)
    refused_for_its_certificate(t, reason)
