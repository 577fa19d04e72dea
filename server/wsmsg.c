/*
 * wsmsg.c - the pure parts of reading a client message (see wsmsg.h).
 */
#include "wsmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "payment.h"
#include "pjson.h"

void wsmsg_filter_free(struct stream_filter *f)
{
    if (!f)
        return;
    free(f->status);
    free(f->currency);
    free(f->payer);
    free(f->payee);
    free(f);
}

/* Reads a filter string: absent or null is "any"; else a string that
 * `ok` accepts. Returns 0, -1 (bad value) or -2 (out of memory). */
static int filter_field(const cJSON *filter, const char *key, bool (*ok)(const char *), char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(filter, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || !ok(v->valuestring))
        return -1;
    *out = strdup(v->valuestring);
    return *out ? 0 : -2;
}

static bool status_ok(const char *s)
{
    pt_status st;
    return pt_status_parse(s, &st);
}

static bool currency_ok(const char *s)
{
    return pt_currency_find(s) != NULL;
}

static bool party_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= WSMSG_FILTER_TEXT_MAX;
}

static bool filter_key_known(const char *key)
{
    return strcmp(key, "status") == 0 || strcmp(key, "currency") == 0 ||
           strcmp(key, "payer") == 0 || strcmp(key, "payee") == 0;
}

int wsmsg_read_filter(const cJSON *filter, struct stream_filter **out, const char **bad)
{
    *out = NULL;
    if (!filter || cJSON_IsNull(filter))
        return 0;
    if (!cJSON_IsObject(filter)) {
        *bad = "filter must be an object";
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, filter)
    {
        if (!filter_key_known(it->string)) {
            *bad = "filter takes only status, currency, payer and payee";
            return -1;
        }
    }
    struct stream_filter *f = calloc(1, sizeof *f);
    if (!f)
        return -2;
    int rc;
    if ((rc = filter_field(filter, "status", status_ok, &f->status)) < 0)
        *bad = "filter.status must be a payment status";
    else if ((rc = filter_field(filter, "currency", currency_ok, &f->currency)) < 0)
        *bad = "filter.currency must be an active ISO 4217 code";
    else if ((rc = filter_field(filter, "payer", party_ok, &f->payer)) < 0)
        *bad = "filter.payer must be a non-empty string";
    else if ((rc = filter_field(filter, "payee", party_ok, &f->payee)) < 0)
        *bad = "filter.payee must be a non-empty string";
    if (rc < 0) {
        wsmsg_filter_free(f);
        return rc;
    }
    if (!f->status && !f->currency && !f->payer && !f->payee) {
        wsmsg_filter_free(f); /* only nulls: every event */
        return 0;
    }
    *out = f;
    return 0;
}

int wsmsg_read_list_args(const cJSON *query, struct wsmsg_list_args *out, const char **bad,
                         const char **field)
{
    out->n = 0;
    *field = NULL;
    if (query && !cJSON_IsNull(query) && !cJSON_IsObject(query)) {
        *bad = "query must be an object";
        return -1;
    }
    const cJSON *it;
    const cJSON *pairs = cJSON_IsObject(query) ? query : NULL;
    cJSON_ArrayForEach(it, pairs)
    {
        int n = out->n;
        if (n == WSMSG_LIST_ARGS_MAX) {
            *bad = "too many query parameters";
            return -2;
        }
        const char *literal = cJSON_IsNumber(it) ? pt_json_number_literal(it) : NULL;
        out->keys[n] = it->string;
        if (cJSON_IsString(it)) {
            out->values[n] = it->valuestring;
        } else if (literal && strlen(literal) < sizeof out->numbers[n]) {
            /* limit: 10 as well as "10" */
            snprintf(out->numbers[n], sizeof out->numbers[n], "%s", literal);
            out->values[n] = out->numbers[n];
        } else {
            *bad = "query values must be strings or numbers";
            *field = it->string;
            return -2;
        }
        out->n++;
    }
    return 0;
}
