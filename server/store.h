/*
 * store.h - the payments SQL: one run function per operation.
 *
 * Owns: every query paytrackr makes for requests, and turning rows into
 * the contract's JSON. Each store_run_* is a db_run_fn: it runs on a
 * database worker thread with job->arg pointing at its input struct below,
 * and leaves the answer (status, body, ETag, Location) in job->result.
 *
 * Every change is one transaction that updates `payments` first, then
 * inserts its event and NOTIFYs 'paytrackr_events' with the seq: the order
 * matters for paytrackr_stable_seq() (see the migration).
 */
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "payment.h"
#include "query.h"
#include "validate.h"

#define STORE_NOTIFY_CHANNEL "paytrackr_events"

/* The actor of a change as the event's JSON: {"name":…,"role":…}. */
#define STORE_ACTOR_MAX 128

/* An Idempotency-Key and what it answers for. Creates and refunds share
 * one key space per caller: the hash covers the route as well as the
 * canonical body, so a key reused on another route does not match. */
struct store_idempotency {
    char caller[24];
    char *key;             /* owned; NULL without the header */
    char request_hash[65]; /* SHA-256 of the route and canonical body */
};

struct store_create {
    struct store_idempotency idem;
    char actor[STORE_ACTOR_MAX];
    pt_payment payment; /* validated */
    /* Chosen by the server before the INSERT (store_run_create fills it
     * when empty), so that a commit whose answer was lost can be looked
     * up on a new connection. */
    char id[37];
    int backend_pid; /* the connection's backend while committing */
};

struct store_change {
    char id[37];
    int64_t if_match; /* -1 when absent */
    pt_payment patch; /* PATCH: validated values */
    unsigned changes; /* PT_CHANGE_* bits; unused by delete */
    char actor[STORE_ACTOR_MAX];
    char actor_name[65], actor_role[16];
};

struct store_refund {
    char id[37]; /* the payment */
    int64_t if_match;
    struct store_idempotency idem;
    pt_refund_request req; /* validated */
    char actor[STORE_ACTOR_MAX];
    char actor_name[65], actor_role[16];
};

struct store_get {
    char id[37];
    char refund_id[37]; /* GET .../refunds/{refund_id}; "" for the list */
};

/* Expired idempotency keys deleted per job. */
#define STORE_EXPIRE_BATCH 1000

struct store_expire {
    int deleted; /* out: rows deleted (a full batch: there may be more) */
};

/* Most events one read returns (the feed and a payment's audit trail). */
#define STORE_EVENTS_LIMIT_MAX 1000

/* A page of events: of one payment (its audit trail), or of all (the
 * feed, `id` ""). */
struct store_events {
    char id[37];
    int64_t after; /* events with a greater seq */
    int limit;
};

void store_run_create(struct db_job *job, PGconn *conn); /* arg: store_create */
/* job->resolve of a create whose COMMIT outcome is unknown: on a new
 * connection, answers 201 when the payment committed and 503 when it did
 * not; with conn NULL (the database stayed away), 503 naming the payment
 * to look up, without Retry-After. Clears job->resolve once decided. */
void store_resolve_create(struct db_job *job, PGconn *conn);
void store_run_get(struct db_job *job, PGconn *conn);            /* arg: store_get */
void store_run_list(struct db_job *job, PGconn *conn);           /* arg: list_query */
void store_run_patch(struct db_job *job, PGconn *conn);          /* arg: store_change */
void store_run_delete(struct db_job *job, PGconn *conn);         /* arg: store_change */
void store_run_payment_events(struct db_job *job, PGconn *conn); /* arg: store_events */
void store_run_feed(struct db_job *job, PGconn *conn);           /* arg: store_events */
void store_run_stats(struct db_job *job, PGconn *conn);          /* arg: list_query */
void store_run_refund(struct db_job *job, PGconn *conn);         /* arg: store_refund */
void store_run_refunds(struct db_job *job, PGconn *conn);        /* arg: store_get */
void store_run_ping(struct db_job *job, PGconn *conn);           /* arg: unused */
void store_run_expire_keys(struct db_job *job, PGconn *conn);    /* arg: store_expire */

/* One page of the stream's backlog: the events in (after, bound] whose
 * payment matches every non-NULL filter field, in seq order, at most
 * `limit`. */
struct store_event_page {
    int64_t after, bound;
    int limit;
    const char *status, *currency, *payer, *payee;
};

/* Called for each row of a page, in seq order (strings valid only during
 * the call). Returns 0 to go on, -1 when memory ran out. */
typedef int (*store_event_fn)(void *ctx, int64_t seq, const char *type, const char *at,
                              const char *actor, const char *payment, size_t payment_len,
                              const char *refund);

/* Reads a page of the stream's backlog (worker thread) and hands each row
 * to `fn`. Returns the number of rows, or -1 with `r` holding the error. */
int store_read_event_page(PGconn *conn, const struct store_event_page *in, store_event_fn fn,
                          void *ctx, struct db_result *r);

/*
 * Reads one page of the list query `q` (filters, order, cursor, at most
 * q->limit rows) and hands each payment to `row` with its cursor time (the
 * keyset position, for query_cursor_encode or q->cursor_time). `row`
 * returns 0 to go on, 1 to stop after this row, -1 out of memory. Returns
 * the number of rows handed over, or -1 with `r` filled. Worker thread.
 */
typedef int (*store_row_fn)(void *ctx, const pt_payment *p, const char *cursor_time);
int store_list_rows(PGconn *conn, const struct list_query *q, store_row_fn row, void *ctx,
                    struct db_result *r);

/* The reads the service loop may run itself (db_async.h): the same SQL
 * and answer as store_run_get and store_run_list, for `in` that outlives
 * the read. */
struct db_async_stmt;
void store_get_statement(const struct store_get *in, struct db_async_stmt *st);
void store_list_statement(const struct list_query *q, struct db_async_stmt *st);

void store_create_free(void *arg);
void store_change_free(void *arg);
void store_list_free(void *arg);
void store_refund_free(void *arg);

#endif
