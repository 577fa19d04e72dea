/*
 * test-money.c - pt_money_parse and pt_money_format: exact round trips for
 * every exponent in use, grouping rules, and each error class.
 */
#include <stdint.h>
#include <string.h>

#include "money.h"
#include "tap.h"

/* Parses text and checks both the result code and, on success, the value. */
static void parse_is(tap *t, const char *text, int exponent, pt_money_err want_err, int64_t want)
{
    int64_t got = -777;
    pt_money_err err = pt_money_parse(text, exponent, &got);

    if (!tap_is_i64(t, err, want_err, "parse \"%s\" exp %d gives %s", text, exponent,
                    pt_money_strerror(want_err)))
        return;
    if (want_err == PT_MONEY_OK)
        tap_is_i64(t, got, want, "parse \"%s\" exp %d = %" PRId64, text, exponent, want);
    else
        tap_is_i64(t, got, -777, "parse \"%s\" leaves the output alone", text);
}

static void format_is(tap *t, int64_t minor, int exponent, int group, const char *want)
{
    char buf[64];
    int n = pt_money_format(minor, exponent, group, buf, sizeof buf);

    tap_is_str(t, buf, want, "format %" PRId64 " exp %d%s", minor, exponent,
               group ? " grouped" : "");
    tap_is_i64(t, n, (int64_t) strlen(want), "format %" PRId64 " returns its length", minor);
}

/* Formats then parses back, grouped and not, for one value. */
static void round_trip(tap *t, int64_t minor, int exponent)
{
    char buf[64];
    int64_t back = -1;
    bool ok = true;

    for (int group = 0; group <= 1; group++) {
        if (pt_money_format(minor, exponent, group, buf, sizeof buf) < 0 ||
            pt_money_parse(buf, exponent, &back) != PT_MONEY_OK || back != minor)
            ok = false;
    }
    tap_ok(t, ok, "round trip %" PRId64 " exp %d via \"%s\"", minor, exponent, buf);
}

int main(void)
{
    tap t = {0};
    char small[8];
    char buf[64];

    /* Exponent 2 (EUR): the everyday shapes. */
    parse_is(&t, "12.50", 2, PT_MONEY_OK, 1250);
    parse_is(&t, "12", 2, PT_MONEY_OK, 1200);
    parse_is(&t, "12.", 2, PT_MONEY_OK, 1200);
    parse_is(&t, "12.5", 2, PT_MONEY_OK, 1250);
    parse_is(&t, "0.05", 2, PT_MONEY_OK, 5);
    parse_is(&t, ".5", 2, PT_MONEY_OK, 50);
    parse_is(&t, "0", 2, PT_MONEY_OK, 0);
    parse_is(&t, "007.10", 2, PT_MONEY_OK, 710);
    parse_is(&t, "1,000.5", 2, PT_MONEY_OK, 100050);
    parse_is(&t, "1,250.00", 2, PT_MONEY_OK, 125000);
    parse_is(&t, "12,345,678.90", 2, PT_MONEY_OK, 1234567890);
    parse_is(&t, "  42.00\t\n", 2, PT_MONEY_OK, 4200);

    /* Exponent 0 (JPY), 3 (KWD), 4 (CLF). */
    parse_is(&t, "1250", 0, PT_MONEY_OK, 1250);
    parse_is(&t, "1,250", 0, PT_MONEY_OK, 1250);
    parse_is(&t, "1250.", 0, PT_MONEY_OK, 1250);
    parse_is(&t, "1250.0", 0, PT_MONEY_TOO_PRECISE, 0);
    parse_is(&t, "1.5", 0, PT_MONEY_TOO_PRECISE, 0);
    parse_is(&t, "1.234", 3, PT_MONEY_OK, 1234);
    parse_is(&t, "1.2", 3, PT_MONEY_OK, 1200);
    parse_is(&t, "0.001", 3, PT_MONEY_OK, 1);
    parse_is(&t, "1.2345", 3, PT_MONEY_TOO_PRECISE, 0);
    parse_is(&t, "1.2345", 4, PT_MONEY_OK, 12345);
    parse_is(&t, "0.0001", 4, PT_MONEY_OK, 1);
    parse_is(&t, "1.23456", 4, PT_MONEY_TOO_PRECISE, 0);

    /* Refusals. */
    parse_is(&t, "12.505", 2, PT_MONEY_TOO_PRECISE, 0);
    parse_is(&t, "12.500", 2, PT_MONEY_TOO_PRECISE, 0);
    parse_is(&t, "1,00.5", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1,0000", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1000,000", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, ",100", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1,,000", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1,000,", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1.000,50", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1.2.3", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "", 2, PT_MONEY_EMPTY, 0);
    parse_is(&t, "   \t", 2, PT_MONEY_EMPTY, 0);
    parse_is(&t, ".", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "-", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "+12", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "-12.50", 2, PT_MONEY_NEGATIVE, 0);
    parse_is(&t, "-0", 2, PT_MONEY_NEGATIVE, 0);
    parse_is(&t, "--1", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1 000", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "12a", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "1e3", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "0x10", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "12.5\xc2\xa0", 2, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "12", -1, PT_MONEY_SYNTAX, 0);
    parse_is(&t, "12", 19, PT_MONEY_SYNTAX, 0);
    tap_ok(&t, pt_money_parse(NULL, 2, NULL) == PT_MONEY_EMPTY, "NULL text is empty");

    /* Overflow around INT64_MAX = 9223372036854775807. */
    parse_is(&t, "9223372036854775807", 0, PT_MONEY_OK, INT64_MAX);
    parse_is(&t, "9,223,372,036,854,775,807", 0, PT_MONEY_OK, INT64_MAX);
    parse_is(&t, "9223372036854775808", 0, PT_MONEY_OVERFLOW, 0);
    parse_is(&t, "92233720368547758.07", 2, PT_MONEY_OK, INT64_MAX);
    parse_is(&t, "92233720368547758.08", 2, PT_MONEY_OVERFLOW, 0);
    parse_is(&t, "92233720368547759", 2, PT_MONEY_OVERFLOW, 0);
    parse_is(&t, "99999999999999999999999999", 0, PT_MONEY_OVERFLOW, 0);
    parse_is(&t, "9999999999999.99", 2, PT_MONEY_OK, INT64_C(999999999999999));
    parse_is(&t, "00000000000000000000000001.5", 2, PT_MONEY_OK, 150);

    /* Formatting. */
    format_is(&t, 125000, 2, 0, "1250.00");
    format_is(&t, 125000, 2, 1, "1,250.00");
    format_is(&t, 5, 2, 0, "0.05");
    format_is(&t, 0, 2, 0, "0.00");
    format_is(&t, -5, 2, 0, "-0.05");
    format_is(&t, -125000, 2, 1, "-1,250.00");
    format_is(&t, 1250, 0, 1, "1,250");
    format_is(&t, 100, 0, 1, "100");
    format_is(&t, 1000, 0, 1, "1,000");
    format_is(&t, 1234, 3, 0, "1.234");
    format_is(&t, 1, 3, 0, "0.001");
    format_is(&t, 12345, 4, 0, "1.2345");
    format_is(&t, INT64_MAX, 0, 1, "9,223,372,036,854,775,807");
    format_is(&t, INT64_MIN, 0, 0, "-9223372036854775808");
    format_is(&t, INT64_MIN, 2, 1, "-92,233,720,368,547,758.08");
    format_is(&t, INT64_C(999999999999999), 2, 1, "9,999,999,999,999.99");

    tap_is_i64(&t, pt_money_format(125000, 2, 1, small, sizeof small), -1,
               "format refuses a buffer that is too small");
    tap_is_str(&t, small, "", "and leaves it empty");
    tap_is_i64(&t, pt_money_format(1, 2, 0, buf, 5), 4, "format fits exactly (\"0.01\" in 5)");
    tap_is_i64(&t, pt_money_format(1, 2, 0, buf, 4), -1, "one byte short is refused");
    tap_is_i64(&t, pt_money_format(1, -1, 0, buf, sizeof buf), -1, "bad exponent refused");
    tap_is_i64(&t, pt_money_format(1, 2, 0, NULL, 10), -1, "NULL buffer refused");

    /* Round trips for every exponent the table uses. */
    {
        static const int64_t values[] = {1,        9,      10,      99,
                                         100,      999,    1000,    1001,
                                         123456,   999999, 1000000, INT64_C(999999999999999),
                                         INT64_MAX};
        for (int e = 0; e <= 4; e++) {
            for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
                round_trip(&t, values[i], e);
        }
    }

    /* Every error has its own sentence. */
    tap_ok(&t, strcmp(pt_money_strerror(PT_MONEY_TOO_PRECISE), "amount has too many decimals") == 0,
           "strerror TOO_PRECISE");
    tap_ok(&t, strcmp(pt_money_strerror(PT_MONEY_SYNTAX), pt_money_strerror(PT_MONEY_EMPTY)) != 0,
           "strerror distinguishes errors");
    return tap_done(&t);
}
