/*
 * test-proto.c - the wire protocol's names, q folding and matching, and
 * RFC 3339 date-times.
 *
 * With --fold-table it prints instead every code point pt_q_fold changes,
 * "cp folded" in decimal, one a line, for tests/integration/
 * test_proto_fold.py to compare with PostgreSQL's lower().
 */
#include <string.h>

#include "proto.h"
#include "tap.h"

static int fold_table(void)
{
    for (uint32_t cp = 1; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        uint32_t f = pt_q_fold(cp);
        if (f != cp)
            printf("%u %u\n", (unsigned) cp, (unsigned) f);
    }
    return 0;
}

static void events(tap *t)
{
    pt_event_type e = PT_EVENT_DELETED;

    tap_is_str(t, pt_event_name(PT_EVENT_CREATED), "payment.created", "created's name");
    tap_is_str(t, pt_event_name(PT_EVENT_UPDATED), "payment.updated", "updated's name");
    tap_is_str(t, pt_event_name(PT_EVENT_DELETED), "payment.deleted", "deleted's name");
    tap_is_str(t, pt_event_name((pt_event_type) 7), "?", "a value outside the enum");
    tap_ok(t, pt_event_parse("payment.created", &e) && e == PT_EVENT_CREATED, "parse created");
    tap_ok(t, pt_event_parse("payment.deleted", &e) && e == PT_EVENT_DELETED, "parse deleted");
    tap_ok(t, !pt_event_parse("payment.Created", &e), "event names are case-sensitive");
    tap_ok(t, !pt_event_parse("payment.refunded", NULL), "an unknown type");
    tap_ok(t, !pt_event_parse(NULL, &e), "NULL");
    tap_is_str(t, PT_PROTO_SUBPROTOCOL, "paytrackr.v1", "the subprotocol");
    tap_is_str(t, PT_PROTO_STREAM_PATH, "/v1/stream", "the stream's path");
}

static void folding(tap *t)
{
    tap_is_i64(t, pt_q_fold('A'), 'a', "A folds to a");
    tap_is_i64(t, pt_q_fold('z'), 'z', "z stays");
    tap_is_i64(t, pt_q_fold('@'), '@', "@ stays");
    tap_is_i64(t, pt_q_fold(0xC9), 0xE9, "U+00C9 E-acute folds to U+00E9");
    tap_is_i64(t, pt_q_fold(0x3A3), 0x3C3, "Greek capital sigma folds to small sigma");
    tap_is_i64(t, pt_q_fold(0x41F), 0x43F, "Cyrillic PE folds");
    tap_is_i64(t, pt_q_fold(0x130), 'i', "U+0130 dotted I folds to i, as glibc does");
    tap_is_i64(t, pt_q_fold(0xDF), 0xDF, "sharp s stays (no 1:2 mappings)");
    tap_is_i64(t, pt_q_fold(0xFF21), 0xFF41, "fullwidth A folds");
    tap_is_i64(t, pt_q_fold(0x10400), 0x10428, "Deseret (4-byte) folds");

    tap_ok(t, pt_q_contains("ACME GmbH", "gmb"), "ASCII substring in another case");
    tap_ok(t, pt_q_contains("Caf\xc3\x89 M\xc3\x9cLLER", "\xc3\xa9 m\xc3\xbc"),
           "Latin-1 letters in another case");
    tap_ok(t, pt_q_contains("\xce\xa3\xce\x9f\xce\xa6\xce\x8a\xce\x91", "\xcf\x83\xce\xbf\xcf\x86"),
           "Greek in another case");
    tap_ok(t, !pt_q_contains("abc", "abd"), "a different letter");
    tap_ok(t, !pt_q_contains("ab", "abc"), "a needle longer than the text");
    tap_ok(t, pt_q_contains("aab", "ab"), "a match after a false start");
    tap_ok(t, pt_q_contains("x", ""), "an empty needle matches");
    tap_ok(t, !pt_q_contains(NULL, "x"), "NULL text never matches");
    tap_ok(t,
           pt_q_contains("a\xff"
                         "b",
                         "\xff"
                         "B"),
           "a stray byte matches itself");
    tap_ok(t, !pt_q_contains("a\xc3\x89", "a\xc3"), "half a character does not match");
    tap_ok(t, pt_q_match("acme", "ACME GmbH", "x", NULL), "q in the payer");
    tap_ok(t, pt_q_match("acme", "x", "Acme", NULL), "q in the payee");
    tap_ok(t, pt_q_match("inv-7", "x", "y", "INV-7"), "q in the reference");
    tap_ok(t, !pt_q_match("acme", "x", "y", NULL), "q nowhere");
    tap_ok(t, !pt_q_match("xy", "...x", "y...", NULL), "q never spans two fields");
}

static void time_ok(tap *t, const char *s, int64_t want)
{
    int64_t us = -1;

    if (tap_ok(t, pt_time_parse(s, &us), "%s is valid", s))
        tap_is_i64(t, us, want, "%s in microseconds", s);
}

static void time_bad(tap *t, const char *s)
{
    tap_ok(t, !pt_time_parse(s, NULL), "%s is refused", s);
}

static void times(tap *t)
{
    time_ok(t, "1970-01-01T00:00:00Z", 0);
    time_ok(t, "2026-11-24T12:00:00.123Z", INT64_C(1795521600123000));
    time_ok(t, "2026-11-24t12:00:00.123456789z", INT64_C(1795521600123456));
    time_ok(t, "2026-11-24T13:30:00+01:30", INT64_C(1795521600000000));
    time_ok(t, "2026-11-24T10:00:00-02:00", INT64_C(1795521600000000));
    time_ok(t, "2024-02-29T00:00:00Z", INT64_C(1709164800000000));
    time_ok(t, "1969-12-31T23:59:59.5Z", -500000);
    time_ok(t, "0001-01-01T00:00:00Z", INT64_C(-62135596800000000));
    time_bad(t, "2023-02-29T00:00:00Z");
    time_bad(t, "2026-04-31T00:00:00Z");
    time_bad(t, "2026-13-01T00:00:00Z");
    time_bad(t, "0000-01-01T00:00:00Z");
    time_bad(t, "2026-11-24T24:00:00Z");
    time_bad(t, "2026-11-24T12:60:00Z");
    time_bad(t, "2026-11-24T12:00:60Z");
    time_bad(t, "2026-11-24 12:00:00Z");
    time_bad(t, "2026-11-24T12:00:00");
    time_bad(t, "2026-11-24T12:00:00.Z");
    time_bad(t, "2026-11-24T12:00:00.1234567890Z");
    time_bad(t, "2026-11-24T12:00:00+24:00");
    time_bad(t, "2026-11-24T12:00:00+01:60");
    time_bad(t, "2026-11-24T12:00:00+0100");
    time_bad(t, "2026-11-24T12:00:00Zjunk");
    time_bad(t, "2026-1-24T12:00:00Z");
    time_bad(t, "");
    time_bad(t, NULL);
}

int main(int argc, char **argv)
{
    tap t = {0};

    if (argc == 2 && strcmp(argv[1], "--fold-table") == 0)
        return fold_table();
    events(&t);
    folding(&t);
    times(&t);
    return tap_done(&t);
}
