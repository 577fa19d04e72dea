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

struct store_feed {
    int64_t after;
    int limit;
};

void store_run_create(struct db_job *job, PGconn *conn);         /* arg: store_create */
void store_run_get(struct db_job *job, PGconn *conn);            /* arg: store_get */
void store_run_list(struct db_job *job, PGconn *conn);           /* arg: list_query */
void store_run_patch(struct db_job *job, PGconn *conn);          /* arg: store_change */
void store_run_delete(struct db_job *job, PGconn *conn);         /* arg: store_change */
void store_run_payment_events(struct db_job *job, PGconn *conn); /* arg: store_get */
void store_run_feed(struct db_job *job, PGconn *conn);           /* arg: store_feed */
void store_run_stats(struct db_job *job, PGconn *conn);          /* arg: list_query */
void store_run_refund(struct db_job *job, PGconn *conn);         /* arg: store_refund */
void store_run_refunds(struct db_job *job, PGconn *conn);        /* arg: store_get */
void store_run_ping(struct db_job *job, PGconn *conn);           /* arg: unused */

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

void store_create_free(void *arg);
void store_change_free(void *arg);
void store_list_free(void *arg);
void store_refund_free(void *arg);

#endif
