/*
 * cursor.c - the list cursor's text form (see cursor.h).
 */
#include "cursor.h"

#include <stdio.h>
#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The plain text is "1|a|<time>|<id>": 4 + time + 1 + id bytes. */
#define PLAIN_MAX (4 + PT_CURSOR_TIME_MAX + PT_CURSOR_ID_MAX)

static size_t b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    size_t w = 0;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned) in[i] << 16;
        size_t emit = len - i >= 3 ? 4 : len - i + 1;

        if (i + 1 < len)
            v |= (unsigned) in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        if (w + emit >= cap)
            return 0;
        for (size_t k = 0; k < emit; k++)
            out[w++] = b64url[(v >> (18 - 6 * k)) & 63];
    }
    out[w] = '\0';
    return w;
}

int pt_cursor_encode(bool asc, const char *time, const char *id, char *out, size_t cap)
{
    char plain[PLAIN_MAX];
    int n;

    if (cap > 0)
        out[0] = '\0';
    if (strlen(time) >= PT_CURSOR_TIME_MAX || strlen(id) >= PT_CURSOR_ID_MAX)
        return -1;
    n = snprintf(plain, sizeof plain, "1|%c|%s|%s", asc ? 'a' : 'd', time, id);
    if (n < 0 || (size_t) n >= sizeof plain)
        return -1;
    if (b64url_encode((const unsigned char *) plain, (size_t) n, out, cap) == 0) {
        if (cap > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;

    return p ? (int) (p - b64url) : -1;
}

/* Decodes unpadded base64url into `out` (cap bytes incl. NUL); returns the
 * decoded length or -1. Leftover bits must be zero, so that each cursor has
 * exactly one spelling. */
static int b64url_decode(const char *text, char *out, size_t cap)
{
    size_t w = 0;
    unsigned bits = 0;
    int nbits = 0;

    for (const char *c = text; *c; c++) {
        int v = b64_value(*c);

        if (v < 0)
            return -1;
        bits = (bits << 6 | (unsigned) v) & 0xffffff;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (w + 1 >= cap)
                return -1;
            out[w++] = (char) ((bits >> nbits) & 0xff);
        }
    }
    if ((bits & ((1u << nbits) - 1)) != 0)
        return -1;
    out[w] = '\0';
    return (int) w;
}

int pt_cursor_decode(const char *text, bool *asc, char *time, char *id)
{
    size_t len = strlen(text);
    char plain[PLAIN_MAX];
    int decoded;
    char *bar;
    size_t time_len, id_len;

    if (len == 0 || len > PT_CURSOR_MAX || len % 4 == 1)
        return -1;
    decoded = b64url_decode(text, plain, sizeof plain);
    if (decoded < 6 || strlen(plain) != (size_t) decoded)
        return -1;
    if (plain[0] != '1' || plain[1] != '|' || (plain[2] != 'a' && plain[2] != 'd') ||
        plain[3] != '|')
        return -1;
    bar = strchr(plain + 4, '|');
    if (bar == NULL)
        return -1;
    time_len = (size_t) (bar - (plain + 4));
    id_len = strlen(bar + 1);
    if (time_len == 0 || time_len >= PT_CURSOR_TIME_MAX || id_len == 0 ||
        id_len >= PT_CURSOR_ID_MAX)
        return -1;
    *asc = plain[2] == 'a';
    memcpy(time, plain + 4, time_len);
    time[time_len] = '\0';
    memcpy(id, bar + 1, id_len + 1);
    return 0;
}
