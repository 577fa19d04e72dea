/*
 * db.h - the database worker pool.
 *
 * Owns: the PostgreSQL connections used for requests and the threads that
 * drive them. The libwebsockets service thread never waits on PostgreSQL:
 * it submits a job (fails at once when the bounded queue is full), a worker
 * runs it with blocking libpq calls on its own connection, and the finished
 * job comes back to the service thread through lws_cancel_service(), where
 * db_pool_drain() hands it to its `done` callback.
 *
 * A worker whose connection is gone reconnects before its next job. While
 * the database is unreachable, jobs fail fast with 503 instead of each
 * waiting out a connect timeout (a short circuit breaker).
 */
#ifndef PT_DB_H
#define PT_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct lws_context;

/* What a job produces: the shape of an HTTP answer, so the same job serves
 * HTTP and WebSocket callers. */
struct db_result {
    int status;
    char *body;         /* malloc'd JSON text, or NULL for no body */
    char etag[32];      /* "" for none */
    char location[96];  /* "" for none */
    bool replayed;      /* an idempotent replay */
    int retry_after;    /* seconds, 0 for none */
    char db_error[256]; /* PostgreSQL's message when a query failed, for the log */
};

struct db_job;
/* Runs on a worker thread with a connected `conn`; fills job->result. */
typedef void (*db_run_fn)(struct db_job *job, PGconn *conn);
/* Runs on the service thread. job->owner is NULL when whoever submitted
 * the job went away meanwhile; either way `done` frees the job. */
typedef void (*db_done_fn)(struct db_job *job);

struct db_job {
    db_run_fn run;
    db_done_fn done;
    void *owner; /* service-thread only: the waiting request */
    void *arg;   /* the job's inputs, owned by the job */
    void (*free_arg)(void *arg);
    struct db_result result;
    /* Set by `run` when the job's write may or may not have committed (the
     * connection went away during COMMIT): the worker reconnects and calls
     * it, for up to DB_RESOLVE_MS, until it clears itself; then once with
     * conn NULL to give the final answer. */
    db_run_fn resolve;
    struct db_job *next; /* queue link, owned by the pool */
};

/* Where the connection string comes from when it can change (Key Vault,
 * kvrefresh.h). Both calls are made from worker threads and must return at
 * once: `current` gives a malloc'd copy of the latest string (wiped and
 * freed by the pool) or NULL when there is none yet; `stale` says that
 * connecting with it failed (a rotated password?). */
struct db_conninfo_source {
    char *(*current)(void *ctx);
    void (*stale)(void *ctx);
    void *ctx;
};

struct db_pool_config {
    const char *conninfo;             /* libpq string or URI; copied; NULL: use source */
    struct db_conninfo_source source; /* with conninfo NULL; must outlive the pool */
    const char *sslrootcert;          /* optional CA file; copied */
    int size;                         /* worker threads = connections */
    int queue_max;                    /* jobs waiting beyond the busy workers */
    bool migrate;                     /* apply migrations on first connect */
    bool prepare;                     /* run statements prepared (pgstmt.h) */
    struct lws_context *context;      /* woken when a job finishes */
    const struct logger *log;
};

struct db_pool_stats {
    int size;
    int busy;
    int queued;
    int connected;
    uint64_t errors; /* connection failures and failed queries */
    uint64_t connects;
    bool up; /* the last connection attempt or query worked */
    /* The loop's read connections (db_async.h), filled by the caller. */
    int read_connections;
    int read_connected;
    int reads_in_flight;
};

struct db_pool;

/* Starts the workers. They connect lazily, so a database that is down at
 * start is not an error. Returns NULL on allocation or thread failure. */
struct db_pool *db_pool_start(const struct db_pool_config *cfg);

/* Queues `job` (service thread). Returns 0, or -1 when the queue is full or
 * the pool is stopping: the caller still owns the job and answers 503. */
int db_pool_submit(struct db_pool *pool, struct db_job *job);

/* Hands every finished job to its `done` callback (service thread). */
void db_pool_drain(struct db_pool *pool);

/* Jobs submitted and not yet drained. */
int db_pool_in_flight(struct db_pool *pool);

/* True while migrations asked for at start have not been applied yet
 * (any thread). */
bool db_pool_migrating(struct db_pool *pool);

void db_pool_get_stats(struct db_pool *pool, struct db_pool_stats *out);

/* A malloc'd copy of the current connection string (it changes when Key
 * Vault is re-read), or NULL when there is none yet; the caller
 * wipes and frees it. Any thread. Used by the LISTEN connection. */
char *db_pool_conninfo(struct db_pool *pool);

/* Stops and joins the workers; jobs still queued are finished with 503 and
 * drained. Frees the pool. */
void db_pool_stop(struct db_pool *pool);

/* Helpers for run functions (worker thread). */

/* Fills `r` with an error body; `status` 503 also sets Retry-After. */
void db_result_error(struct db_result *r, int status, const char *code, const char *message,
                     const char *field);

/* Records a failed query on `conn`: 503 unavailable when the connection is
 * gone or the server is shutting down, 500 otherwise. Clears `res`. */
void db_result_from_pg(struct db_result *r, PGconn *conn, PGresult *res);

/* Frees the result's body. */
void db_result_clear(struct db_result *r);

/* Zeroes then frees a string that may hold a password (NULL is fine). */
void db_wipe_free(char *s);

/* A libpq notice processor that drops server NOTICEs ("already exists,
 * skipping"): they are not errors and must not reach stderr unformatted. */
void db_ignore_notice(void *arg, const char *message);

/* Frees a job: its arg (through free_arg), its result body, itself. */
void db_job_free(struct db_job *job);

#endif
