/*
 * stream_backlog.c - a subscriber's past events, read page by page by the
 * worker pool until its cursor reaches the listener's head (see
 * stream_int.h and docs/stream.md).
 */
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "server.h"
#include "store.h"
#include "stream_int.h"
#include "wsmsg.h"

/* ---- the backlog -------------------------------------------------------------- */

/* A backlog read: its inputs, and the frames it built (worker thread). */
struct backlog {
    struct stream_owner *owner;
    int64_t after, bound;
    int limit;
    char *status, *currency, *payer, *payee; /* the filter, copied */
    struct stream_msg **msgs;
    int n;
    int64_t last_seq;
};

static void backlog_free(void *arg)
{
    struct backlog *b = arg;
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        stream_msg_unref(b->msgs[i]);
    free(b->msgs);
    free(b->status);
    free(b->currency);
    free(b->payer);
    free(b->payee);
    free(b);
}

/* store_event_fn (worker thread): one event as a ready frame. */
static int backlog_row(void *ctx, int64_t seq, const char *type, const char *at, const char *actor,
                       const char *payment, size_t payment_len, const char *refund)
{
    struct backlog *b = ctx;
    const struct stream_event ev = {.seq = seq,
                                    .type = type,
                                    .at = at,
                                    .payment = payment,
                                    .payment_len = payment_len,
                                    .actor = actor,
                                    .refund = refund};
    struct stream_msg *m = stream_msg_event(&ev);
    if (!m || b->n >= b->limit) {
        stream_msg_unref(m);
        return -1;
    }
    b->msgs[b->n++] = m;
    b->last_seq = seq;
    return 0;
}

/* db_run_fn (worker thread): the matching events in (after, bound], in
 * seq order, at most `limit`, as ready frames. */
static void backlog_run(struct db_job *job, PGconn *conn)
{
    struct backlog *b = job->arg;
    b->msgs = calloc((size_t) b->limit, sizeof *b->msgs);
    if (!b->msgs) {
        db_result_error(&job->result, 500, "internal", "out of memory", NULL);
        return;
    }
    struct store_event_page page = {
        .after = b->after,
        .bound = b->bound,
        .limit = b->limit,
        .status = b->status,
        .currency = b->currency,
        .payer = b->payer,
        .payee = b->payee,
    };
    if (store_read_event_page(conn, &page, backlog_row, b, &job->result) < 0)
        return;
    job->result.status = 200;
}

static void go_live(struct stream_conn *c)
{
    c->state = STREAM_LIVE;
}

/* Service thread: queue a page of the backlog, then read on or go live. */
static void backlog_done(struct db_job *job)
{
    struct backlog *b = job->arg;
    struct stream_conn *c = b->owner->conn;
    stream_owner_put(b->owner);
    b->owner = NULL;
    if (!c) { /* the connection closed meanwhile */
        db_job_free(job);
        return;
    }
    c->backlog_job = false;
    if (job->result.status != 200) {
        /* The database is away: keep the subscriber, try again. */
        lws_set_timer_usecs(c->wsi, STREAM_RETRY_US);
        db_job_free(job);
        return;
    }
    for (int i = 0; i < b->n && !c->close_code; i++)
        stream_queue_push(c, b->msgs[i]);
    /* A short page means nothing else matches up to the bound. */
    c->cursor = b->n == b->limit ? b->last_seq : b->bound;
    db_job_free(job);
    stream_backlog_next(c);
}

static int page_size(const struct server *srv)
{
    int page = srv->cfg.ws_queue_max / 2;
    return page > STREAM_PAGE_MAX ? STREAM_PAGE_MAX : page < 1 ? 1 : page;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

/*
 * Service thread: if the cursor has reached the listener's head, the
 * connection goes live (no broadcast can come between this check and the
 * switch: both run here). Otherwise reads the next page of (cursor, head],
 * once the queue has room for a whole page, so a backlog never overflows
 * a client that reads.
 */
void stream_backlog_next(struct stream_conn *c)
{
    if (c->state != STREAM_BACKLOG || c->backlog_job || c->close_code)
        return;
    int64_t head = listener_head(c->srv);
    if (c->cursor >= head) {
        go_live(c);
        return;
    }
    int page = page_size(c->srv);
    if (c->q_count + (uint32_t) page > (uint32_t) c->srv->cfg.ws_queue_max)
        return; /* the writable callback calls again */
    struct backlog *b = calloc(1, sizeof *b);
    struct db_job *job = calloc(1, sizeof *job);
    const struct stream_filter *f = c->filter;
    if (b && f) {
        b->status = dup_opt(f->status);
        b->currency = dup_opt(f->currency);
        b->payer = dup_opt(f->payer);
        b->payee = dup_opt(f->payee);
    }
    if (!b || !job ||
        (f && ((f->status && !b->status) || (f->currency && !b->currency) ||
               (f->payer && !b->payer) || (f->payee && !b->payee)))) {
        backlog_free(b);
        free(job);
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    b->after = c->cursor;
    b->bound = head;
    b->limit = page;
    b->owner = stream_owner_get(c);
    if (!b->owner) {
        backlog_free(b);
        free(job);
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    job->run = backlog_run;
    job->done = backlog_done;
    job->arg = b;
    job->free_arg = backlog_free;
    job->owner = b->owner;
    if (db_pool_submit(c->srv->pool, job) < 0) {
        stream_owner_put(b->owner);
        b->owner = NULL;
        db_job_free(job);
        lws_set_timer_usecs(c->wsi, STREAM_RETRY_US); /* the pool is full */
        return;
    }
    c->backlog_job = true;
}
