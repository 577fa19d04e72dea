"""The web dashboard (API.md "The web dashboard") in a real headless
Chromium against a real server and PostgreSQL: served files and their
headers, sign-in, the live table, the form, filters in the URL, status
change and refund, OFFLINE/LIVE with nothing missed, the viewer's page,
keyboard use, no console errors, and screenshots at both sizes."""

import json
import re
import subprocess
import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from harness import OPERATOR_TOKEN, VIEWER_TOKEN, create_payment, etag_of, unique, wait_until
from web_helpers import KEYS, Browser

# The page asks /v1/me who it is before it has a token: with auth required
# the answer is 401, which Chromium logs as a failed load. Nothing else may
# reach the console.
FIRST_PROBE = "/v1/me - Failed to load resource: the server responded with a status of 401"


@pytest.fixture(scope="module")
def web(start_server):
    return start_server()


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def page(browser):
    """The browser on a fresh tab state; fails the test on console errors."""
    browser.size(1280, 800)
    browser.clear_log()
    yield browser
    errors = browser.errors(allow=(FIRST_PROBE,))
    assert not errors, "console errors:\n" + "\n".join(e["message"] for e in errors)


def app_url(srv, query=""):
    return "http://127.0.0.1:%d/app/%s" % (srv.port, query)


def sign_in(b, srv, token=OPERATOR_TOKEN, query=""):
    b.new_tab()  # sessionStorage belongs to a tab: a new one starts signed out
    b.open(app_url(srv, query))
    field = b.wait(lambda: b.find_by_label("Token"), message="the Token field")
    field.send_keys(token + KEYS.ENTER)
    b.wait(lambda: b.conn_state() == "LIVE", 10, "LIVE")
    b.wait(lambda: b.js("return !document.querySelector('#table').hasAttribute('aria-busy')"),
           message="the first page")


def curl_create(srv, **body):
    subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-X", "POST",
                    "http://127.0.0.1:%d/v1/payments" % srv.port,
                    "-H", "Authorization: Bearer " + OPERATOR_TOKEN,
                    "-H", "Content-Type: application/json", "-d", json.dumps(body)],
                   check=True, timeout=10)


# ---------------------------------------------------------------- served files

def test_files_and_headers(web):
    api = web.api
    r = api.get("/", token=None)
    assert r.status == 302 and r.headers["location"] == "/app/", r
    r = api.get("/app", token=None)
    assert r.status == 302 and r.headers["location"] == "/app/", r
    for path, ctype in (("/app/", "text/html"), ("/app/app.js", "text/javascript"),
                        ("/app/app.css", "text/css"), ("/app/currencies.js", "text/javascript"),
                        ("/app/favicon.svg", "image/svg+xml")):
        r = api.get(path, token=None)
        assert r.status == 200, (path, r)
        h = r.headers
        assert h["content-type"].startswith(ctype), (path, h)
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert "connect-src 'self'" in csp, csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert re.fullmatch(r'"[0-9a-f]{20}"', h["etag"]), h
        again = api.get(path, token=None, headers={"If-None-Match": h["etag"]})
        assert again.status == 304 and again.raw == b"" and again.headers["etag"] == h["etag"], again
        other = api.get(path, token=None, headers={"If-None-Match": '"0000"'})
        assert other.status == 200 and other.raw == r.raw
    missing = api.get("/app/nope.js", token=None)
    assert missing.status == 404 and missing.json["error"]["code"] == "not_found"
    assert "default-src 'self'" in missing.headers["content-security-policy"]
    assert api.post("/app/", raw=b"x", token=None).status == 405
    head = api.request("HEAD", "/app/app.js", token=None)
    assert head.status == 200 and head.raw == b"" and head.headers["etag"], head
    # the API itself still wants a token
    assert api.get("/v1/payments", token=None).status == 401
    # no inline script or style in the page
    html = api.get("/app/", token=None).raw.decode()
    assert "<script>" not in html and "style=" not in html and " on" not in re.sub(r"<[^>]*>", "", "")


def test_currency_table_comes_from_the_c_table(web):
    js = web.api.get("/app/currencies.js", token=None).raw.decode()
    table = dict(re.findall(r"(\w{3}): Object\.freeze\(\{ exponent: (\d)", js))
    assert table["EUR"] == "2" and table["JPY"] == "0" and table["KWD"] == "3" and table["CLF"] == "4"
    with open("common/currency.c", encoding="utf-8") as f:
        c_codes = re.findall(r'^\s*\{"([A-Z]{3})", (\d)', f.read(), re.M)
    assert dict(c_codes) == table


# ---------------------------------------------------------------- the page

def test_lists_existing_and_shows_new_ones_live(web, page):
    existing = [create_payment(web.api, payer=unique("exist"), amount=125000 + i) for i in range(3)]
    sign_in(page, web)
    for p in existing:
        page.wait_text(p["payer"], "#rows")
    # newest first
    payers = page.row_payers()
    idx = [payers.index(p["payer"]) for p in existing]
    assert idx == sorted(idx, reverse=True), payers[:5]
    # the amount with the currency's exponent, right-aligned
    row = page.js("return [...document.querySelectorAll('#rows tr')].find(r => r.textContent.includes(arguments[0]))",
                  existing[0]["payer"])
    assert "1,250.00" in row.text and "EUR" in row.text
    assert page.js("return getComputedStyle(arguments[0].querySelector('.c-amount')).textAlign", row) == "right"

    live = unique("curl")
    curl_create(web, amount=4999, currency="JPY", payer=live, payee="Tokyo Supplies")
    page.wait(lambda: page.row_payers()[:1] == [live], 1.0, "the curl payment at the top within 1 s")
    row = page.js("return document.querySelector('#rows tr')")
    assert "4,999" in row.text and "JPY" in row.text
    assert "flash" in row.get_attribute("class")


def test_new_payment_form(web, page):
    sign_in(page, web)
    page.button("New payment").click()
    payer = unique("form")
    page.by_label("Payer").send_keys(payer)
    page.by_label("Payee").send_keys("Globex Ltd")
    page.js("arguments[0].value = 'EUR'", page.by_label("Currency"))
    page.by_label("Reference").send_keys("INV-77")
    page.by_label("Description").send_keys("typed in the browser")
    amount = page.by_label("Amount")
    for bad, why in (("12.5x", "enter a number"), ("1.234", "EUR takes at most 2 decimal places")):
        amount.clear()
        amount.send_keys(bad)
        page.button("Create payment").click()
        page.wait_text(why, "#new-form")
        assert amount.get_attribute("aria-invalid") == "true"
        assert web.api.get("/v1/payments?payer=" + payer).json["data"] == [], "sent despite %r" % bad
    amount.clear()
    amount.send_keys("12.50" + KEYS.ENTER)
    page.wait(lambda: not page.visible("#new-dialog"), message="the form closes")
    created = wait_until(lambda: web.api.get("/v1/payments?payer=" + payer).json["data"], 5,
                         message="the created payment")
    p = created[0]
    assert (p["amount"], p["currency"], p["payee"], p["reference"], p["description"]) == \
        (1250, "EUR", "Globex Ltd", "INV-77", "typed in the browser")
    page.wait(lambda: page.row_payers()[:1] == [payer], message="the new row on top")
    assert page.row_payers().count(payer) == 1


def test_server_error_is_shown_next_to_its_field(web, page):
    sign_in(page, web)
    page.button("New payment").click()
    page.by_label("Payer").send_keys("x" * 199 + "\u00e9\u00e9")  # 201 characters: the server refuses
    page.js("arguments[0].removeAttribute('maxlength')", page.by_label("Payer"))
    page.by_label("Payer").send_keys("\u00e9")
    page.by_label("Payee").send_keys("someone")
    page.by_label("Amount").send_keys("1.00" + KEYS.ENTER)
    page.wait(lambda: page.js("return document.querySelector('[data-field=payer] .field-error').textContent"),
              message="the server's error beside Payer")
    assert page.by_label("Payer").get_attribute("aria-invalid") == "true"
    page.type_keys(KEYS.ESCAPE)
    # the refused request is logged by the browser as a failed load: expected
    page.log = [e for e in page.read_log() if "/v1/payments - Failed to load resource: the server "
                "responded with a status of 422" not in e["message"]]


def test_filters_land_in_the_url_and_survive_a_reload(web, page):
    tag = unique("flt")
    create_payment(web.api, payer=tag + "-a", currency="USD", amount=1000, status="settled")
    create_payment(web.api, payer=tag + "-b", currency="USD", amount=99999)
    create_payment(web.api, payer=tag + "-c", currency="EUR", amount=1000, status="settled")
    sign_in(page, web)
    page.by_label("Search").send_keys(tag)
    page.js("arguments[0].value='settled'", page.by_label("Status"))
    page.js("arguments[0].value='USD'; arguments[0].dispatchEvent(new Event('change'))", page.by_label("Currency"))
    page.by_label("Max amount (USD)").send_keys("500.00" + KEYS.ENTER)
    page.wait(lambda: page.row_payers() == [tag + "-a"], message="only the matching payment")
    q = parse_qs(urlparse(page.url()).query)
    assert q == {"q": [tag], "status": ["settled"], "currency": ["USD"], "max_amount": ["50000"]}, q
    page.wait_text("1 payment", "#totals")
    assert "10.00" in page.text("#totals")
    page.driver.refresh()
    page.wait(lambda: page.conn_state() == "LIVE", 10, "LIVE after reload")
    page.wait(lambda: page.row_payers() == [tag + "-a"], message="the same view after reload")
    assert page.by_label("Search").get_attribute("value") == tag
    assert page.js("return document.getElementById('f-status').value") == "settled"
    assert page.by_label("Max amount (USD)").get_attribute("value") == "500.00"
    # a payment made elsewhere that matches appears; one that does not, does not
    create_payment(web.api, payer=tag + "-d", currency="USD", amount=200, status="settled")
    e = create_payment(web.api, payer=tag + "-e", currency="USD", amount=200)
    page.wait(lambda: page.row_payers() == [tag + "-d", tag + "-a"], message="the live match")
    page.wait_text("2 payments", "#totals")
    assert tag + "-e" not in page.text("#rows")
    # a change can make a payment match (or stop matching): it moves in or out, in order
    r = web.api.patch("/v1/payments/" + e["id"], {"status": "settled"}, headers={"If-Match": etag_of(1)})
    assert r.status == 200, r
    page.wait(lambda: page.row_payers() == [tag + "-e", tag + "-d", tag + "-a"], message="e settled")
    r = web.api.patch("/v1/payments/" + e["id"], {"status": "refunded"}, headers={"If-Match": etag_of(2)})
    assert r.status == 200, r
    page.wait(lambda: page.row_payers() == [tag + "-d", tag + "-a"], message="e refunded: out")
    page.wait_text("2 payments", "#totals")
    page.button("Clear").click()
    page.wait(lambda: urlparse(page.url()).query == "", message="a clean URL")


def open_row(page, payer):
    row = page.wait(lambda: page.js(
        "return [...document.querySelectorAll('#rows tr')].find(r => r.textContent.includes(arguments[0]))", payer),
        message="the row of " + payer)
    row.click()
    page.wait(lambda: page.visible("#detail .trail"), message="details with the audit trail")


def test_status_change_and_partial_refund(web, page):
    payer = unique("stat")
    p = create_payment(web.api, payer=payer, amount=1250, currency="EUR", metadata={"cost_center": "42"})
    sign_in(page, web)
    open_row(page, payer)
    detail = page.text("#detail")
    assert p["id"] in detail and "cost_center" in detail and "42" in detail
    options = page.js("return [...document.getElementById('d-status').options].map(o => o.value)")
    assert options == ["settled", "failed", "cancelled"]
    page.js("arguments[0].value = 'settled'", page.by_label("New status"))
    page.button("Change status").click()
    page.wait(lambda: web.api.get("/v1/payments/" + p["id"]).json["status"] == "settled", message="settled")
    page.wait(lambda: "Settled" in page.text("#rows") and payer in page.text("#rows"), message="the row settled")
    page.wait(lambda: page.find_button("Refund"), message="the refund form")
    options = page.js("return [...document.getElementById('d-status').options].map(o => o.value)")
    assert options == ["refunded"]
    amount = page.by_label("Refund amount (EUR)")
    assert amount.get_attribute("value") == "12.50"
    amount.clear()
    amount.send_keys("5.001")
    page.button("Refund").click()
    page.wait_text("EUR takes at most 2 decimal places", "#detail")
    amount = page.by_label("Refund amount (EUR)")
    amount.clear()
    amount.send_keys("5.00")
    page.by_label("Note").send_keys("partial, by the web test")
    page.button("Refund").click()
    page.wait(lambda: web.api.get("/v1/payments/" + p["id"]).json.get("amount_refunded") == 500,
              message="500 refunded")
    after = web.api.get("/v1/payments/" + p["id"]).json
    assert after["status"] == "settled"
    page.wait_text("partial, by the web test", "#detail")
    page.wait(lambda: (page.find_by_label("Refund amount (EUR)") or None)
              and page.find_by_label("Refund amount (EUR)").get_attribute("value") == "7.50",
              message="7.50 left to refund")
    trail = page.text("#detail .trail")
    assert trail.count("#") >= 3 and "by " in trail
    page.type_keys(KEYS.ESCAPE)
    page.wait(lambda: not page.visible("#detail"), message="details closed")


def test_delete_asks_first(web, page):
    payer = unique("del")
    p = create_payment(web.api, payer=payer)
    sign_in(page, web)
    open_row(page, payer)
    page.button("Delete…").click()
    page.wait(lambda: page.visible("#confirm-dialog"), message="the question")
    page.button("Keep it").click()
    assert web.api.get("/v1/payments/" + p["id"]).status == 200
    page.button("Delete…").click()
    page.button("Delete payment").click()
    page.wait(lambda: web.api.get("/v1/payments/" + p["id"]).status == 404, message="deleted")
    page.wait_no_text(payer, "#rows")


def test_viewer_sees_no_write_controls(web, page):
    payer = unique("view")
    create_payment(web.api, payer=payer, status="settled")
    sign_in(page, web, token=VIEWER_TOKEN)
    page.wait_text(payer, "#rows")
    assert page.find_button("New payment") is None
    page.type_keys("n")
    assert not page.visible("#new-dialog")
    open_row(page, payer)
    for name in ("Change status", "Refund", "Delete…"):
        assert page.find_button(name) is None, name
    assert "viewer" in page.text("#who")
    page.button("Export CSV")  # viewers may export


def test_auth_off_needs_no_sign_in(start_server, page):
    srv = start_server(PAYTRACKR_AUTH="off")
    payer = unique("open")
    create_payment(srv.api, payer=payer)
    page.new_tab()
    page.open(app_url(srv))
    page.wait(lambda: page.conn_state() == "LIVE", 10, "LIVE")
    page.wait_text(payer, "#rows")
    assert page.find_by_label("Token") is None
    assert page.text("#who") == "local · operator"
    assert page.find_button("Sign out") is None and page.find_button("New payment") is not None


def test_keyboard_alone(web, page):
    first, second = unique("key1"), unique("key2")
    create_payment(web.api, payer=first)
    create_payment(web.api, payer=second)
    sign_in(page, web)
    page.js("document.activeElement.blur()")
    page.type_keys("j")
    page.wait(lambda: page.js("return document.activeElement.matches('#rows tr')"), message="a row focused")
    assert page.js("return document.activeElement.textContent").find(second) >= 0
    page.type_keys("j")
    assert first in page.js("return document.activeElement.textContent")
    page.type_keys("k", KEYS.ENTER)
    page.wait(lambda: page.visible("#detail") and second in page.text("#detail"), message="details by Enter")
    page.type_keys(KEYS.ESCAPE)
    page.wait(lambda: not page.visible("#detail"), message="Esc closes")
    page.type_keys("?")
    page.wait(lambda: page.visible("#help-dialog"), message="help")
    page.type_keys(KEYS.ESCAPE)
    page.wait(lambda: not page.visible("#help-dialog"), message="help closed")
    page.type_keys("/")
    assert page.js("return document.activeElement.id") == "f-q"
    page.type_keys(KEYS.ESCAPE, "n")
    page.wait(lambda: page.visible("#new-dialog"), message="the form by n")
    assert page.js("return document.activeElement.id") == "n-payer"
    page.type_keys(KEYS.ESCAPE)
    page.wait(lambda: not page.visible("#new-dialog"), message="form closed")


def test_export_downloads_the_current_filter(web, page):
    tag = unique("csv")
    create_payment(web.api, payer=tag, currency="KWD", amount=12345)
    sign_in(page, web, query="?q=" + tag)
    page.wait(lambda: page.row_payers() == [tag], message="the filtered row")
    # the download is a blob fetched with the Authorization header: look at
    # what the page fetched rather than at the file system
    page.js("""
        window.__blobs = [];
        const orig = URL.createObjectURL;
        URL.createObjectURL = (b) => { window.__blobs.push(b); return orig(b); };""")
    page.button("Export CSV").click()
    page.wait(lambda: page.js("return window.__blobs.length"), 15, "the CSV blob")
    text = page.js("return await window.__blobs[0].text()") if False else page.driver.execute_async_script(
        "const done = arguments[0]; window.__blobs[0].text().then(done);")
    lines = text.strip().split("\r\n")
    assert lines[0].startswith("id,created_at"), lines[:2]
    assert len(lines) == 2 and tag in lines[1] and "12.345" in lines[1], lines


def test_offline_then_live_and_nothing_missed(start_server, page):
    first = start_server()
    port = first.port
    before = unique("before")
    create_payment(first.api, payer=before)
    sign_in(page, first)
    page.wait_text(before, "#rows")
    first.stop()
    page.wait(lambda: page.conn_state() == "OFFLINE", 10, "OFFLINE")
    other = start_server()
    meanwhile = [unique("meanwhile") for _ in range(3)]
    for payer in meanwhile:
        create_payment(other.api, payer=payer)
    assert page.conn_state() == "OFFLINE"
    start_server(PAYTRACKR_LISTEN="127.0.0.1:%d" % port)
    page.wait(lambda: page.conn_state() == "LIVE", 15, "LIVE again")
    for payer in meanwhile:
        page.wait_text(payer, "#rows")
    after = unique("after")
    create_payment(other.api, payer=after)
    page.wait_text(after, "#rows")
    payers = page.row_payers()
    for payer in meanwhile + [before, after]:
        assert payers.count(payer) == 1, (payer, payers[:10])
    assert payers.index(after) < payers.index(meanwhile[-1]) < payers.index(meanwhile[0]) < payers.index(before)
    # the browser reports the refused connections while the server was away;
    # those (and only those) are expected here
    page.log = [e for e in page.read_log() if "ERR_CONNECTION_REFUSED" not in e["message"]
                and "WebSocket connection to" not in e["message"]]


SAMPLES = (
    ("Northwind Traders", "Contoso Ltd", 89000, "EUR", "settled", "bank_transfer", "INV-2026-0031"),
    ("Fabrikam Inc", "Adventure Works", 1250000, "USD", "pending", "bank_transfer", "PO-55120"),
    ("Hanna Berg", "Café Lindqvist", 1845, "SEK", "settled", "card", None),
    ("Tailspin Toys", "Wide World Importers", 730000, "JPY", "pending", "wallet", "ORD-9912"),
    ("Gulf Trading", "Desert Logistics", 12345, "KWD", "failed", "wallet", "GT-0042"),
    ("Initech", "Chotchkie's", 2500, "GBP", "cancelled", "cash", None),
    ("ACME GmbH", "Globex Ltd", 125000, "EUR", "pending", "bank_transfer", "INV-2026-0042"),
    ("Jane Doe", "Corner Café", 4999, "USD", "settled", "card", "R-1187"),
)


def test_screenshots_at_both_sizes(start_server, own_db, page):
    # a database of its own, so that the pictures show these payments only
    web = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    jane = None
    for i, (payer, payee, amount, ccy, status, method, ref) in enumerate(SAMPLES):
        body = dict(payer=payer, payee=payee, amount=amount, currency=ccy, method=method,
                    reference=ref, metadata={"cost_center": str(40 + i)})
        p = create_payment(web.api, **body)
        if status != "pending":
            r = web.api.patch("/v1/payments/" + p["id"], {"status": status},
                              headers={"If-Match": etag_of(p["version"])})
            assert r.status == 200, r
        if payer == "Jane Doe":
            jane = p
    r = web.api.post("/v1/payments/%s/refunds" % jane["id"], {"amount": 1000, "reason": "requested_by_customer",
                                                             "note": "damaged item"})
    assert r.status == 201, r
    sign_in(page, web)
    page.wait_text("Jane Doe", "#rows")
    shot = page.screenshot("dashboard-1280x800.png")
    assert shot.stat().st_size > 10000
    open_row(page, "Jane Doe")
    page.wait_text("damaged item", "#detail")
    page.wait(lambda: page.visible("#detail .trail"), message="details with the audit trail")
    page.screenshot("detail-1280x800.png")
    page.type_keys(KEYS.ESCAPE)
    page.size(390, 844, mobile=True)
    page.wait(lambda: page.js("return document.documentElement.scrollWidth") <= 390, message="no sideways scroll")
    page.screenshot("dashboard-390x844.png")
    page.button("New payment").click()
    page.screenshot("new-payment-390x844.png")
    page.type_keys(KEYS.ESCAPE)
    page.size(1280, 800)


def test_pages_through_100000_payments_by_cursor(start_server, own_db, pg, page):
    srv = start_server(PAYTRACKR_DATABASE_URL=own_db["url"])
    # One statement with the per-row totals trigger off (it makes a bulk
    # insert crawl), then the totals it would have kept, in one bump.
    pg.psql("SET session_replication_role = replica; "
            "INSERT INTO payments (amount, currency, payer, payee, method, status, created_at, "
            "updated_at) SELECT g, 'EUR', 'bulk-' || lpad(g::text, 6, '0'), 'payee', 'other', "
            "'pending', now() - g * interval '1 second', now() FROM generate_series(1, 100000) g; "
            "SET session_replication_role = origin; "
            "SELECT paytrackr_totals_bump('EUR', 'pending', 100000, 5000050000, 0)",
            db=own_db["db"])
    sign_in(page, srv)
    page.wait_text("of 100,000", "#page-info", timeout=10)
    assert page.row_payers()[:2] == ["bulk-000001", "bulk-000002"]
    for n in range(2, 5):
        page.button("Next").click()
        page.wait(lambda: page.text("#page-info").startswith("Page %d " % n), message="page %d" % n)
    payers = page.row_payers()
    assert payers == ["bulk-%06d" % g for g in range(151, 201)], payers[:3]
    assert page.text("#page-info") == "Page 4 · 151–200 of 100,000"
    page.button("Previous").click()
    page.wait(lambda: page.row_payers()[0] == "bulk-000101", message="back to page 3")
    # every list request asked for one page, never for everything
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)"
                   ".filter(n => n.includes('/v1/payments?'))")
    pages = [u for u in urls if "limit=50" in u]
    assert len(pages) == 5 and pages == urls, urls
    page.button("Newest first").click()
    page.wait(lambda: page.row_payers()[:1] == ["bulk-100000"], message="the oldest first")
    assert "order=created_at.asc" in page.url() and page.find_button("Oldest first")
