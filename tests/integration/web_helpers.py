"""Drives the web dashboard in a real headless Chromium (Debian's
`chromium` and `chromium-driver`, through Debian's python3-selenium).

The browser never downloads anything: no component updates, no sync, no
QUIC, a fresh empty profile per session. Console messages (JavaScript
errors, CSP violations, failed loads) are collected so that tests can
assert there were none.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT, server_binary

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # reported by the fixture below
    webdriver = None


def screenshot_dir():
    path = server_binary().parent.parent / "web-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One Chromium with one tab; `errors()` returns console entries at
    level SEVERE since the last `clear_log()`."""

    def __init__(self):
        if webdriver is None or not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
            pytest.fail("the web tests need chromium, chromium-driver and python3-selenium "
                        "(scripts/install-deps.sh installs them)")
        self.profile = tempfile.mkdtemp(prefix="paytrackr-chromium-", dir="/tmp")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-quic", "--no-first-run",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--disable-dev-shm-usage", "--window-size=1280,800",
                    "--user-data-dir=" + self.profile):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.log = []
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(20)
        self.size(1280, 800)

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- viewport and pages
    def size(self, width, height, mobile=False):
        self.viewport = (width, height, mobile)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def new_tab(self):
        """Replaces the tab with a fresh one (empty sessionStorage)."""
        self.read_log()
        old = self.driver.window_handles
        self.driver.switch_to.new_window("tab")
        fresh = self.driver.current_window_handle
        for h in old:
            self.driver.switch_to.window(h)
            self.driver.close()
        self.driver.switch_to.window(fresh)
        self.size(*self.viewport)  # emulation belongs to a tab too

    def open(self, url):
        self.driver.get(url)

    def url(self):
        return self.driver.current_url

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name):
        """A PNG of the emulated viewport, written to the build folder."""
        import base64
        path = screenshot_dir() / name
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    # -- console
    def read_log(self):
        self.log.extend(self.driver.get_log("browser"))
        return self.log

    def clear_log(self):
        self.read_log()
        self.log = []

    def errors(self, allow=()):
        """SEVERE console entries, minus those containing any of `allow`."""
        return [e for e in self.read_log()
                if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow)]

    # -- finding things the way a person (or a screen reader) does
    def by_label(self, label):
        """The visible form control whose <label> text is exactly `label`."""
        el = self.find_by_label(label)
        assert el is not None, "no visible field labelled %r" % label
        return el

    def find_by_label(self, label):
        return self.js("""
            const want = arguments[0];
            for (const l of document.querySelectorAll('label')) {
              const own = [...l.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
              if ((own === want || l.textContent.trim() === want) && l.control && l.control.checkVisibility())
                return l.control;
            }
            return null;""", label)

    def button(self, name):
        """The visible button whose accessible name (aria-label or text) is `name`."""
        el = self.find_button(name)
        assert el is not None, "no visible button named %r" % name
        # clear of the sticky top bar, as a person would scroll to it
        self.js("arguments[0].scrollIntoView({block: 'center'})", el)
        return el

    def find_button(self, name):
        return self.js("""
            for (const b of document.querySelectorAll('button')) {
              const n = (b.getAttribute('aria-label') || b.textContent).trim();
              if (n === arguments[0] && b.checkVisibility()) return b;
            }
            return null;""", name)

    def text(self, css="body"):
        try:
            return self.driver.find_element(By.CSS_SELECTOR, css).text
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def visible(self, css):
        return bool(self.js("const e = document.querySelector(arguments[0]); "
                            "return !!e && e.checkVisibility();", css))

    def wait(self, predicate, timeout=5.0, message="condition"):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except (StaleElementReferenceException, NoSuchElementException, WebDriverException) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %.1fs waiting for %s (last error %r); page text:\n%s"
                                     % (timeout, message, last, self.summary()))
            time.sleep(0.03)

    def wait_text(self, needle, css="body", timeout=5.0):
        return self.wait(lambda: needle in self.text(css), timeout, "%r in %s" % (needle, css))

    def wait_no_text(self, needle, css="body", timeout=5.0):
        return self.wait(lambda: needle not in self.text(css), timeout, "%r gone from %s" % (needle, css))

    def summary(self):
        """What a person would glance at: state, messages, rows, details."""
        return self.js("""
            const t = (s) => { const e = document.querySelector(s); return e && e.checkVisibility() ? e.innerText : '-'; };
            return ['conn: ' + t('#conn'), 'toast: ' + t('#toast'), 'signin: ' + t('#signin'),
                    'filter error: ' + t('#filter-error'), 'totals: ' + t('#totals'),
                    'rows: ' + t('#rows').slice(0, 1500), 'detail: ' + t('#detail').slice(0, 1500),
                    'dialog: ' + t('dialog[open]')].join(String.fromCharCode(10));""")

    def conn_state(self):
        return self.text("#conn")

    def type_keys(self, *keys):
        """Keys to whatever has focus (as a keyboard would)."""
        from selenium.webdriver.common.action_chains import ActionChains
        chain = ActionChains(self.driver)
        for k in keys:
            chain.send_keys(k)
        chain.perform()

    def row_payers(self):
        return self.js("return [...document.querySelectorAll('#rows tr')].map(r => r.querySelector('.c-payer').textContent);")


KEYS = Keys if webdriver is not None else None
