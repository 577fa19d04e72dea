/*
 * metrics.h - request counters and latency histograms for /metrics.
 *
 * Owns: the numbers behind the Prometheus text exposition. Updated and read
 * on the service thread only, so no locking; the pool's own figures are
 * read through db_pool_get_stats() when rendering.
 */
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 96
#define METRICS_BUCKETS    13

struct metrics_series {
    const char *route;  /* route template, static string */
    const char *method; /* static string */
    int status;
    uint64_t count;
    uint64_t buckets[METRICS_BUCKETS]; /* cumulative at render time */
    double sum_seconds;
};

struct metrics {
    struct metrics_series series[METRICS_MAX_SERIES];
    int series_count;
    uint64_t dropped; /* observations beyond METRICS_MAX_SERIES */
    uint64_t ws_connections;
    uint64_t ws_messages_out;
    uint64_t ws_slow_closed;
    uint64_t ws_ping_timeouts;  /* peers dropped for silence */
    uint64_t ws_answers_capped; /* results replaced by an error: too large or over budget */
    uint64_t ws_queued_bytes;   /* every stream queue together, a gauge */
    /* abuse limits (guard.c, ratelimit.c) */
    uint64_t connections_open; /* public port, a gauge */
    uint64_t connections_refused;
    uint64_t rate_limited_caller;
    uint64_t rate_limited_peer;
    uint64_t request_timeouts;
};

/* Records one finished request. `route` and `method` must be static. */
void metrics_observe(struct metrics *m, const char *route, const char *method, int status,
                     int64_t duration_us);

struct db_pool_stats;

/* Renders the exposition text; returns a malloc'd string (caller frees) or
 * NULL on allocation failure. */
char *metrics_render(const struct metrics *m, const struct db_pool_stats *pool, int ready,
                     int draining);

#endif
