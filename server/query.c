/*
 * query.c - list filter parsing and cursor encoding.
 */
#include "query.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "cursor.h"
#include "payment.h"
#include "proto.h"
#include "utf8.h"

/* Fills a bad_request problem; `fmt` holds at most one "%s", replaced by
 * `arg` (a fixed template: no printf format from data). */
static int bad(pt_problem *p, const char *field, const char *fmt, const char *arg)
{
    p->code = "bad_request";
    snprintf(p->field, sizeof p->field, "%s", field);
    const char *mark = strstr(fmt, "%s");
    if (mark)
        snprintf(p->message, sizeof p->message, "%.*s%s%s", (int) (mark - fmt), fmt, arg, mark + 2);
    else
        snprintf(p->message, sizeof p->message, "%s", fmt);
    return -1;
}

bool query_valid_uuid(const char *s)
{
    static const int dash[] = {8, 13, 18, 23};
    if (strlen(s) != 36)
        return false;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (s[i] != '-')
                return false;
            d++;
        } else if (!isxdigit((unsigned char) s[i])) {
            return false;
        }
    }
    return true;
}

static int parse_amount(const char *key, const char *v, int64_t *out, pt_problem *p)
{
    if (!*v || strlen(v) > 15)
        return bad(p, key, "%s must be an integer from 1 to 999999999999999", key);
    int64_t n = 0;
    for (const char *c = v; *c; c++) {
        if (!isdigit((unsigned char) *c))
            return bad(p, key, "%s must be an integer from 1 to 999999999999999", key);
        n = n * 10 + (*c - '0');
    }
    if (n < 1)
        return bad(p, key, "%s must be an integer from 1 to 999999999999999", key);
    *out = n;
    return 0;
}

static int check_text(const char *key, const char *v, pt_problem *p)
{
    size_t len = strlen(v);
    if (len == 0 || !pt_utf8_valid(v, len) || pt_utf8_has_control(v) ||
        pt_utf8_length(v) > PT_NAME_MAX)
        return bad(p, key, "%s must be 1 to 200 characters of text without control characters",
                   key);
    return 0;
}

/* '%', '_' and '\' match themselves: the user searches for text. */
static char *like_pattern(const char *q)
{
    size_t len = strlen(q);
    char *out = malloc(len * 2 + 3);
    if (!out)
        return NULL;
    char *w = out;
    *w++ = '%';
    for (const char *c = q; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\')
            *w++ = '\\';
        *w++ = *c;
    }
    *w++ = '%';
    *w = '\0';
    return out;
}

static int set_string(char **slot, const char *key, const char *v, pt_problem *p)
{
    *slot = strdup(v);
    if (!*slot)
        return bad(p, key, "out of memory reading %s", key);
    return 0;
}

static int parse_one(struct list_query *q, const char *key, const char *v, pt_problem *p)
{
    if (strcmp(key, "status") == 0) {
        pt_status st;
        if (!pt_status_parse(v, &st))
            return bad(p, key,
                       "status must be one of pending, settled, failed, cancelled, "
                       "refunded%s",
                       "");
        return set_string(&q->status, key, v, p);
    }
    if (strcmp(key, "method") == 0) {
        pt_method m;
        if (!pt_method_parse(v, &m))
            return bad(p, key, "method must be one of card, bank_transfer, cash, wallet, other%s",
                       "");
        return set_string(&q->method, key, v, p);
    }
    if (strcmp(key, "currency") == 0) {
        if (!pt_currency_find(v))
            return bad(p, key, "currency must be an active ISO 4217 code such as EUR%s", "");
        return set_string(&q->currency, key, v, p);
    }
    if (strcmp(key, "payer") == 0 || strcmp(key, "payee") == 0) {
        if (check_text(key, v, p) < 0)
            return -1;
        return set_string(strcmp(key, "payer") == 0 ? &q->payer : &q->payee, key, v, p);
    }
    if (strcmp(key, "q") == 0) {
        if (check_text(key, v, p) < 0)
            return -1;
        q->q_pattern = like_pattern(v);
        return q->q_pattern ? 0 : bad(p, key, "out of memory reading %s", key);
    }
    if (strcmp(key, "min_amount") == 0) {
        q->has_min = true;
        return parse_amount(key, v, &q->min_amount, p);
    }
    if (strcmp(key, "max_amount") == 0) {
        q->has_max = true;
        return parse_amount(key, v, &q->max_amount, p);
    }
    if (strcmp(key, "created_gte") == 0 || strcmp(key, "created_lt") == 0) {
        if (!pt_time_parse(v, NULL))
            return bad(p, key, "%s must be an RFC 3339 date-time such as 2026-11-24T12:00:00Z",
                       key);
        snprintf(strcmp(key, "created_gte") == 0 ? q->created_gte : q->created_lt, QUERY_TIME_MAX,
                 "%s", v);
        return 0;
    }
    if (strcmp(key, "order") == 0) {
        if (strcmp(v, "created_at.desc") == 0)
            q->asc = false;
        else if (strcmp(v, "created_at.asc") == 0)
            q->asc = true;
        else
            return bad(p, key, "order must be created_at.desc or created_at.asc%s", "");
        return 0;
    }
    if (strcmp(key, "limit") == 0) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || !isdigit((unsigned char) v[0]) || n < 1 ||
            n > QUERY_LIMIT_MAX)
            return bad(p, key, "limit must be an integer from 1 to 500%s", "");
        q->limit = (int) n;
        return 0;
    }
    return bad(p, key, "unknown query parameter %s", key);
}

static const char *const known_keys[] = {
    "status",     "currency",    "payer",      "payee", "method", "q",      "min_amount",
    "max_amount", "created_gte", "created_lt", "order", "limit",  "cursor",
};

int query_parse(const char *const *keys, const char *const *values, int n, struct list_query *out,
                pt_problem *problem)
{
    memset(out, 0, sizeof *out);
    out->limit = QUERY_LIMIT_DEFAULT;
    unsigned seen = 0;
    const char *cursor = NULL;
    for (int i = 0; i < n; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            if (strcmp(keys[i], known_keys[k]) == 0)
                bit = 1u << k;
        if (!bit) {
            char shown[48];
            snprintf(shown, sizeof shown, "%.40s", keys[i]);
            return bad(problem, shown, "unknown query parameter %s", shown);
        }
        if (seen & bit)
            return bad(problem, keys[i], "%s is given more than once", keys[i]);
        seen |= bit;
        if (strcmp(keys[i], "cursor") == 0) {
            cursor = values[i];
            continue;
        }
        if (parse_one(out, keys[i], values[i], problem) < 0)
            return -1;
    }
    if (out->has_min && out->has_max && out->min_amount > out->max_amount)
        return bad(problem, "min_amount", "min_amount must not exceed max_amount%s", "");
    /* The cursor is decoded last: it must match the order chosen. */
    if (cursor && query_cursor_decode(cursor, out) < 0)
        return bad(problem, "cursor", "cursor is not one this server issued for this order%s", "");
    return 0;
}

void query_free(struct list_query *q)
{
    free(q->status);
    free(q->currency);
    free(q->payer);
    free(q->payee);
    free(q->method);
    free(q->q_pattern);
    memset(q, 0, sizeof *q);
}

_Static_assert(PT_CURSOR_TIME_MAX <= QUERY_TIME_MAX, "a cursor's time fits the query");
_Static_assert(PT_CURSOR_ID_MAX <= sizeof(((struct list_query *) 0)->cursor_id),
               "a cursor's id fits the query");

void query_cursor_encode(bool asc, const char *time, const char *id, char *out, size_t cap)
{
    (void) pt_cursor_encode(asc, time, id, out, cap); /* "" when it does not fit */
}

int query_cursor_decode(const char *text, struct list_query *q)
{
    char time[PT_CURSOR_TIME_MAX], id[PT_CURSOR_ID_MAX];
    bool asc;

    if (pt_cursor_decode(text, &asc, time, id) != 0 || asc != q->asc)
        return -1;
    if (!pt_time_parse(time, NULL) || !query_valid_uuid(id))
        return -1;
    memcpy(q->cursor_time, time, strlen(time) + 1);
    memcpy(q->cursor_id, id, strlen(id) + 1);
    q->has_cursor = true;
    return 0;
}
