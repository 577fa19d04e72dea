/*
 * proto.c - the wire protocol's names and filter rules (see proto.h).
 */
#include "proto.h"

#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

#include "utf8.h"

/* ---- event types -------------------------------------------------------- */

static const char *const event_names[PT_EVENT_COUNT] = {
    "payment.created",
    "payment.updated",
    "payment.deleted",
};

const char *pt_event_name(pt_event_type t)
{
    return (unsigned) t < PT_EVENT_COUNT ? event_names[t] : "?";
}

bool pt_event_parse(const char *name, pt_event_type *out)
{
    for (int i = 0; name != NULL && i < PT_EVENT_COUNT; i++) {
        if (strcmp(name, event_names[i]) == 0) {
            if (out)
                *out = (pt_event_type) i;
            return true;
        }
    }
    return false;
}

/* ---- q folding ---------------------------------------------------------- */

/* glibc's C.UTF-8 case table, loaded once per process. It is never
 * changed after pthread_once, so every thread and instance may share it;
 * (locale_t) 0 when the C library has no such locale. */
static locale_t fold_locale;
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;

static void fold_load(void)
{
    fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
}

uint32_t pt_q_fold(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
    pthread_once(&fold_once, fold_load);
    if (fold_locale == (locale_t) 0)
        return cp;
    return (uint32_t) towlower_l((wint_t) cp, fold_locale);
}

/* The code point at *s (advancing *s), folded; a byte that does not start
 * well-formed UTF-8 stands for itself, offset past Unicode so it can only
 * equal the same byte. */
static uint32_t next_folded(const char **s)
{
    uint32_t cp;
    size_t n = pt_utf8_decode(*s, strnlen(*s, 4), &cp);

    if (n == 0) {
        cp = 0x110000u + (unsigned char) **s;
        n = 1;
    }
    *s += n;
    return cp >= 0x110000u ? cp : pt_q_fold(cp);
}

/* True when `needle` (non-empty) matches at the start of `hay`. */
static bool folded_prefix(const char *hay, const char *needle)
{
    while (*needle != '\0') {
        if (*hay == '\0' || next_folded(&hay) != next_folded(&needle))
            return false;
    }
    return true;
}

bool pt_q_contains(const char *hay, const char *needle)
{
    if (hay == NULL)
        return false;
    if (needle == NULL || *needle == '\0')
        return true;
    for (const char *h = hay; *h != '\0';) {
        if (folded_prefix(h, needle))
            return true;
        (void) next_folded(&h);
    }
    return false;
}

bool pt_q_match(const char *q, const char *payer, const char *payee, const char *reference)
{
    return pt_q_contains(payer, q) || pt_q_contains(payee, q) || pt_q_contains(reference, q);
}

/* ---- RFC 3339 ----------------------------------------------------------- */

/* The value of n decimal digits at s, or -1 when one is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to the given proleptic Gregorian date (Howard
 * Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

/* Reads "[.fraction]" at *p into microseconds; false when malformed. */
static bool read_fraction(const char **p, int64_t *us)
{
    int n = 0;
    int64_t scale = 100000;

    *us = 0;
    if (**p != '.')
        return true;
    for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++) {
        *us += (**p - '0') * scale;
        scale /= 10;
    }
    return n >= 1 && n <= 9;
}

/* Reads the offset (Z, +HH:MM or -HH:MM) that must end the text, into
 * seconds east of UTC; false when malformed. */
static bool read_offset(const char *p, int64_t *seconds)
{
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *seconds = 0;
        return true;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        *seconds = (*p == '-' ? -1 : 1) * (int64_t) (oh * 3600 + om * 60);
        return true;
    }
    return false;
}

bool pt_time_parse(const char *s, int64_t *us_out)
{
    size_t len = s ? strlen(s) : 0;

    if (len < 20 || len >= PT_TIME_TEXT_MAX)
        return false;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || sec < 0 || sec > 59 || day > days_in_month(year, month))
        return false;
    const char *p = s + 19;
    int64_t frac_us, offset;
    if (!read_fraction(&p, &frac_us) || !read_offset(p, &offset))
        return false;
    if (us_out) {
        int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
        *us_out = (secs - offset) * 1000000 + frac_us;
    }
    return true;
}
