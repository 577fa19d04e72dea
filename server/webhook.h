/*
 * webhook.h - the webhook delivery engine.
 *
 * Owns: one dedicated delivery thread with its own PostgreSQL connection
 * and a libcurl multi handle. The lws service thread never waits on it:
 * it only wakes it (webhook_wake, after the listener saw new events) and
 * reads its counters for /metrics under a mutex.
 *
 * The database is the source of truth (migration 0005): per endpoint,
 * `delivered_seq` (acknowledged), `attempt`, `next_attempt_at` and a
 * lease. The thread takes leases on due endpoints with FOR UPDATE SKIP
 * LOCKED (at most WH_SLOTS at once), reads up to WH_BATCH matching events
 * after `delivered_seq` and up to the stable seq, and sends one event per
 * endpoint at a time: the next as soon as the previous is acknowledged.
 * Acknowledgements and the attempts log are written back in batches (at
 * most every WH_RECORD_GAP_US, every endpoint in one statement), each
 * only while its lease, the endpoint's config_version and delivered_seq
 * are unchanged; a server that dies sends those few again elsewhere. A
 * failure releases the lease with `next_attempt_at` set from the retry
 * schedule, so any replica may send the retry; an endpoint with nothing
 * left to send is released too, after about a second (WH_IDLE_HOLD_US) in
 * which its next event is likely to come. The events of one read are
 * shared by the endpoints that wait for them: each event's columns come
 * once. Leases are renewed while held and expire
 * after PAYTRACKR_WEBHOOK_LEASE_SECONDS, so a dead replica's endpoints
 * pass to the others. Memory is bounded by WH_SLOTS * WH_BATCH events
 * whatever the backlog.
 */
#ifndef PT_WEBHOOK_H
#define PT_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define WH_SCHEDULE_MAX 32

struct server;

/* Settings read from the environment at start. */
struct wh_config {
    int schedule[WH_SCHEDULE_MAX]; /* seconds before retry 1, 2, ... */
    int schedule_len;
    bool allow_private; /* PAYTRACKR_WEBHOOK_ALLOW_PRIVATE=on */
    int lease_seconds;
};

/* Reads PAYTRACKR_WEBHOOK_RETRY_SCHEDULE, PAYTRACKR_WEBHOOK_ALLOW_PRIVATE
 * and PAYTRACKR_WEBHOOK_LEASE_SECONDS. Returns 0, or -1 with a line naming
 * the setting in `cause`. */
int webhook_config_load(struct wh_config *cfg, char *cause, size_t cause_len);

struct webhooks;

/* Starts the delivery thread (after the pool exists). NULL on failure. */
struct webhooks *webhook_start(struct server *srv);

/* New events may be there: look now rather than at the next tick.
 * `stable` is a stable seq the caller has just read (every seq up to it
 * is final: paytrackr_stream_bounds), which spares the thread reading it
 * again, or -1. Any thread; NULL is fine. */
void webhook_wake(struct webhooks *wh, int64_t stable);

/* The Prometheus lines for webhooks (attempts by outcome, per-endpoint
 * lag); malloc'd, the caller frees; NULL when out of memory. Any thread. */
char *webhook_metrics_text(struct webhooks *wh);

/* Stops the thread (transfers in flight are abandoned: their leases are
 * released so another replica resends them), frees everything. */
void webhook_stop(struct webhooks *wh);

#endif
