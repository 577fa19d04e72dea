/*
 * metrics.c - Prometheus text format, by hand: a handful of series.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double bucket_le[METRICS_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   5};

void metrics_observe(struct metrics *m, const char *route, const char *method, int status,
                     int64_t duration_us)
{
    struct metrics_series *s = NULL;
    for (int i = 0; i < m->series_count; i++) {
        struct metrics_series *c = &m->series[i];
        if (c->status == status && strcmp(c->route, route) == 0 && strcmp(c->method, method) == 0) {
            s = c;
            break;
        }
    }
    if (!s) {
        if (m->series_count == METRICS_MAX_SERIES) {
            m->dropped++;
            return;
        }
        s = &m->series[m->series_count++];
        memset(s, 0, sizeof *s);
        s->route = route;
        s->method = method;
        s->status = status;
    }
    double secs = (double) duration_us / 1e6;
    s->count++;
    s->sum_seconds += secs;
    int b = 0;
    while (b < METRICS_BUCKETS - 1 && secs > bucket_le[b])
        b++;
    s->buckets[b]++;
}

struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t) n < o->cap - o->len) {
            o->len += (size_t) n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t) n;
        char *bigger = realloc(o->buf, cap);
        if (!bigger) {
            o->failed = 1;
            return;
        }
        o->buf = bigger;
        o->cap = cap;
    }
}

static void render_requests(struct out *o, const struct metrics *m)
{
    outf(o, "# HELP paytrackr_http_requests_total HTTP requests by route, method and status.\n"
            "# TYPE paytrackr_http_requests_total counter\n");
    for (int i = 0; i < m->series_count; i++) {
        const struct metrics_series *s = &m->series[i];
        outf(o, "paytrackr_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
             s->route, s->method, s->status, (unsigned long long) s->count);
    }
    outf(o, "# HELP paytrackr_http_request_duration_seconds HTTP request latency.\n"
            "# TYPE paytrackr_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->series_count; i++) {
        const struct metrics_series *s = &m->series[i];
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += s->buckets[b];
            char le[24];
            if (b < METRICS_BUCKETS - 1)
                snprintf(le, sizeof le, "%g", bucket_le[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            outf(o,
                 "paytrackr_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                 "status=\"%d\",le=\"%s\"} %llu\n",
                 s->route, s->method, s->status, le, (unsigned long long) cum);
        }
        outf(o,
             "paytrackr_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\","
             "status=\"%d\"} %.6f\n"
             "paytrackr_http_request_duration_seconds_count{route=\"%s\",method=\"%s\","
             "status=\"%d\"} %llu\n",
             s->route, s->method, s->status, s->sum_seconds, s->route, s->method, s->status,
             (unsigned long long) s->count);
    }
}

char *metrics_render(const struct metrics *m, const struct db_pool_stats *pool, int ready,
                     int draining)
{
    struct out o = {.buf = malloc(8192), .len = 0, .cap = 8192, .failed = 0};
    if (!o.buf)
        return NULL;
    o.buf[0] = '\0';
    render_requests(&o, m);
    outf(&o,
         "# HELP paytrackr_db_pool_size Database connections configured for requests.\n"
         "# TYPE paytrackr_db_pool_size gauge\npaytrackr_db_pool_size %d\n"
         "# HELP paytrackr_db_pool_connected Database connections currently open.\n"
         "# TYPE paytrackr_db_pool_connected gauge\npaytrackr_db_pool_connected %d\n"
         "# HELP paytrackr_db_pool_busy Connections running a query now.\n"
         "# TYPE paytrackr_db_pool_busy gauge\npaytrackr_db_pool_busy %d\n"
         "# HELP paytrackr_db_pool_queued Jobs waiting for a connection.\n"
         "# TYPE paytrackr_db_pool_queued gauge\npaytrackr_db_pool_queued %d\n"
         "# HELP paytrackr_db_errors_total Failed connections and queries.\n"
         "# TYPE paytrackr_db_errors_total counter\npaytrackr_db_errors_total %llu\n"
         "# HELP paytrackr_db_connects_total Connections opened.\n"
         "# TYPE paytrackr_db_connects_total counter\npaytrackr_db_connects_total %llu\n",
         pool->size, pool->connected, pool->busy, pool->queued, (unsigned long long) pool->errors,
         (unsigned long long) pool->connects);
    outf(&o,
         "# HELP paytrackr_db_read_connections Connections the event loop runs reads on.\n"
         "# TYPE paytrackr_db_read_connections gauge\npaytrackr_db_read_connections %d\n"
         "# HELP paytrackr_db_read_connected Of those, connected now.\n"
         "# TYPE paytrackr_db_read_connected gauge\npaytrackr_db_read_connected %d\n"
         "# HELP paytrackr_db_reads_in_flight Reads sent on them and not answered yet.\n"
         "# TYPE paytrackr_db_reads_in_flight gauge\npaytrackr_db_reads_in_flight %d\n",
         pool->read_connections, pool->read_connected, pool->reads_in_flight);
    outf(&o,
         "# HELP paytrackr_ready 1 when the server reports ready.\n"
         "# TYPE paytrackr_ready gauge\npaytrackr_ready %d\n"
         "# HELP paytrackr_draining 1 while shutting down.\n"
         "# TYPE paytrackr_draining gauge\npaytrackr_draining %d\n"
         "# HELP paytrackr_metrics_dropped_total Observations not recorded (too many series).\n"
         "# TYPE paytrackr_metrics_dropped_total counter\npaytrackr_metrics_dropped_total %llu\n",
         ready, draining, (unsigned long long) m->dropped);
    outf(&o,
         "# HELP paytrackr_ws_connections_total WebSocket connections accepted.\n"
         "# TYPE paytrackr_ws_connections_total counter\npaytrackr_ws_connections_total %llu\n"
         "# HELP paytrackr_ws_messages_sent_total WebSocket messages sent.\n"
         "# TYPE paytrackr_ws_messages_sent_total counter\npaytrackr_ws_messages_sent_total %llu\n"
         "# HELP paytrackr_ws_slow_closed_total Subscribers closed with 4008 for falling behind.\n"
         "# TYPE paytrackr_ws_slow_closed_total counter\npaytrackr_ws_slow_closed_total %llu\n"
         "# HELP paytrackr_ws_ping_timeouts_total WebSocket peers dropped after two ping "
         "intervals of silence.\n"
         "# TYPE paytrackr_ws_ping_timeouts_total counter\npaytrackr_ws_ping_timeouts_total %llu\n"
         "# HELP paytrackr_ws_answers_capped_total WebSocket results replaced by an error: over "
         "PAYTRACKR_WS_ANSWER_MAX_BYTES or PAYTRACKR_WS_QUEUED_BYTES_MAX.\n"
         "# TYPE paytrackr_ws_answers_capped_total counter\npaytrackr_ws_answers_capped_total "
         "%llu\n"
         "# HELP paytrackr_ws_queued_bytes Bytes queued on every WebSocket together.\n"
         "# TYPE paytrackr_ws_queued_bytes gauge\npaytrackr_ws_queued_bytes %llu\n",
         (unsigned long long) m->ws_connections, (unsigned long long) m->ws_messages_out,
         (unsigned long long) m->ws_slow_closed, (unsigned long long) m->ws_ping_timeouts,
         (unsigned long long) m->ws_answers_capped, (unsigned long long) m->ws_queued_bytes);
    outf(&o,
         "# HELP paytrackr_connections_open Connections open on the public port.\n"
         "# TYPE paytrackr_connections_open gauge\npaytrackr_connections_open %llu\n"
         "# HELP paytrackr_connections_refused_total Connections closed at accept: over "
         "PAYTRACKR_MAX_CONNECTIONS.\n"
         "# TYPE paytrackr_connections_refused_total counter\n"
         "paytrackr_connections_refused_total %llu\n"
         "# HELP paytrackr_rate_limited_total Requests answered 429, by the limit that applied.\n"
         "# TYPE paytrackr_rate_limited_total counter\n"
         "paytrackr_rate_limited_total{limit=\"caller\"} %llu\n"
         "paytrackr_rate_limited_total{limit=\"auth_failures\"} %llu\n"
         "# HELP paytrackr_request_timeouts_total Requests answered 408: body not received in "
         "time.\n"
         "# TYPE paytrackr_request_timeouts_total counter\npaytrackr_request_timeouts_total %llu\n",
         (unsigned long long) m->connections_open, (unsigned long long) m->connections_refused,
         (unsigned long long) m->rate_limited_caller, (unsigned long long) m->rate_limited_peer,
         (unsigned long long) m->request_timeouts);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
