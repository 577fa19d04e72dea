/*
 * test-utf8.c - strict UTF-8 validation, code point counting, control
 * characters and display width.
 */
#include <string.h>

#include "tap.h"
#include "utf8.h"

static void valid_is(tap *t, const char *bytes, size_t len, bool want, const char *what)
{
    tap_ok(t, pt_utf8_valid(bytes, len) == want, "%s is %svalid", what, want ? "" : "in");
}

int main(void)
{
    tap t = {0};
    uint32_t cp = 0;

    valid_is(&t, "", 0, true, "empty text");
    valid_is(&t, "ACME GmbH", 9, true, "ASCII");
    valid_is(&t, "M\xc3\xbcller", 7, true, "2-byte \xc3\xbc");
    valid_is(&t, "\xe2\x82\xac", 3, true, "3-byte euro sign");
    valid_is(&t, "\xf0\x9f\x98\x80", 4, true, "4-byte emoji");
    valid_is(&t, "\xf4\x8f\xbf\xbf", 4, true, "U+10FFFF");
    valid_is(&t, "\xed\x9f\xbf", 3, true, "U+D7FF");
    valid_is(&t, "\xee\x80\x80", 3, true, "U+E000");
    valid_is(&t, "a\0b", 3, true, "embedded NUL (valid UTF-8; callers refuse it)");
    valid_is(&t, "\xc0\xaf", 2, false, "overlong 2-byte '/'");
    valid_is(&t, "\xc1\xbf", 2, false, "overlong 2-byte");
    valid_is(&t, "\xe0\x80\xaf", 3, false, "overlong 3-byte");
    valid_is(&t, "\xf0\x80\x80\xaf", 4, false, "overlong 4-byte");
    valid_is(&t, "\xed\xa0\x80", 3, false, "surrogate U+D800");
    valid_is(&t, "\xed\xbf\xbf", 3, false, "surrogate U+DFFF");
    valid_is(&t, "\xf4\x90\x80\x80", 4, false, "U+110000");
    valid_is(&t, "\xf5\x80\x80\x80", 4, false, "lead byte F5");
    valid_is(&t, "\xff", 1, false, "byte FF");
    valid_is(&t, "\x80", 1, false, "lone continuation byte");
    valid_is(&t, "\xc3", 1, false, "truncated 2-byte sequence");
    valid_is(&t, "\xe2\x82", 2, false, "truncated 3-byte sequence");
    valid_is(&t, "\xe2\x82\xac", 2, false, "sequence cut by len");
    valid_is(&t, "\xc3\x28", 2, false, "bad continuation byte");
    valid_is(&t, NULL, 0, true, "NULL with length 0");

    tap_is_i64(&t, (int64_t) pt_utf8_length(""), 0, "length of empty");
    tap_is_i64(&t, (int64_t) pt_utf8_length("abc"), 3, "length of ASCII");
    tap_is_i64(&t, (int64_t) pt_utf8_length("M\xc3\xbcller"), 6, "length counts code points");
    tap_is_i64(&t, (int64_t) pt_utf8_length("\xe2\x82\xac\xf0\x9f\x98\x80"), 2,
               "euro + emoji is 2");
    tap_is_i64(&t, (int64_t) pt_utf8_length("\xe6\x97\xa5\xe6\x9c\xac"), 2, "CJK is 2");

    tap_ok(&t, !pt_utf8_has_control("plain text \xc3\xa9\xe2\x82\xac"), "no control in text");
    tap_ok(&t, pt_utf8_has_control("a\tb"), "tab is a control");
    tap_ok(&t, pt_utf8_has_control("a\nb"), "newline is a control");
    tap_ok(&t, pt_utf8_has_control("\x1f"), "U+001F is a control");
    tap_ok(&t, pt_utf8_has_control("a\x7f"), "DEL is a control");
    tap_ok(&t, pt_utf8_has_control("\xc2\x80"), "U+0080 is a control");
    tap_ok(&t, pt_utf8_has_control("x\xc2\x9fy"), "U+009F is a control");
    tap_ok(&t, !pt_utf8_has_control("\xc2\xa0"), "U+00A0 is not a control");
    tap_ok(&t, !pt_utf8_has_control("\xe2\x80\xa8"), "U+2028 is not C0/C1");

    tap_is_i64(&t, pt_utf8_width("abc"), 3, "width of ASCII");
    tap_is_i64(&t, pt_utf8_width("\xe6\x97\xa5\xe6\x9c\xac"), 4, "CJK is 2 columns each");
    tap_is_i64(&t, pt_utf8_width("e\xcc\x81"), 1, "combining acute adds nothing");
    tap_is_i64(&t, pt_utf8_width("\xea\xb0\x80"), 2, "Hangul syllable is wide");
    tap_is_i64(&t, pt_utf8_width("\xef\xbc\xa1"), 2, "fullwidth A is wide");
    tap_is_i64(&t, pt_utf8_width("\xf0\x9f\x98\x80"), 2, "emoji is wide");
    tap_is_i64(&t, pt_utf8_width("\xe2\x82\xac"), 1, "euro sign is narrow");
    tap_is_i64(&t, pt_utf8_width("\xe2\x80\x8b"), 0, "zero-width space");
    tap_is_i64(&t, pt_utf8_width("a\xff"), 2, "a bad byte counts one column");
    tap_is_i64(&t, pt_utf8_width(""), 0, "width of empty");

    tap_is_i64(&t, (int64_t) pt_utf8_decode("\xe2\x82\xac", 3, &cp), 3, "decode euro: 3 bytes");
    tap_is_i64(&t, cp, 0x20AC, "decode euro: U+20AC");
    tap_is_i64(&t, (int64_t) pt_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4, "decode emoji");
    tap_is_i64(&t, cp, 0x1F600, "decode emoji: U+1F600");
    tap_is_i64(&t, (int64_t) pt_utf8_decode("\xed\xa0\x80", 3, &cp), 0, "decode surrogate: 0");
    tap_is_i64(&t, (int64_t) pt_utf8_decode("a", 0, &cp), 0, "decode of nothing: 0");

    tap_is_i64(&t, (int64_t) pt_utf8_truncate("abc\xe2\x82\xac", 5), 3,
               "truncate does not split the euro sign");
    tap_is_i64(&t, (int64_t) pt_utf8_truncate("abc\xe2\x82\xac", 6), 6, "truncate keeps it whole");
    tap_is_i64(&t, (int64_t) pt_utf8_truncate("abc", 10), 3, "truncate of short text");
    return tap_done(&t);
}
