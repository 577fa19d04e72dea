/*
 * stream.c - WebSocket subscribers: messages, backlog, live events and
 * bounded queues.
 */
#include "stream.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "currency.h"
#include "listener.h"
#include "payment.h"
#include "pjson.h"
#include "ratelimit.h"
#include "server.h"
#include "validate.h"
#include "wsmsg.h"

/* Events read per backlog job (at most half the queue, see backlog_next). */
#define STREAM_PAGE_MAX 500
/* A failed backlog read is retried after this long. */
#define STREAM_RETRY_US (500 * LWS_US_PER_SEC / 1000)
/* How long a closing connection may take to take its close frame. */
#define STREAM_CLOSE_GRACE_S 5
/* The largest WebSocket frame header a server writes (no mask). */
#define FRAME_HDR_MAX  10
#define REQUEST_ID_MAX 200

/* ---- reference-counted frames --------------------------------------------- */

/* A complete server-to-client text frame, shared by every queue it is on.
 * `frame` has LWS_PRE bytes before it, as lws_write() wants. */
struct stream_msg {
    uint32_t refs;
    uint32_t len; /* header + payload */
    unsigned char *frame;
    unsigned char data[]; /* LWS_PRE, room for a header, the payload */
};

/* Allocates a message for `payload_len` bytes (refs 1); the payload goes at
 * *payload, then msg_seal(). NULL when out of memory. Any thread. */
static struct stream_msg *msg_alloc(size_t payload_len, unsigned char **payload)
{
    if (payload_len > UINT32_MAX - FRAME_HDR_MAX)
        return NULL;
    struct stream_msg *m = malloc(sizeof *m + LWS_PRE + FRAME_HDR_MAX + payload_len);
    if (!m)
        return NULL;
    m->refs = 1;
    *payload = m->data + LWS_PRE + FRAME_HDR_MAX;
    return m;
}

/* Writes the frame header in front of the payload (FIN, text opcode, the
 * server's frames are never masked). */
static void msg_seal(struct stream_msg *m, size_t payload_len)
{
    unsigned char *payload = m->data + LWS_PRE + FRAME_HDR_MAX;
    size_t hdr = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
    unsigned char *f = payload - hdr;
    f[0] = 0x81;
    if (hdr == 2) {
        f[1] = (unsigned char) payload_len;
    } else if (hdr == 4) {
        f[1] = 126;
        f[2] = (unsigned char) (payload_len >> 8);
        f[3] = (unsigned char) payload_len;
    } else {
        f[1] = 127;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (unsigned char) ((uint64_t) payload_len >> (56 - 8 * i));
    }
    m->frame = f;
    m->len = (uint32_t) (hdr + payload_len);
}

static struct stream_msg *msg_from_text(const char *text, size_t len)
{
    unsigned char *p;
    struct stream_msg *m = msg_alloc(len, &p);
    if (!m)
        return NULL;
    memcpy(p, text, len);
    msg_seal(m, len);
    return m;
}

static void msg_unref(struct stream_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static size_t put(unsigned char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/* {"type":"event","event":TYPE,"seq":N,"at":AT,"actor":{...}|null,
 * "payment":{...}[,"refund":{...}]}. The strings come from our own table
 * (type is a CHECKed word, at a formatted timestamp, actor, payment and
 * refund JSON this server wrote), so no escaping is needed. `actor` and
 * `refund` may be NULL. Any thread. */
static struct stream_msg *msg_event(int64_t seq, const char *type, const char *at,
                                    const char *actor, const char *payment, size_t payment_len,
                                    const char *refund)
{
    char seqtext[24];
    int seqlen = snprintf(seqtext, sizeof seqtext, "%" PRId64, seq);
    static const char a[] = "{\"type\":\"event\",\"event\":\"",
                      b[] = "\",\"seq\":", c[] = ",\"at\":\"",
                      ac[] = "\",\"actor\":", d[] = ",\"payment\":", rf[] = ",\"refund\":";
    if (!actor)
        actor = "null";
    size_t tlen = strlen(type), atlen = strlen(at), aclen = strlen(actor);
    size_t rflen = refund ? strlen(refund) : 0;
    size_t len = (sizeof a - 1) + tlen + (sizeof b - 1) + (size_t) seqlen + (sizeof c - 1) + atlen +
                 (sizeof ac - 1) + aclen + (sizeof d - 1) + payment_len +
                 (refund ? sizeof rf - 1 + rflen : 0) + 1;
    unsigned char *p;
    struct stream_msg *m = msg_alloc(len, &p);
    if (!m)
        return NULL;
    size_t o = 0;
    o += put(p + o, a, sizeof a - 1);
    o += put(p + o, type, tlen);
    o += put(p + o, b, sizeof b - 1);
    o += put(p + o, seqtext, (size_t) seqlen);
    o += put(p + o, c, sizeof c - 1);
    o += put(p + o, at, atlen);
    o += put(p + o, ac, sizeof ac - 1);
    o += put(p + o, actor, aclen);
    o += put(p + o, d, sizeof d - 1);
    o += put(p + o, payment, payment_len);
    if (refund) {
        o += put(p + o, rf, sizeof rf - 1);
        o += put(p + o, refund, rflen);
    }
    p[o++] = '}';
    msg_seal(m, o);
    return m;
}

/* ---- filters ----------------------------------------------------------------- */

static bool field_match(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

static bool filter_match(const struct stream_filter *f, const char *status, const char *currency,
                         const char *payer, const char *payee)
{
    return !f || (field_match(f->status, status) && field_match(f->currency, currency) &&
                  field_match(f->payer, payer) && field_match(f->payee, payee));
}

/* ---- jobs' handle on a connection ------------------------------------------- */

/* Jobs outlive connections: they hold this handle, whose `conn` is cleared
 * when the connection closes; the last holder frees it. */
struct stream_owner {
    struct stream_conn *conn;
    unsigned refs;
};

static struct stream_owner *owner_get(struct stream_conn *c)
{
    if (!c->owner) {
        c->owner = calloc(1, sizeof *c->owner);
        if (!c->owner)
            return NULL;
        c->owner->conn = c;
        c->owner->refs = 1; /* the connection's own */
    }
    c->owner->refs++;
    return c->owner;
}

static void owner_put(struct stream_owner *o)
{
    if (o && --o->refs == 0)
        free(o);
}

/* ---- the outgoing queue -------------------------------------------------------- */

static void close_with(struct stream_conn *c, uint16_t code, bool drop);

static void queue_clear(struct stream_conn *c)
{
    while (c->q_count) {
        msg_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_count--;
    }
    free(c->q);
    c->q = NULL;
    c->q_head = c->q_cap = 0;
    c->q_bytes = 0;
}

/* Queues a reference to `m` (taking a new one). A full queue closes the
 * connection with 4008 instead. */
static void enqueue(struct stream_conn *c, struct stream_msg *m)
{
    if (c->close_code)
        return;
    uint32_t max = (uint32_t) c->srv->cfg.ws_queue_max;
    if (c->q_count >= max || c->q_bytes + m->len > STREAM_QUEUE_BYTES_MAX) {
        c->srv->metrics.ws_slow_closed++;
        close_with(c, STREAM_CLOSE_TOO_SLOW, true);
        return;
    }
    if (c->q_count == c->q_cap) {
        uint32_t ncap = c->q_cap ? c->q_cap * 2 : 8;
        if (ncap > max)
            ncap = max;
        struct stream_msg **nq = malloc(ncap * sizeof *nq);
        if (!nq) {
            close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
            return;
        }
        for (uint32_t i = 0; i < c->q_count; i++)
            nq[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = nq;
        c->q_head = 0;
        c->q_cap = ncap;
    }
    m->refs++;
    c->q[(c->q_head + c->q_count) % c->q_cap] = m;
    c->q_count++;
    c->q_bytes += m->len;
    if (c->q_count == 1)
        lws_callback_on_writable(c->wsi);
}

/* Queues a message made for this connection alone (takes it over). */
static void enqueue_own(struct stream_conn *c, struct stream_msg *m)
{
    if (!m) {
        close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    enqueue(c, m);
    msg_unref(m);
}

static struct stream_msg *queue_pop(struct stream_conn *c)
{
    struct stream_msg *m = c->q[c->q_head];
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_count--;
    c->q_bytes -= m->len;
    if (c->q_count == 0) {
        c->q_head = 0;
        if (c->q_cap > 16) { /* an idle connection keeps a small ring */
            free(c->q);
            c->q = NULL;
            c->q_cap = 0;
        }
    }
    return m;
}

/* Writes queued frames, coalesced into one write of at most
 * STREAM_BATCH_BYTES (a longer frame goes alone). Service thread. Returns
 * 0 or -1 (the connection is broken). */
static int write_batch(struct stream_conn *c)
{
    if (!c->q_count)
        return 0;
    struct stream_msg *first = c->q[c->q_head];
    int rc;
    unsigned sent = 0;
    if (first->len > STREAM_BATCH_BYTES / 2 || c->q_count == 1) {
        rc = lws_write(c->wsi, first->frame, first->len, LWS_WRITE_RAW) < (int) first->len;
        msg_unref(queue_pop(c));
        sent = 1;
    } else {
        static unsigned char batch[LWS_PRE + STREAM_BATCH_BYTES]; /* service thread only */
        size_t used = 0;
        while (c->q_count && used + c->q[c->q_head]->len <= STREAM_BATCH_BYTES) {
            struct stream_msg *m = queue_pop(c);
            memcpy(batch + LWS_PRE + used, m->frame, m->len);
            used += m->len;
            msg_unref(m);
            sent++;
        }
        rc = lws_write(c->wsi, batch + LWS_PRE, used, LWS_WRITE_RAW) < (int) used;
    }
    c->srv->metrics.ws_messages_out += sent;
    if (rc)
        return -1;
    if (c->q_count)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Marks the connection for closing with `code`; `drop` discards what is
 * queued (a subscriber that fell behind), else it is sent first. The close
 * itself happens in the writable callback, or by timeout when the peer
 * never reads again. */
static void close_with(struct stream_conn *c, uint16_t code, bool drop)
{
    if (c->close_code)
        return;
    c->close_code = code;
    c->close_drop = drop;
    if (drop)
        queue_clear(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, STREAM_CLOSE_GRACE_S);
    lws_callback_on_writable(c->wsi);
}

/* ---- messages to the client ------------------------------------------------- */

static struct stream_msg *msg_from_json(cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    struct stream_msg *m = msg_from_text(text, strlen(text));
    free(text);
    return m;
}

/* {"type":"error","code":…,"message":…[,"request_id":…]}: a bad message;
 * the connection stays open. */
static void send_error(struct stream_conn *c, const char *code, const char *message,
                       const char *request_id)
{
    cJSON *root = cJSON_CreateObject();
    if (root) {
        cJSON_AddStringToObject(root, "type", "error");
        cJSON_AddStringToObject(root, "code", code);
        cJSON_AddStringToObject(root, "message", message);
        if (request_id)
            cJSON_AddStringToObject(root, "request_id", request_id);
    }
    enqueue_own(c, msg_from_json(root));
}

/* {"type":"result","request_id":…,"status":…,"body":…}: the HTTP call's
 * status and body. */
static void send_result(struct stream_conn *c, const char *request_id, const struct db_result *r)
{
    cJSON *root = cJSON_CreateObject();
    if (root) {
        cJSON_AddStringToObject(root, "type", "result");
        cJSON_AddStringToObject(root, "request_id", request_id);
        cJSON_AddNumberToObject(root, "status", r->status);
        if (r->body)
            cJSON_AddItemToObject(root, "body", cJSON_CreateRaw(r->body));
        else
            cJSON_AddNullToObject(root, "body");
    }
    enqueue_own(c, msg_from_json(root));
}

static void send_subscribed(struct stream_conn *c, int64_t head)
{
    char text[64];
    int n = snprintf(text, sizeof text, "{\"type\":\"subscribed\",\"head\":%" PRId64 "}", head);
    enqueue_own(c, msg_from_text(text, (size_t) n));
}

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
        msg_unref(b->msgs[i]);
    free(b->msgs);
    free(b->status);
    free(b->currency);
    free(b->payer);
    free(b->payee);
    free(b);
}

/* db_run_fn (worker thread): the matching events in (after, bound], in
 * seq order, at most `limit`, as ready frames. */
static void backlog_run(struct db_job *job, PGconn *conn)
{
    struct backlog *b = job->arg;
    char after[24], bound[24], limit[16];
    snprintf(after, sizeof after, "%" PRId64, b->after);
    snprintf(bound, sizeof bound, "%" PRId64, b->bound);
    snprintf(limit, sizeof limit, "%d", b->limit);
    const char *params[7] = {after, bound, b->status, b->currency, b->payer, b->payee, limit};
    /* ORDER BY payment_events.seq: a bare `seq` would sort by the text
     * output column ("10" < "9"). */
    PGresult *res = PQexecParams(
        conn,
        "SELECT seq::text, type, "
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payment::text, "
        "actor::text, refund::text FROM payment_events WHERE seq > $1::bigint AND seq <= "
        "$2::bigint "
        "AND ($3::text IS NULL OR payment->>'status' = $3) "
        "AND ($4::text IS NULL OR payment->>'currency' = $4) "
        "AND ($5::text IS NULL OR payment->>'payer' = $5) "
        "AND ($6::text IS NULL OR payment->>'payee' = $6) "
        "ORDER BY payment_events.seq LIMIT $7::int",
        7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(&job->result, conn, res);
        return;
    }
    int rows = PQntuples(res);
    b->msgs = rows ? calloc((size_t) rows, sizeof *b->msgs) : NULL;
    if (rows && !b->msgs) {
        PQclear(res);
        db_result_error(&job->result, 500, "internal", "out of memory", NULL);
        return;
    }
    for (int i = 0; i < rows; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        struct stream_msg *m = msg_event(seq, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                                         PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
                                         PQgetvalue(res, i, 3), (size_t) PQgetlength(res, i, 3),
                                         PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5));
        if (!m) {
            PQclear(res);
            db_result_error(&job->result, 500, "internal", "out of memory", NULL);
            return;
        }
        b->msgs[b->n++] = m;
        b->last_seq = seq;
    }
    PQclear(res);
    job->result.status = 200;
}

static void backlog_next(struct stream_conn *c);

static void go_live(struct stream_conn *c)
{
    c->state = STREAM_LIVE;
}

/* Service thread: queue a page of the backlog, then read on or go live. */
static void backlog_done(struct db_job *job)
{
    struct backlog *b = job->arg;
    struct stream_conn *c = b->owner->conn;
    owner_put(b->owner);
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
        enqueue(c, b->msgs[i]);
    /* A short page means nothing else matches up to the bound. */
    c->cursor = b->n == b->limit ? b->last_seq : b->bound;
    db_job_free(job);
    backlog_next(c);
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
static void backlog_next(struct stream_conn *c)
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
        close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    b->after = c->cursor;
    b->bound = head;
    b->limit = page;
    b->owner = owner_get(c);
    if (!b->owner) {
        backlog_free(b);
        free(job);
        close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    job->run = backlog_run;
    job->done = backlog_done;
    job->arg = b;
    job->free_arg = backlog_free;
    job->owner = b->owner;
    if (db_pool_submit(c->srv->pool, job) < 0) {
        owner_put(b->owner);
        b->owner = NULL;
        db_job_free(job);
        lws_set_timer_usecs(c->wsi, STREAM_RETRY_US); /* the pool is full */
        return;
    }
    c->backlog_job = true;
}

/* Answers the subscribe and starts the backlog (head known). `after` -1
 * means "from the head". */
static void subscribe_start(struct stream_conn *c, int64_t after)
{
    int64_t head = listener_head(c->srv);
    send_subscribed(c, head);
    c->cursor = after < 0 ? head : after;
    c->state = STREAM_BACKLOG;
    backlog_next(c);
}

void stream_head_known(struct server *srv)
{
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next)
        if (c->state == STREAM_WAIT_HEAD && !c->close_code)
            subscribe_start(c, c->cursor);
}

void stream_broadcast(struct server *srv, const struct stream_event *ev)
{
    struct stream_msg *m = NULL;
    bool failed = false;
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next) {
        if (c->state != STREAM_LIVE || c->close_code || ev->seq <= c->cursor)
            continue;
        c->cursor = ev->seq;
        if (!filter_match(c->filter, ev->status, ev->currency, ev->payer, ev->payee))
            continue;
        if (!m && !failed) {
            m = msg_event(ev->seq, ev->type, ev->at, ev->actor, ev->payment, ev->payment_len,
                          ev->refund);
            failed = !m;
        }
        if (m) {
            enqueue(c, m);
        } else {
            /* Never skip silently: the client resumes with `after`. */
            close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        }
    }
    msg_unref(m);
}

/* ---- client messages ----------------------------------------------------------- */

/* An operation waiting for the pool: who asked, and the request id. */
struct op_ctx {
    struct stream_owner *owner;
    char request_id[REQUEST_ID_MAX + 1];
};

static void op_done(struct db_job *job)
{
    struct op_ctx *ctx = job->owner;
    struct stream_conn *c = ctx->owner->conn;
    if (c) {
        c->ops--;
        send_result(c, ctx->request_id, &job->result);
    }
    owner_put(ctx->owner);
    free(ctx);
    db_job_free(job);
}

/* Submits an operation's job, or answers at once (`now`). */
static void op_submit(struct stream_conn *c, const char *request_id, struct db_job *job,
                      struct db_result *now)
{
    if (!job) {
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    struct op_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx)
        ctx->owner = owner_get(c);
    if (!ctx || !ctx->owner) {
        free(ctx);
        db_job_free(job);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    snprintf(ctx->request_id, sizeof ctx->request_id, "%s", request_id);
    job->done = op_done;
    job->owner = ctx;
    if (db_pool_submit(c->srv->pool, job) < 0) {
        owner_put(ctx->owner);
        free(ctx);
        db_job_free(job);
        db_result_error(now, 503, "unavailable", "the server is busy, retry later", NULL);
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    c->ops++;
}

/*
 * The raw text of member `key`, which must be an object: create and update
 * hand the "payment" and "changes" objects to the HTTP code as the very
 * bytes the client sent, so they are judged exactly as an HTTP body would
 * be (number literals included). The parser kept that text.
 */
static int object_span(const cJSON *root, const char *key, const char **start, size_t *span)
{
    const char *raw = pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(root, key));
    if (!raw)
        return -1;
    *start = raw;
    *span = strlen(raw);
    return 0;
}

static void handle_create(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
    if (key && !cJSON_IsNull(key) && !cJSON_IsString(key)) {
        send_error(c, "bad_request", "idempotency_key must be a string", rid);
        return;
    }
    const char *body;
    size_t blen;
    if (object_span(root, "payment", &body, &blen) < 0) {
        send_error(c, "bad_request", "create needs a payment object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    struct db_job *job = api_prepare_create(&c->who, body, blen,
                                            cJSON_IsString(key) ? key->valuestring : NULL, &now);
    op_submit(c, rid, job, &now);
}

static void handle_update(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "if_version");
    if (!cJSON_IsString(id)) {
        send_error(c, "bad_request", "update needs the payment id as a string", rid);
        return;
    }
    int64_t if_version = -1;
    if (ver && !cJSON_IsNull(ver) && (!pt_json_get_int64(ver, &if_version) || if_version < 0)) {
        send_error(c, "bad_request", "if_version must be a non-negative integer", rid);
        return;
    }
    const char *body;
    size_t blen;
    if (object_span(root, "changes", &body, &blen) < 0) {
        send_error(c, "bad_request", "update needs a changes object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid, api_prepare_patch(&c->who, id->valuestring, if_version, body, blen, &now),
              &now);
}

/* {"type":"refund","request_id","id","if_version"?,"idempotency_key"?,
 * "refund"?}: POST /v1/payments/{id}/refunds over the socket (v1.1). */
static void handle_refund(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "if_version");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
    if (!cJSON_IsString(id)) {
        send_error(c, "bad_request", "refund needs the payment id as a string", rid);
        return;
    }
    int64_t if_version = -1;
    if (ver && !cJSON_IsNull(ver) && (!pt_json_get_int64(ver, &if_version) || if_version < 0)) {
        send_error(c, "bad_request", "if_version must be a non-negative integer", rid);
        return;
    }
    if (key && !cJSON_IsNull(key) && !cJSON_IsString(key)) {
        send_error(c, "bad_request", "idempotency_key must be a string", rid);
        return;
    }
    const char *body = "";
    size_t blen = 0;
    const cJSON *refund = cJSON_GetObjectItemCaseSensitive(root, "refund");
    if (refund && !cJSON_IsNull(refund) && object_span(root, "refund", &body, &blen) < 0) {
        send_error(c, "bad_request", "refund must be an object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid,
              api_prepare_refund(&c->who, id->valuestring, if_version, body, blen,
                                 cJSON_IsString(key) ? key->valuestring : NULL, &now),
              &now);
}

static void handle_list(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    struct wsmsg_list_args args;
    const char *bad = NULL, *field = NULL;
    int rc =
        wsmsg_read_list_args(cJSON_GetObjectItemCaseSensitive(root, "query"), &args, &bad, &field);
    if (rc == -1) {
        send_error(c, "bad_request", bad, rid);
        return;
    }
    if (rc < 0) {
        db_result_error(&now, 400, "bad_request", bad, field);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid, api_prepare_list(args.keys, args.values, args.n, &now), &now);
}

static void handle_subscribe(struct stream_conn *c, const cJSON *root)
{
    if (c->state != STREAM_OPEN) {
        send_error(c, "already_subscribed", "this connection is subscribed already", NULL);
        return;
    }
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(root, "after");
    int64_t from = -1;
    if (after && !cJSON_IsNull(after) && (!pt_json_get_int64(after, &from) || from < 0)) {
        send_error(c, "bad_request", "after must be a seq (a non-negative integer) or null", NULL);
        return;
    }
    struct stream_filter *f = NULL;
    const char *bad = NULL;
    int rc = wsmsg_read_filter(cJSON_GetObjectItemCaseSensitive(root, "filter"), &f, &bad);
    if (rc == -2) {
        close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    if (rc < 0) {
        send_error(c, "bad_request", bad, NULL);
        return;
    }
    c->filter = f;
    if (listener_head(c->srv) < 0) {
        /* The listener has not connected yet: start when it has. */
        c->state = STREAM_WAIT_HEAD;
        c->cursor = from;
        return;
    }
    subscribe_start(c, from);
}

/* One complete client message (c->rx, c->rx_len). */
static void handle_message(struct stream_conn *c)
{
    pt_problem problem;
    cJSON *root = pt_json_parse_object(c->rx, c->rx_len, &problem);
    if (!root) {
        send_error(c, strcmp(problem.code, "internal") == 0 ? "internal" : "malformed_json",
                   problem.message[0] ? problem.message : "the message is not a JSON object", NULL);
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(root, "request_id");
    const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
    int wait;
    if (!t) {
        send_error(c, "bad_request", "a message needs a string type", NULL);
    } else if (strcmp(t, "subscribe") == 0) {
        handle_subscribe(c, root);
    } else if (strcmp(t, "create") == 0 || strcmp(t, "update") == 0 || strcmp(t, "list") == 0 ||
               strcmp(t, "refund") == 0) {
        if (!cJSON_IsString(rid) || !rid->valuestring[0] ||
            strlen(rid->valuestring) > REQUEST_ID_MAX) {
            send_error(c, "bad_request", "request_id must be a string of 1 to 200 bytes", NULL);
        } else if (c->ops >= STREAM_OPS_MAX) {
            struct db_result now = {0};
            db_result_error(&now, 429, "rate_limited",
                            "too many operations in flight on this connection", NULL);
            now.retry_after = 1;
            op_submit(c, rid->valuestring, NULL, &now);
        } else if ((wait = ratelimit_caller(c->srv, c->who.caller)) > 0) {
            /* Each operation is a request like its HTTP twin and takes a
             * token from the same bucket. (subscribe does not: it is once
             * per connection, and the upgrade passed the peer limit.) */
            struct db_result now = {0};
            c->srv->metrics.rate_limited_caller++;
            db_result_error(&now, 429, "rate_limited", RL_CALLER_MESSAGE, NULL);
            now.retry_after = wait;
            op_submit(c, rid->valuestring, NULL, &now);
        } else if (t[0] == 'c') {
            handle_create(c, root, rid->valuestring);
        } else if (t[0] == 'u') {
            handle_update(c, root, rid->valuestring);
        } else if (t[0] == 'r') {
            handle_refund(c, root, rid->valuestring);
        } else {
            handle_list(c, root, rid->valuestring);
        }
    } else {
        send_error(c, "unknown_type", "type must be subscribe, create, update, refund or list",
                   cJSON_IsString(rid) && strlen(rid->valuestring) <= REQUEST_ID_MAX
                       ? rid->valuestring
                       : NULL);
    }
    cJSON_Delete(root);
}

/* A piece of a client message: assembled up to the size limit; a longer
 * one is dropped as it arrives and answered with an error at its end. */
static void on_receive(struct stream_conn *c, const char *in, size_t len)
{
    if (!c->rx_active) {
        c->rx_active = true;
        c->rx_too_big = false;
        c->rx_binary = lws_frame_is_binary(c->wsi);
        c->rx_len = 0;
    }
    size_t max = c->srv->cfg.max_body_bytes;
    if (!c->rx_too_big && !c->rx_binary) {
        if (c->rx_len + len > max) {
            c->rx_too_big = true;
            free(c->rx);
            c->rx = NULL;
            c->rx_len = 0;
        } else if (len) {
            char *bigger = realloc(c->rx, c->rx_len + len + 1);
            if (!bigger) {
                c->rx_too_big = true;
            } else {
                c->rx = bigger;
                memcpy(c->rx + c->rx_len, in, len);
                c->rx_len += len;
                c->rx[c->rx_len] = '\0';
            }
        }
    }
    if (!lws_is_final_fragment(c->wsi))
        return;
    c->rx_active = false;
    if (c->close_code) {
        /* closing: nothing more is answered */
    } else if (c->rx_binary) {
        send_error(c, "bad_request", "send JSON in text frames", NULL);
    } else if (c->rx_too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "a message may be at most %zu bytes", max);
        send_error(c, "payload_too_large", msg, NULL);
    } else {
        handle_message(c);
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}

/* ---- the upgrade ---------------------------------------------------------------- */

/* Answers the upgrade request with an HTTP error and refuses it. The wsi
 * has just been switched to the ws role, whose raw writes go straight out
 * (a few hundred bytes on a fresh connection). */
static int refuse(struct lws *wsi, int status, const char *reason, const char *code,
                  const char *message, int retry_after)
{
    char *body = pt_error_body(code, message, NULL);
    char retry[32] = "";
    if (retry_after > 0)
        snprintf(retry, sizeof retry, "retry-after: %d\r\n", retry_after);
    unsigned char buf[LWS_PRE + 1024];
    int n = snprintf((char *) buf + LWS_PRE, sizeof buf - LWS_PRE,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n%s%s"
                     "connection: close\r\n\r\n%s",
                     status, reason, body ? strlen(body) : 0,
                     status == 401 ? "www-authenticate: Bearer realm=\"paytrackr\"\r\n" : "", retry,
                     body ? body : "");
    free(body);
    if (n > 0 && (size_t) n < sizeof buf - LWS_PRE)
        lws_write(wsi, buf + LWS_PRE, (size_t) n, LWS_WRITE_RAW);
    return 1;
}

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: only /v1/stream, only with a
 * valid token (Authorization header, or ?access_token= for browsers). */
static int on_filter(struct server *srv, struct stream_conn *c, struct lws *wsi)
{
    char path[64];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int) sizeof path ||
        lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0 ||
        strcmp(path, "/v1/stream") != 0)
        return refuse(wsi, 404, "Not Found", "not_found", "the stream is at GET /v1/stream", 0);
    if (srv->draining)
        return refuse(wsi, 503, "Service Unavailable", "unavailable", "the server is shutting down",
                      1);
    char header[512];
    const char *value = NULL;
    int hlen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hlen > 0 && hlen < (int) sizeof header &&
        lws_hdr_copy(wsi, header, sizeof header, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        value = header;
    int rc;
    if (value || srv->cfg.auth == CONFIG_AUTH_OFF) {
        rc = auth_check(&srv->cfg, value, &c->who);
    } else {
        char arg[512];
        const char *token = lws_get_urlarg_by_name(wsi, "access_token=", arg, sizeof arg);
        rc = token ? auth_check_token(&srv->cfg, token, strlen(token), &c->who) : -1;
        memset(arg, 0, sizeof arg);
    }
    memset(header, 0, sizeof header);
    /* The same per-address limits as an HTTP request's authentication. */
    if (rc < 0) {
        int wait = ratelimit_peer_failed(srv, wsi);
        if (wait)
            return refuse(wsi, 429, "Too Many Requests", "rate_limited", RL_PEER_MESSAGE, wait);
        return refuse(wsi, 401, "Unauthorized", "unauthenticated",
                      "send Authorization: Bearer <token> or ?access_token= with a valid token", 0);
    }
    int wait = ratelimit_peer_wait(srv, wsi, c->who.caller);
    if (wait)
        return refuse(wsi, 429, "Too Many Requests", "rate_limited", RL_PEER_MESSAGE, wait);
    return 0;
}

static void link_conn(struct stream_conn *c)
{
    struct server *srv = c->srv;
    c->next = srv->stream_conns;
    c->prev = NULL;
    if (c->next)
        c->next->prev = c;
    srv->stream_conns = c;
    c->linked = true;
    srv->stream_open++;
}

static void unlink_conn(struct stream_conn *c)
{
    if (!c->linked)
        return;
    struct server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->stream_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = false;
    srv->stream_open--;
}

static void on_closed(struct stream_conn *c)
{
    unlink_conn(c);
    queue_clear(c);
    free(c->rx);
    c->rx = NULL;
    wsmsg_filter_free(c->filter);
    c->filter = NULL;
    if (c->owner) {
        c->owner->conn = NULL; /* jobs in flight finish without us */
        owner_put(c->owner);
        c->owner = NULL;
    }
}

static int on_writeable(struct stream_conn *c)
{
    if (c->close_code && (c->close_drop || !c->q_count)) {
        static const char *const why[] = {"too slow: resume with after", "going away",
                                          "internal error"};
        const char *reason = c->close_code == STREAM_CLOSE_TOO_SLOW        ? why[0]
                             : c->close_code == LWS_CLOSE_STATUS_GOINGAWAY ? why[1]
                                                                           : why[2];
        lws_close_reason(c->wsi, (enum lws_close_status) c->close_code, (unsigned char *) reason,
                         strlen(reason));
        return -1;
    }
    if (write_batch(c) < 0)
        return -1;
    if (c->state == STREAM_BACKLOG)
        backlog_next(c);
    return 0;
}

int stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct stream_conn *c = user;
    struct server *srv = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return c ? on_filter(srv, c, wsi) : 1;
    case LWS_CALLBACK_ESTABLISHED:
        c->srv = srv;
        c->wsi = wsi;
        c->state = STREAM_OPEN;
        c->cursor = -1;
        link_conn(c);
        srv->metrics.ws_connections++;
        /* Frames are coalesced here already; Nagle would hold a small one
         * back until the previous one is acknowledged (delayed ACKs: up to
         * 40 ms). */
        setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        if (srv->draining)
            close_with(c, LWS_CLOSE_STATUS_GOINGAWAY, true);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (c && c->srv)
            on_receive(c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c && c->srv ? on_writeable(c) : 0;
    case LWS_CALLBACK_TIMER:
        /* a backlog read to retry */
        if (c && c->srv && c->state == STREAM_BACKLOG)
            backlog_next(c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c && c->srv) {
            on_closed(c);
            c->srv = NULL;
        }
        return 0;
    default:
        break;
    }
    return 0;
}

void stream_init(struct server *srv)
{
    static const uint32_t table[] = {1000};
    int ping = srv->cfg.ws_ping_seconds;
    memset(&srv->ws_retry, 0, sizeof srv->ws_retry);
    srv->ws_retry.retry_ms_table = table;
    srv->ws_retry.retry_ms_table_count = 1;
    srv->ws_retry.conceal_count = 1;
    /* Ping after `ping` idle seconds; a peer that has not answered (or
     * sent anything) within another `ping` seconds is dropped. */
    srv->ws_retry.secs_since_valid_ping = (uint16_t) ping;
    srv->ws_retry.secs_since_valid_hangup = (uint16_t) (2 * ping);
}

void stream_drain(struct server *srv)
{
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next)
        close_with(c, LWS_CLOSE_STATUS_GOINGAWAY, false);
}
