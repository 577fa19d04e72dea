/*
 * fuzz-query.c - libFuzzer target for the list filters: query_parse over
 * the key/value pairs of a raw query string.
 *
 * Input: a query string as it follows '?' in a URL ("status=pending&q=a%25").
 * It is split here the way the server sees it after libwebsockets: on '&'
 * (empty pieces skipped), at the first '=' (no '=' gives an empty value),
 * with %XX and '+' decoded; at most QUERY_FUZZ_PAIRS pairs.
 *
 * Besides crashes and leaks (ASan, UBSan) it checks that a refusal is a
 * bad_request, and that an accepted query is within the contract: every
 * filter in its set or range, min <= max, the LIKE pattern escapes the
 * search text exactly, and a cursor position is valid and re-encodes to a
 * cursor that decodes to the same position.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "money.h"
#include "payment.h"
#include "proto.h"
#include "query.h"
#include "utf8.h"

#define QUERY_FUZZ_PAIRS 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) in place into a NUL-terminated string (%XX, '+'). A
 * bad escape is kept as it is. */
static char *url_decode(char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            s[w++] = (char) (hi << 4 | lo);
            i += 2;
        } else {
            s[w++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    s[w] = '\0';
    return s;
}

/* The value the caller gave for `key`, or NULL. */
static const char *given(const char *const *keys, const char *const *values, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return values[i];
    return NULL;
}

static void check_text(const char *v)
{
    size_t len;

    if (v == NULL)
        return;
    len = strlen(v);
    if (len == 0 || !pt_utf8_valid(v, len) || pt_utf8_has_control(v) ||
        pt_utf8_length(v) > PT_NAME_MAX)
        abort();
}

/* The pattern is '%' + the text with '%', '_' and '\' escaped + '%'. */
static void check_pattern(const char *pattern, const char *q)
{
    size_t len = strlen(pattern);
    const char *p = pattern + 1;

    if (q == NULL || len < 2 || pattern[0] != '%' || pattern[len - 1] != '%')
        abort();
    for (const char *c = q; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') {
            if (*p++ != '\\')
                abort();
        }
        if (*p++ != *c)
            abort();
    }
    if (p != pattern + len - 1)
        abort();
}

static void check_accepted(const struct list_query *q, const char *const *keys,
                           const char *const *values, int n)
{
    pt_status st;
    pt_method m;

    if (q->limit < 1 || q->limit > QUERY_LIMIT_MAX)
        abort();
    if ((q->status && !pt_status_parse(q->status, &st)) ||
        (q->method && !pt_method_parse(q->method, &m)) ||
        (q->currency && pt_currency_find(q->currency) == NULL))
        abort();
    check_text(q->payer);
    check_text(q->payee);
    if ((q->has_min && (q->min_amount < 1 || q->min_amount > PT_AMOUNT_MAX)) ||
        (q->has_max && (q->max_amount < 1 || q->max_amount > PT_AMOUNT_MAX)) ||
        (q->has_min && q->has_max && q->min_amount > q->max_amount))
        abort();
    if ((q->created_gte[0] && !pt_time_parse(q->created_gte, NULL)) ||
        (q->created_lt[0] && !pt_time_parse(q->created_lt, NULL)))
        abort();
    if (q->q_pattern)
        check_pattern(q->q_pattern, given(keys, values, n, "q"));
    else if (given(keys, values, n, "q"))
        abort();
    if (q->has_cursor) {
        struct list_query again;
        char text[160];

        if (!pt_time_parse(q->cursor_time, NULL) || !query_valid_uuid(q->cursor_id) ||
            given(keys, values, n, "cursor") == NULL)
            abort();
        memset(&again, 0, sizeof again);
        again.asc = q->asc;
        query_cursor_encode(q->asc, q->cursor_time, q->cursor_id, text, sizeof text);
        if (query_cursor_decode(text, &again) != 0 || !again.has_cursor ||
            strcmp(again.cursor_time, q->cursor_time) != 0 ||
            strcmp(again.cursor_id, q->cursor_id) != 0)
            abort();
    } else if (given(keys, values, n, "cursor")) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *keys[QUERY_FUZZ_PAIRS];
    const char *values[QUERY_FUZZ_PAIRS];
    struct list_query q;
    pt_problem pr = {0};
    char *text = malloc(size + 1);
    size_t start = 0;
    int n = 0;
    int rc;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* Split on '&'; each piece is decoded in place (never longer). */
    for (size_t i = 0; i <= size && n < QUERY_FUZZ_PAIRS; i++) {
        char *piece = text + start;
        char *eq;
        size_t len;

        if (i < size && text[i] != '&')
            continue;
        len = i - start;
        start = i + 1;
        if (len == 0)
            continue;
        piece[len] = '\0';
        eq = memchr(piece, '=', len);
        if (eq != NULL) {
            *eq = '\0';
            values[n] = url_decode(eq + 1, len - (size_t) (eq + 1 - piece));
            keys[n] = url_decode(piece, (size_t) (eq - piece));
        } else {
            values[n] = "";
            keys[n] = url_decode(piece, len);
        }
        n++;
    }

    rc = query_parse(keys, values, n, &q, &pr);
    if (rc != 0) {
        if (rc != -1 || pr.code == NULL || strcmp(pr.code, "bad_request") != 0)
            abort();
    } else {
        check_accepted(&q, keys, values, n);
    }
    query_free(&q);
    free(text);
    return 0;
}
