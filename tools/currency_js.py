#!/usr/bin/env python3
"""Writes the web page's currency table (a JavaScript module) from
common/currency.c, so the server and the page share one source of truth.

usage: currency_js.py common/currency.c OUTPUT.js

The module exports CURRENCIES: a frozen object mapping each code to
{exponent, name}, in the C table's order (sorted by code).
"""
import json
import re
import sys

ENTRY = re.compile(r'^\s*\{"([A-Z]{3})",\s*([0-4]),\s*"([^"\\]*)"\},\s*$')


def main() -> int:
    source, output = sys.argv[1], sys.argv[2]
    entries = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            m = ENTRY.match(line)
            if m:
                entries.append((m.group(1), int(m.group(2)), m.group(3)))
    codes = [code for code, _, _ in entries]
    if len(entries) < 100 or codes != sorted(codes) or len(set(codes)) != len(codes):
        print("currency_js: could not read the table in %s (%d entries)" % (source, len(entries)),
              file=sys.stderr)
        return 1
    with open(output, "w", encoding="utf-8") as f:
        f.write("// Generated from common/currency.c by tools/currency_js.py; do not edit.\n")
        f.write("export const CURRENCIES = Object.freeze({\n")
        for code, exponent, name in entries:
            f.write("  %s: Object.freeze({ exponent: %d, name: %s }),\n"
                    % (code, exponent, json.dumps(name)))
        f.write("});\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
