"""The web page's money module (web/money.js) under Node: amounts typed in
major units are read with the currency's exponent from the generated
table (common/currency.c), and minor units are written back exactly."""

import json
import shutil
import subprocess

import pytest

from harness import REPO_ROOT, server_binary

CASES = [
    # text, currency, expected minor units or an error substring
    ("12.50", "EUR", 1250), ("12.5", "EUR", 1250), ("12", "EUR", 1200), ("0.01", "EUR", 1),
    ("12.5x", "EUR", "enter a number"), ("1.234", "EUR", "EUR takes at most 2 decimal places"),
    ("1,50", "EUR", "enter a number"), ("-1", "EUR", "enter a number"), ("", "EUR", "enter an amount"),
    ("0", "EUR", "more than zero"), ("0.00", "EUR", "more than zero"),
    ("150000", "JPY", 150000), ("1.5", "JPY", "JPY takes no decimal places"),
    ("12.345", "KWD", 12345), ("12.3456", "KWD", "KWD takes at most 3 decimal places"),
    ("1.0001", "CLF", 10001), ("9999999999999.99", "EUR", 999999999999999),
    ("10000000000000.00", "EUR", "too large"), ("000000000000000000012.50", "EUR", 1250),
    ("1", "XXX", "choose a currency"),
]
FORMATS = [(125000, "EUR", "1,250.00"), (150000, "JPY", "150,000"), (12345, "KWD", "12.345"),
           (1, "EUR", "0.01"), (999999999999999, "EUR", "9,999,999,999,999.99"), (5, "CLF", "0.0005")]


@pytest.fixture
def money_dir(tmp_path):
    node = shutil.which("node")
    if not node:
        pytest.fail("node is needed (scripts/deps/web.txt lists nodejs)")
    generated = server_binary().parent / "currencies.js"
    assert generated.exists(), "build first: %s is generated at build time" % generated
    shutil.copy(REPO_ROOT / "web" / "money.js", tmp_path / "money.js")
    shutil.copy(generated, tmp_path / "currencies.js")
    return tmp_path


def test_money_parsing_and_formatting(money_dir):
    script = """
import { parseMajor, formatMinor, plainMinor } from './money.js';
const cases = %s, formats = %s;
const out = { parsed: cases.map(([t, c]) => parseMajor(t, c)),
              formatted: formats.map(([a, c]) => [formatMinor(a, c), plainMinor(a, c)]) };
console.log(JSON.stringify(out));
""" % (json.dumps(CASES), json.dumps(FORMATS))
    (money_dir / "t.mjs").write_text(script)
    proc = subprocess.run(["node", "t.mjs"], cwd=str(money_dir), capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for (text, ccy, want), got in zip(CASES, out["parsed"]):
        if isinstance(want, int):
            assert got == {"minor": want}, (text, ccy, got)
        else:
            assert want in got.get("error", ""), (text, ccy, got)
    for (amount, ccy, want), (fmt, plain) in zip(FORMATS, out["formatted"]):
        assert fmt == want, (amount, ccy, fmt)
        assert plain == want.replace(",", ""), (amount, ccy, plain)
