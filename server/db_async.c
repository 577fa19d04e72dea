/*
 * db_async.c - pipelined reads on the service loop (see db_async.h).
 *
 * Each connection keeps a ring of what it owes, in the order PostgreSQL
 * answers: a Prepare's result, a read's rows, a Sync. Reads sent during
 * one loop turn share one Sync, sent (and flushed in one write) by a timer
 * that runs at the start of the next turn. A failed read aborts the reads
 * after it up to the Sync; every one of them goes to the worker pool.
 */
#include "db_async.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgloop.h"

/* Statements prepared per connection; more run unprepared. */
#define DBA_STMT_MAX 16
/* Ring slots a read may need: its Prepare, itself, the turn's Sync. */
#define DBA_SLOTS_PER_READ 3

enum dba_kind { DBA_PREPARE, DBA_READ, DBA_SYNC };

struct dba_entry {
    enum dba_kind kind;
    struct db_job *job;  /* DBA_READ */
    db_answer_fn answer; /* DBA_READ */
    PGresult *res;       /* its first result, until the entry ends */
};

struct dba_conn {
    struct db_async *a;
    PGconn *conn;    /* connected and in pipeline mode, or NULL */
    struct lws *wsi; /* the adopted dup() of PQsocket() */
    bool unsynced;   /* reads sent since the last Sync */
    bool logged_down;
    struct pgloop_connector connector;
    lws_sorted_usec_list_t sul_reconnect;

    struct dba_entry *ring; /* what the connection owes, oldest first */
    int ring_cap, ring_head, ring_len;
    int reads; /* DBA_READ entries in the ring */

    const char *stmt_sql[DBA_STMT_MAX]; /* prepared on this connection */
    unsigned stmt_name[DBA_STMT_MAX];
    int stmt_count;
    unsigned next_name; /* names are never reused on a connection */
};

struct db_async {
    struct dba_conn *conns;
    int count;
    int depth_max;
    bool prepare;
    bool stopped;
    char *sslrootcert;
    struct db_pool *pool;
    struct lws_context *context;
    struct lws_vhost *vhost;
    const struct logger *log;
    int in_flight;
    bool flush_armed;
    lws_sorted_usec_list_t sul_flush;
};

static void dba_lost(struct dba_conn *c, const char *why);

/* ---- the ring ------------------------------------------------------------ */

static void ring_push(struct dba_conn *c, enum dba_kind kind, struct db_job *job,
                      db_answer_fn answer)
{
    struct dba_entry *e = &c->ring[(c->ring_head + c->ring_len++) % c->ring_cap];
    e->kind = kind;
    e->job = job;
    e->answer = answer;
    e->res = NULL;
    if (kind == DBA_READ) {
        c->reads++;
        c->a->in_flight++;
    }
}

/* Takes the oldest entry out (the caller has copied it). */
static void ring_pop(struct dba_conn *c)
{
    if (c->ring[c->ring_head].kind == DBA_READ) {
        c->reads--;
        c->a->in_flight--;
    }
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    c->ring_len--;
}

/* ---- answering ------------------------------------------------------------- */

/* Runs the read again on a worker; answers 503 when the pool cannot take
 * it. A read whose requester has gone is not worth running again. */
static void to_pool(struct db_async *a, struct db_job *job)
{
    if (!job->owner || a->stopped || db_pool_submit(a->pool, job) < 0) {
        db_result_error(&job->result, 503, "unavailable", "the server is busy, retry later", NULL);
        job->done(job);
    }
}

/* PostgreSQL refuses a prepared statement whose result columns a
 * migration changed (0A000) until it is prepared again. */
static bool plan_outdated(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state && strcmp(state, "0A000") == 0;
}

static void finish_entry(struct dba_conn *c, struct dba_entry *e)
{
    if (e->kind == DBA_PREPARE) {
        /* The reads that needed it fail and go to the pool; prepare
         * afresh (under new names) next time. */
        if (!e->res || PQresultStatus(e->res) != PGRES_COMMAND_OK)
            c->stmt_count = 0;
        PQclear(e->res);
        return;
    }
    if (e->res && PQresultStatus(e->res) == PGRES_TUPLES_OK) {
        e->answer(e->job, e->res);
        PQclear(e->res);
        e->job->done(e->job);
        return;
    }
    if (plan_outdated(e->res))
        c->stmt_count = 0;
    PQclear(e->res);
    to_pool(c->a, e->job);
}

/* Hands over every result that has arrived. Returns -1 when the
 * connection was given up. */
static int take_results(struct dba_conn *c)
{
    while (c->conn && c->ring_len > 0 && !PQisBusy(c->conn)) {
        struct dba_entry *e = &c->ring[c->ring_head];
        PGresult *res = PQgetResult(c->conn);
        if (e->kind == DBA_SYNC) {
            bool synced = res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
            PQclear(res);
            if (!synced) {
                dba_lost(c, "the pipeline lost its place");
                return -1;
            }
            ring_pop(c);
            continue;
        }
        if (res) {
            if (!e->res)
                e->res = res;
            else
                PQclear(res);
            continue;
        }
        /* NULL: this entry's results are complete. */
        struct dba_entry done = *e;
        ring_pop(c);
        finish_entry(c, &done);
    }
    return c->conn ? 0 : -1;
}

/* ---- sending ---------------------------------------------------------------- */

static void flush_cb(lws_sorted_usec_list_t *sul);

static void arm_flush(struct db_async *a)
{
    if (a->flush_armed)
        return;
    a->flush_armed = true;
    lws_sul_schedule(a->context, 0, &a->sul_flush, flush_cb, 1);
}

/* Ends the turn's reads with a Sync and pushes them out in one write. */
static void sync_conn(struct dba_conn *c)
{
    if (!PQpipelineSync(c->conn)) {
        dba_lost(c, "a Sync could not be sent");
        return;
    }
    ring_push(c, DBA_SYNC, NULL, NULL);
    c->unsynced = false;
    int f = PQflush(c->conn);
    if (f < 0)
        dba_lost(c, "write failed");
    else if (f == 1)
        lws_callback_on_writable(c->wsi);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    struct db_async *a = lws_container_of(sul, struct db_async, sul_flush);
    a->flush_armed = false;
    for (int i = 0; i < a->count; i++)
        if (a->conns[i].conn && a->conns[i].unsynced)
            sync_conn(&a->conns[i]);
}

static int stmt_find(const struct dba_conn *c, const char *sql)
{
    for (int i = 0; i < c->stmt_count; i++)
        if (c->stmt_sql[i] == sql)
            return i;
    return -1;
}

/* Queues the read's messages on `c` (prepared on first use). Returns -1
 * when libpq refused them: the connection is unusable. */
static int send_read(struct dba_conn *c, struct db_job *job, const struct db_async_stmt *st)
{
    char name[16];
    int i = c->a->prepare ? stmt_find(c, st->sql) : -1;
    if (c->a->prepare && i < 0 && c->stmt_count < DBA_STMT_MAX) {
        snprintf(name, sizeof name, "pt%u", c->next_name);
        if (!PQsendPrepare(c->conn, name, st->sql, st->nparams, NULL))
            return -1;
        ring_push(c, DBA_PREPARE, NULL, NULL);
        i = c->stmt_count++;
        c->stmt_sql[i] = st->sql;
        c->stmt_name[i] = c->next_name++;
    }
    int ok;
    if (i >= 0) {
        snprintf(name, sizeof name, "pt%u", c->stmt_name[i]);
        ok = PQsendQueryPrepared(c->conn, name, st->nparams, st->params, NULL, NULL, 0);
    } else {
        ok = PQsendQueryParams(c->conn, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0);
    }
    if (!ok)
        return -1;
    ring_push(c, DBA_READ, job, st->answer);
    c->unsynced = true;
    arm_flush(c->a);
    return 0;
}

int db_async_submit(struct db_async *a, struct db_job *job, const struct db_async_stmt *st)
{
    if (!a || a->stopped || st->nparams > DB_ASYNC_PARAMS_MAX || db_pool_migrating(a->pool))
        return -1;
    struct dba_conn *best = NULL;
    for (int i = 0; i < a->count; i++) {
        struct dba_conn *c = &a->conns[i];
        if (c->conn && c->wsi && c->reads < a->depth_max &&
            c->ring_cap - c->ring_len >= DBA_SLOTS_PER_READ && (!best || c->reads < best->reads))
            best = c;
    }
    if (!best)
        return -1;
    memset(&job->result, 0, sizeof job->result);
    job->next = NULL;
    if (send_read(best, job, st) < 0) {
        dba_lost(best, "a read could not be sent");
        return -1;
    }
    return 0;
}

/* ---- connecting ------------------------------------------------------------ */

static void schedule_reconnect(struct dba_conn *c);

static void start_connect(struct dba_conn *c)
{
    if (c->a->stopped || c->connector.connecting || c->conn)
        return;
    char *conninfo = db_pool_conninfo(c->a->pool);
    /* No connection string yet (Key Vault not read), or no thread: later. */
    if (!conninfo || pgloop_connect(&c->connector, conninfo, c->a->sslrootcert) < 0)
        schedule_reconnect(c);
}

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
    start_connect(lws_container_of(sul, struct dba_conn, sul_reconnect));
}

static void schedule_reconnect(struct dba_conn *c)
{
    if (!c->a->stopped)
        lws_sul_schedule(c->a->context, 0, &c->sul_reconnect, reconnect_cb,
                         pgloop_backoff_us(&c->connector));
}

/* Takes over what the helper made (service thread). */
static void connect_finished(struct dba_conn *c)
{
    PGconn *conn;
    if (!pgloop_take(&c->connector, &conn))
        return;
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        /* The pool reports the outage; its workers answer meanwhile. */
        PQfinish(conn);
        schedule_reconnect(c);
        return;
    }
    c->conn = conn;
    c->stmt_count = 0;
    PQsetNoticeProcessor(conn, db_ignore_notice, NULL);
    if (PQsetnonblocking(conn, 1) != 0 || !PQenterPipelineMode(conn) ||
        !(c->wsi = pgloop_adopt(c->a->vhost, conn, DB_ASYNC_PROTOCOL_NAME, c))) {
        dba_lost(c, "cannot watch the connection");
        return;
    }
    pgloop_connected(&c->connector);
    if (c->logged_down)
        log_msg(c->a->log, LOG_INFO, "database reads: connected again");
    c->logged_down = false;
}

/* ---- losing a connection --------------------------------------------------- */

/* Drops the connection, hands its reads to the pool, and reconnects. */
static void dba_lost(struct dba_conn *c, const char *why)
{
    if (c->wsi) {
        pgloop_release(c->wsi);
        c->wsi = NULL;
    }
    if (c->conn && !c->logged_down && !c->a->stopped) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c->conn));
        msg[strcspn(msg, "\n")] = '\0';
        log_msg(c->a->log, LOG_WARN, "database reads: connection lost (%s%s%s); reconnecting", why,
                msg[0] ? ": " : "", msg);
        c->logged_down = true;
    }
    PQfinish(c->conn);
    c->conn = NULL;
    c->unsynced = false;
    c->stmt_count = 0;
    while (c->ring_len > 0) {
        struct dba_entry e = c->ring[c->ring_head];
        ring_pop(c);
        PQclear(e.res);
        if (e.kind == DBA_READ)
            to_pool(c->a, e.job);
    }
    schedule_reconnect(c);
}

/* ---- the loop's callbacks ------------------------------------------------ */

static struct db_async *instance_of(struct lws *wsi)
{
    void **slot = lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));
    return slot ? *slot : NULL;
}

int db_async_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    (void) user;
    (void) in;
    (void) len;
    struct dba_conn *c;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* Maybe a connect helper finished. */
        struct db_async *a = instance_of(wsi);
        for (int i = 0; a && !a->stopped && i < a->count; i++)
            connect_finished(&a->conns[i]);
        return 0;
    }
    case LWS_CALLBACK_RAW_RX_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (!c || c->wsi != wsi)
            return -1; /* a socket already given up */
        if (!PQconsumeInput(c->conn)) {
            dba_lost(c, "read failed");
            return -1;
        }
        return take_results(c) < 0 ? -1 : 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (!c || c->wsi != wsi)
            return -1;
        switch (PQflush(c->conn)) {
        case 0:
            return 0;
        case 1:
            lws_callback_on_writable(wsi);
            return 0;
        default:
            dba_lost(c, "write failed");
            return -1;
        }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (c && c->wsi == wsi) {
            c->wsi = NULL;
            dba_lost(c, "socket closed");
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1; /* not a WebSocket subprotocol anyone may ask for */
    default:
        return 0;
    }
}

/* ---- life ------------------------------------------------------------------ */

struct db_async *db_async_start(const struct db_async_config *cfg)
{
    struct db_async *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->count = cfg->connections;
    a->depth_max = cfg->depth_max;
    a->prepare = cfg->prepare;
    a->pool = cfg->pool;
    a->context = cfg->context;
    a->vhost = cfg->vhost;
    a->log = cfg->log;
    a->sslrootcert = cfg->sslrootcert ? strdup(cfg->sslrootcert) : NULL;
    a->conns = a->count ? calloc((size_t) a->count, sizeof *a->conns) : NULL;
    const struct lws_protocols *proto =
        lws_vhost_name_to_protocol(cfg->vhost, DB_ASYNC_PROTOCOL_NAME);
    void **slot = proto ? lws_protocol_vh_priv_zalloc(cfg->vhost, proto, sizeof *slot) : NULL;
    if ((cfg->sslrootcert && !a->sslrootcert) || (a->count && !a->conns) || !slot) {
        free(a->sslrootcert);
        free(a->conns);
        free(a);
        return NULL;
    }
    *slot = a;
    for (int i = 0; i < a->count; i++) {
        struct dba_conn *c = &a->conns[i];
        c->a = a;
        c->ring_cap = a->depth_max * DBA_SLOTS_PER_READ;
        pgloop_init(&c->connector, a->context, "paytrackr-reads");
    }
    for (int i = 0; i < a->count; i++) {
        struct dba_conn *c = &a->conns[i];
        c->ring = calloc((size_t) c->ring_cap, sizeof *c->ring);
        if (!c->ring) {
            db_async_stop(a);
            return NULL;
        }
        start_connect(c);
    }
    return a;
}

int db_async_in_flight(const struct db_async *a)
{
    return a ? a->in_flight : 0;
}

int db_async_connected(const struct db_async *a)
{
    int n = 0;
    for (int i = 0; a && i < a->count; i++)
        n += a->conns[i].conn != NULL;
    return n;
}

void db_async_stop(struct db_async *a)
{
    if (!a)
        return;
    a->stopped = true;
    lws_sul_cancel(&a->sul_flush);
    void **slot = lws_protocol_vh_priv_get(
        a->vhost, lws_vhost_name_to_protocol(a->vhost, DB_ASYNC_PROTOCOL_NAME));
    if (slot)
        *slot = NULL;
    for (int i = 0; i < a->count; i++) {
        struct dba_conn *c = &a->conns[i];
        lws_sul_cancel(&c->sul_reconnect);
        pgloop_finish(&c->connector);
        if (c->wsi) {
            pgloop_release(c->wsi);
            c->wsi = NULL;
        }
        while (c->ring && c->ring_len > 0) {
            struct dba_entry e = c->ring[c->ring_head];
            ring_pop(c);
            PQclear(e.res);
            if (e.kind == DBA_READ) {
                db_result_error(&e.job->result, 503, "unavailable", "the server is shutting down",
                                NULL);
                e.job->done(e.job);
            }
        }
        PQfinish(c->conn);
        free(c->ring);
    }
    free(a->conns);
    free(a->sslrootcert);
    free(a);
}
