/*
 * totals.c - the count and the sums of every payment matching the filter.
 *
 * The header's totals and the status bar's count are the server's figures
 * for the whole filter (GET /v1/stats with the list filters, v1.1), not
 * sums of the rows the window happens to hold. They are fetched when the
 * filter changes and when the stream (re)subscribes, and again after
 * events: an event may add, change or move any payment in or out of the
 * filter, and only the server can tell, so the answer is refetched rather
 * than patched. Refetches are debounced (the first one TOTALS_SETTLE_MS
 * after a quiet spell) and at most one is in flight and one starts per
 * TOTALS_MIN_GAP_MS, so a burst of events costs the server one query per
 * TUI per second at most. A v1 server's stats carry no "count" and ignore
 * filters: the TUI then says so and the view falls back to the loaded rows.
 */
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "pjson.h"
#include "tui.h"

#define TOTALS_SETTLE_MS  150
#define TOTALS_MIN_GAP_MS 1000
#define TOTALS_PATH_MAX   1024

static struct {
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul;
    bool scheduled;
    bool busy;      /* an answer for `tag` is awaited */
    bool again;     /* events arrived while it was in flight */
    bool v1_server; /* the stats answer had no count: do not refetch on events */
    uint64_t tag;
    int64_t last_sent;
    struct totals t;
} s;

void totals_init(struct lws_context *ctx)
{
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
}

void totals_shutdown(void)
{
    lws_sul_cancel(&s.sul);
    s.scheduled = false;
}

const struct totals *totals_get(void)
{
    return &s.t;
}

static void send_now(void)
{
    char query[TOTALS_PATH_MAX - 16], path[TOTALS_PATH_MAX];

    if (model_filter_query(&tui.model, false, query, sizeof query) != 0)
        return;
    snprintf(path, sizeof path, "/v1/stats%s%s", query[0] ? "?" : "", query);
    s.tag = ++tui.next_tag;
    s.last_sent = util_mono_ms();
    s.again = false;
    s.busy = http_request("GET", path, REQ_STATS, s.tag) == 0;
}

static void timer_cb(lws_sorted_usec_list_t *sul)
{
    (void) sul;
    s.scheduled = false;
    if (s.busy)
        s.again = true;
    else
        send_now();
}

/* Fetches again soon, no sooner than the minimum gap after the last. */
static void schedule(void)
{
    int64_t delay = TOTALS_SETTLE_MS, gap = s.last_sent + TOTALS_MIN_GAP_MS - util_mono_ms();

    if (s.scheduled || s.ctx == NULL)
        return;
    if (gap > delay)
        delay = gap;
    s.scheduled = true;
    lws_sul_schedule(s.ctx, 0, &s.sul, timer_cb, (lws_usec_t) delay * LWS_US_PER_MS);
}

void totals_refresh(bool filter_changed)
{
    if (filter_changed)
        memset(&s.t, 0, sizeof s.t);
    s.v1_server = false;
    lws_sul_cancel(&s.sul);
    s.scheduled = false;
    send_now(); /* an older answer in flight is dropped by its tag */
}

void totals_on_event(void)
{
    if (s.v1_server)
        return;
    if (s.busy)
        s.again = true;
    else
        schedule();
}

/* Adds one row of the answer; false when it is not one. */
static bool add_row(struct totals *t, const cJSON *row)
{
    const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "currency"));
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "status"));
    const cJSON *refunded = cJSON_GetObjectItemCaseSensitive(row, "amount_refunded");
    int64_t count, amount, back = 0;
    struct totals_cur *c = NULL;
    pt_status status;

    if (cur == NULL || strlen(cur) != 3 || st == NULL || !pt_status_parse(st, &status) ||
        !pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(row, "count"), &count) ||
        !pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(row, "amount"), &amount) ||
        (refunded != NULL && !pt_json_get_int64(refunded, &back)))
        return false;
    t->by_status[status] += count;
    for (int k = 0; k < t->ncur; k++)
        if (strcmp(t->cur[k].cur, cur) == 0)
            c = &t->cur[k];
    if (c == NULL) {
        if (t->ncur == TOTALS_CUR_MAX) {
            t->more++;
            return true;
        }
        c = &t->cur[t->ncur++];
        memcpy(c->cur, cur, sizeof c->cur);
    }
    c->count += count;
    if (__builtin_add_overflow(c->amount, amount, &c->amount) ||
        __builtin_add_overflow(c->refunded, back, &c->refunded))
        c->overflow = true;
    return true;
}

void totals_on_result(uint64_t tag, int status, const cJSON *body)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
    struct totals t;

    if (tag != s.tag)
        return; /* for a filter that is gone */
    s.busy = false;
    memset(&t, 0, sizeof t);
    if (status == 200 && cJSON_IsArray(data) &&
        !pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(body, "count"), &t.count)) {
        s.v1_server = true; /* figures for everything, whatever the filter */
        memset(&s.t, 0, sizeof s.t);
        return;
    }
    if (status == 200 && cJSON_IsArray(data)) {
        const cJSON *row;
        bool ok = true;

        cJSON_ArrayForEach(row, data)
        {
            ok = ok && add_row(&t, row);
        }
        if (ok) {
            t.known = true;
            s.t = t;
        }
    }
    /* On failure the last figures stay; events or a reconnect retry. */
    if (s.again)
        schedule();
    app_dirty();
}
