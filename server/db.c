/*
 * db.c - worker threads, each owning one PGconn, fed by a bounded queue.
 */
#include "db.h"

#include <libwebsockets.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate.h"
#include "pgstmt.h"
#include "pjson.h"

/* After a failed connection attempt, jobs fail fast for this long rather
 * than each waiting out its own connect timeout. */
#define DB_BREAKER_MS 1000
/* How long a worker keeps reconnecting to learn whether a COMMIT whose
 * connection was lost took effect (a restart of PostgreSQL takes a few
 * seconds), and the pause between attempts. */
#define DB_RESOLVE_MS        15000
#define DB_RESOLVE_PAUSE_MS  200
#define DB_CONNECT_TIMEOUT_S "3"

struct db_pool {
    pthread_mutex_t lock; /* the job queue and the counters */
    pthread_cond_t wake;
    pthread_mutex_t done_lock;              /* the finished list, apart: workers finishing
                                * never wait behind workers taking jobs */
    struct db_job *queue_head, *queue_tail; /* waiting for a worker */
    struct db_job *done_head, *done_tail;   /* finished (done_lock) */
    int queued;
    int in_flight; /* service thread only */
    int busy;
    int connected;
    bool stopping;

    char *conninfo; /* fixed, or NULL: ask `source` */
    char *sslrootcert;
    struct db_conninfo_source source;
    int size;
    int queue_max;
    struct lws_context *context;
    const struct logger *log;

    atomic_bool migrate_pending;
    bool prepare; /* read-only after start */
    atomic_llong breaker_until_ms;
    atomic_bool up;
    atomic_ullong errors;
    atomic_ullong connects;

    pthread_t *threads;
    int threads_started;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void db_result_clear(struct db_result *r)
{
    free(r->body);
    r->body = NULL;
}

void db_job_free(struct db_job *job)
{
    if (!job)
        return;
    if (job->free_arg)
        job->free_arg(job->arg);
    db_result_clear(&job->result);
    free(job);
}

void db_result_error(struct db_result *r, int status, const char *code, const char *message,
                     const char *field)
{
    free(r->body);
    r->status = status;
    r->body = pt_error_body(code, message, field);
    r->etag[0] = '\0';
    r->location[0] = '\0';
    r->retry_after = status == 503 ? 1 : 0;
}

void db_result_from_pg(struct db_result *r, PGconn *conn, PGresult *res)
{
    /* A copy: the field lives in `res`, which is cleared below. */
    char state_buf[8] = "";
    const char *field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (field)
        snprintf(state_buf, sizeof state_buf, "%s", field);
    const char *state = field ? state_buf : NULL;
    snprintf(r->db_error, sizeof r->db_error, "%s%s%s", state ? state : "", state ? ": " : "",
             PQerrorMessage(conn));
    /* Strip libpq's trailing newline so the log line stays one line. */
    size_t n = strlen(r->db_error);
    while (n > 0 && (r->db_error[n - 1] == '\n' || r->db_error[n - 1] == '\r'))
        r->db_error[--n] = '\0';
    PQclear(res);
    /* Class 08 is a connection problem, 57P0x the server going down,
     * 53xxx resources: all transient, so the caller should retry. */
    bool transient = PQstatus(conn) != CONNECTION_OK ||
                     (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                                strncmp(state, "53", 2) == 0 || strcmp(state, "40001") == 0 ||
                                strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0));
    if (transient)
        db_result_error(r, 503, "unavailable", "the database is unavailable, retry later", NULL);
    else
        db_result_error(r, 500, "internal", "the database rejected the request", NULL);
}

void db_ignore_notice(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

void db_wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static char *conninfo_copy(struct db_pool *pool)
{
    if (!pool->conninfo)
        return pool->source.current ? pool->source.current(pool->source.ctx) : NULL;
    return strdup(pool->conninfo);
}

static PGconn *worker_connect_once(struct db_pool *pool)
{
    char *conninfo = conninfo_copy(pool);
    if (!conninfo)
        return NULL;
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = "connect_timeout";
    vals[n++] = DB_CONNECT_TIMEOUT_S;
    keys[n] = "application_name";
    vals[n++] = "paytrackr-server";
    /* A query never holds a worker for long, and a crashed client never
     * holds locks: both bounded server side. */
    keys[n] = "options";
    vals[n++] = "-c statement_timeout=15000 -c idle_in_transaction_session_timeout=30000 "
                "-c lock_timeout=5000";
    keys[n] = "keepalives_idle";
    vals[n++] = "30";
    if (pool->sslrootcert) {
        keys[n] = "sslrootcert";
        vals[n++] = pool->sslrootcert;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    db_wipe_free(conninfo);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn, db_ignore_notice, NULL);
        if (pool->prepare && pgstmt_attach(conn) != 0)
            log_msg(pool->log, LOG_WARN,
                    "statements on a database connection run unprepared: "
                    "out of memory");
        return conn;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    log_msg(pool->log, LOG_WARN, "database connection failed: %s", msg);
    PQfinish(conn);
    return NULL;
}

/* Connects; when that fails (no connection string yet, or a password that
 * was rotated), asks for the string to be read again, without waiting:
 * the job fails fast and a later one uses the fresh string. */
static PGconn *worker_connect(struct db_pool *pool)
{
    PGconn *conn = worker_connect_once(pool);
    if (!conn && pool->source.stale)
        pool->source.stale(pool->source.ctx);
    return conn;
}

/* Ensures the worker has a usable connection; NULL while the database is
 * unreachable (and the breaker is then set for everyone). */
static PGconn *worker_ensure_conn(struct db_pool *pool, PGconn *conn)
{
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    if (conn) {
        PQfinish(conn);
        pthread_mutex_lock(&pool->lock);
        pool->connected--;
        pthread_mutex_unlock(&pool->lock);
    }
    if (now_ms() < atomic_load(&pool->breaker_until_ms))
        return NULL;
    conn = worker_connect(pool);
    if (!conn) {
        atomic_store(&pool->breaker_until_ms, now_ms() + DB_BREAKER_MS);
        atomic_store(&pool->up, false);
        atomic_fetch_add(&pool->errors, 1);
        return NULL;
    }
    atomic_fetch_add(&pool->connects, 1);
    if (atomic_load(&pool->migrate_pending)) {
        char cause[512];
        if (migrate_apply(conn, pool->log, cause, sizeof cause) >= 0) {
            atomic_store(&pool->migrate_pending, false);
        } else {
            log_msg(pool->log, LOG_ERROR, "migration failed: %s", cause);
            atomic_fetch_add(&pool->errors, 1);
            PQfinish(conn);
            return NULL;
        }
    }
    atomic_store(&pool->up, true);
    pthread_mutex_lock(&pool->lock);
    pool->connected++;
    pthread_mutex_unlock(&pool->lock);
    return conn;
}

static void finish_job(struct db_pool *pool, struct db_job *job)
{
    pthread_mutex_lock(&pool->done_lock);
    job->next = NULL;
    bool was_empty = pool->done_head == NULL;
    if (pool->done_tail)
        pool->done_tail->next = job;
    else
        pool->done_head = job;
    pool->done_tail = job;
    pthread_mutex_unlock(&pool->done_lock);
    /* The only lws call that is safe from another thread. One wake-up per
     * batch: a non-empty list means a wake-up is already pending, and
     * db_pool_drain() takes the whole list. */
    if (was_empty)
        lws_cancel_service(pool->context);
}

static void drop_conn(struct db_pool *pool, PGconn **conn)
{
    PQfinish(*conn);
    *conn = NULL;
    pthread_mutex_lock(&pool->lock);
    pool->connected--;
    pthread_mutex_unlock(&pool->lock);
}

/*
 * An idle pool connection has nothing to read: nobody LISTENs on it. When
 * it is readable, the server is telling us it closed it (a terminated
 * backend, a shutdown: FATAL, then EOF), so the job gets a new connection
 * instead of being lost to the dead one.
 */
static void drop_if_closed_by_server(struct db_pool *pool, PGconn **conn)
{
    if (!*conn || PQstatus(*conn) != CONNECTION_OK)
        return;
    struct pollfd pfd = {.fd = PQsocket(*conn), .events = POLLIN};
    if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
        return;
    drop_conn(pool, conn);
}

/*
 * A job must leave its connection idle: a transaction it left open (a
 * failure path that forgot to roll back) would be committed by whatever
 * the next job on this connection commits. Roll it back, or drop the
 * connection when that does not bring it back to idle. A job that
 * reported success with its work uncommitted did not succeed.
 */
static void end_leftover_transaction(struct db_pool *pool, PGconn **conn, struct db_job *job)
{
    if (!*conn || PQstatus(*conn) != CONNECTION_OK || PQtransactionStatus(*conn) == PQTRANS_IDLE)
        return;
    log_msg(pool->log, LOG_ERROR, "a database job left its transaction open: rolled back");
    PGTransactionStatusType ts = PQtransactionStatus(*conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(*conn, "ROLLBACK"));
    if (PQstatus(*conn) != CONNECTION_OK || PQtransactionStatus(*conn) != PQTRANS_IDLE)
        drop_conn(pool, conn);
    if (job->result.status < 400)
        db_result_error(&job->result, 500, "internal", "the request could not be completed", NULL);
}

/*
 * A job whose write may have committed is never answered with a plain
 * "retry later": the worker reconnects (the database restarting takes a
 * few seconds) and lets the job look up what happened.
 */
static void resolve_outcome(struct db_pool *pool, PGconn **conn, struct db_job *job)
{
    long long deadline = now_ms() + DB_RESOLVE_MS;
    while (job->resolve && now_ms() < deadline) {
        *conn = worker_ensure_conn(pool, *conn);
        if (*conn)
            job->resolve(job, *conn);
        if (job->resolve)
            nanosleep(&(struct timespec){.tv_nsec = DB_RESOLVE_PAUSE_MS * 1000000L}, NULL);
    }
    if (job->resolve)
        job->resolve(job, NULL);
    log_msg(pool->log, LOG_WARN, "a create's COMMIT lost its connection; answered %d after looking",
            job->result.status);
}

static void run_one(struct db_pool *pool, PGconn **conn, struct db_job *job)
{
    drop_if_closed_by_server(pool, conn);
    *conn = worker_ensure_conn(pool, *conn);
    if (!*conn) {
        db_result_error(&job->result, 503, "unavailable",
                        "the database is unavailable, retry later", NULL);
        return;
    }
    job->run(job, *conn);
    bool outdated = pgstmt_take_outdated(*conn);
    if (outdated && job->result.status >= 500 && PQtransactionStatus(*conn) == PQTRANS_IDLE) {
        /* A migration changed what a prepared statement returns (rolling
         * deploys do that); the job's transaction rolled back, and one
         * more run prepares the statement afresh. */
        db_result_clear(&job->result);
        memset(&job->result, 0, sizeof job->result);
        job->run(job, *conn);
    }
    if (job->resolve)
        resolve_outcome(pool, conn, job);
    end_leftover_transaction(pool, conn, job);
    if (job->result.status >= 500) {
        atomic_fetch_add(&pool->errors, 1);
        if (job->result.db_error[0])
            log_msg(pool->log, LOG_ERROR, "database error: %s", job->result.db_error);
    }
    if (!*conn || PQstatus(*conn) != CONNECTION_OK) {
        /* Lost mid-job: the next job reconnects; mark down until then. */
        atomic_store(&pool->up, false);
    } else if (job->result.status < 500) {
        atomic_store(&pool->up, true);
    }
}

static void *worker_main(void *arg)
{
    struct db_pool *pool = arg;
    PGconn *conn = NULL;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (!pool->queue_head && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        struct db_job *job = pool->queue_head;
        if (!job) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        pool->queue_head = job->next;
        if (!pool->queue_head)
            pool->queue_tail = NULL;
        pool->queued--;
        pool->busy++;
        pthread_mutex_unlock(&pool->lock);

        run_one(pool, &conn, job);

        pthread_mutex_lock(&pool->lock);
        pool->busy--;
        pthread_mutex_unlock(&pool->lock);
        finish_job(pool, job);
    }
    if (conn) {
        PQfinish(conn);
        pthread_mutex_lock(&pool->lock);
        pool->connected--;
        pthread_mutex_unlock(&pool->lock);
    }
    return NULL;
}

struct db_pool *db_pool_start(const struct db_pool_config *cfg)
{
    struct db_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->done_lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->conninfo = cfg->conninfo ? strdup(cfg->conninfo) : NULL;
    pool->source = cfg->source;
    pool->sslrootcert = cfg->sslrootcert ? strdup(cfg->sslrootcert) : NULL;
    pool->size = cfg->size;
    pool->queue_max = cfg->queue_max;
    pool->context = cfg->context;
    pool->log = cfg->log;
    atomic_init(&pool->migrate_pending, cfg->migrate);
    pool->prepare = cfg->prepare;
    atomic_init(&pool->breaker_until_ms, 0);
    atomic_init(&pool->up, false);
    atomic_init(&pool->errors, 0);
    atomic_init(&pool->connects, 0);
    pool->threads = calloc((size_t) cfg->size, sizeof *pool->threads);
    if ((cfg->conninfo && !pool->conninfo) || (cfg->sslrootcert && !pool->sslrootcert) ||
        !pool->threads) {
        db_pool_stop(pool);
        return NULL;
    }
    for (int i = 0; i < cfg->size; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
            db_pool_stop(pool);
            return NULL;
        }
        pool->threads_started++;
    }
    return pool;
}

int db_pool_submit(struct db_pool *pool, struct db_job *job)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || pool->queued >= pool->queue_max) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    job->next = NULL;
    memset(&job->result, 0, sizeof job->result);
    if (pool->queue_tail)
        pool->queue_tail->next = job;
    else
        pool->queue_head = job;
    pool->queue_tail = job;
    pool->queued++;
    pool->in_flight++;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

void db_pool_drain(struct db_pool *pool)
{
    pthread_mutex_lock(&pool->done_lock);
    struct db_job *list = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    pthread_mutex_unlock(&pool->done_lock);
    while (list) {
        struct db_job *next = list->next;
        pool->in_flight--;
        list->done(list);
        list = next;
    }
}

int db_pool_in_flight(struct db_pool *pool)
{
    return pool->in_flight;
}

bool db_pool_migrating(struct db_pool *pool)
{
    return atomic_load(&pool->migrate_pending);
}

char *db_pool_conninfo(struct db_pool *pool)
{
    return conninfo_copy(pool);
}

void db_pool_get_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    out->size = pool->size;
    out->busy = pool->busy;
    out->queued = pool->queued;
    out->connected = pool->connected;
    pthread_mutex_unlock(&pool->lock);
    out->errors = atomic_load(&pool->errors);
    out->connects = atomic_load(&pool->connects);
    out->up = atomic_load(&pool->up);
}

void db_pool_stop(struct db_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    /* Jobs nobody has started: answer them now rather than run them. */
    struct db_job *pending = pool->queue_head;
    pool->queue_head = pool->queue_tail = NULL;
    pool->queued = 0;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    while (pending) {
        struct db_job *next = pending->next;
        db_result_error(&pending->result, 503, "unavailable", "the server is shutting down", NULL);
        finish_job(pool, pending);
        pending = next;
    }
    for (int i = 0; i < pool->threads_started; i++)
        pthread_join(pool->threads[i], NULL);
    db_pool_drain(pool);
    free(pool->threads);
    db_wipe_free(pool->conninfo);
    free(pool->sslrootcert);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->done_lock);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
