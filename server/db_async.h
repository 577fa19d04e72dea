/*
 * db_async.h - reads run by the service loop itself, pipelined.
 *
 * Owns: a few PostgreSQL connections (PAYTRACKR_DB_READ_CONNECTIONS) in
 * libpq's non-blocking pipeline mode, watched by the libwebsockets loop,
 * and the reads in flight on them. A point read through the worker pool
 * costs two thread hand-offs (a futex wake each way, a loop wake-up) that
 * cost more than the query in a VM; here the loop sends the query, every
 * query of a loop turn goes out in one write with one Sync, and the rows
 * come back to the loop directly.
 *
 * Only reads go this way: a read can always be run again, so whatever goes
 * wrong (no connection yet, the connection lost with reads in flight, an
 * error, a migration that changed a statement's columns) hands the job to
 * the worker pool, whose answers (503 while the database is away, the
 * error mapping) are the reference. Connecting runs on a helper thread
 * (DNS, TLS and authentication block).
 */
#ifndef PT_DB_ASYNC_H
#define PT_DB_ASYNC_H

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <stdbool.h>

#include "db.h"
#include "log.h"

#define DB_ASYNC_PROTOCOL_NAME "paytrackr-db-reads"
#define DB_ASYNC_PARAMS_MAX    16

/* Turns a read's rows (PGRES_TUPLES_OK) into job->result; service thread. */
typedef void (*db_answer_fn)(struct db_job *job, PGresult *res);

/* One read: a fixed SQL text (its address identifies the statement), its
 * text parameters, and what makes the answer. The parameters are copied
 * when the read is sent: `scratch` holds any the caller had to format. */
struct db_async_stmt {
    const char *sql;
    int nparams;
    const char *params[DB_ASYNC_PARAMS_MAX];
    char scratch[3][32];
    db_answer_fn answer;
};

struct db_async_config {
    int connections;         /* 0: every read goes to the pool */
    int depth_max;           /* reads in flight per connection */
    bool prepare;            /* prepared statements, as the pool */
    const char *sslrootcert; /* copied */
    struct db_pool *pool;    /* the connection string, and the fallback */
    struct lws_context *context;
    struct lws_vhost *vhost; /* where the sockets are adopted */
    const struct logger *log;
};

struct db_async;

/* Starts connecting (helper threads). Returns NULL when out of memory. */
struct db_async *db_async_start(const struct db_async_config *cfg);

/*
 * Sends `job`'s read (service thread): 0, and job->done runs on the
 * service thread when the answer is in job->result; or -1 when no
 * connection can take it now (none connected, all full, migrations
 * pending): the caller still owns the job and submits it to the pool.
 * `job->run` must be the same read for the pool, used when the read has
 * to be run again there.
 */
int db_async_submit(struct db_async *a, struct db_job *job, const struct db_async_stmt *st);

/* Reads sent and not answered yet (service thread). */
int db_async_in_flight(const struct db_async *a);

/* Connections ready for reads (service thread), for /metrics. */
int db_async_connected(const struct db_async *a);

/* Closes the connections; reads in flight are finished with 503 (service
 * thread, before the pool is stopped). Frees `a`. */
void db_async_stop(struct db_async *a);

/* The lws protocol that watches the sockets (public vhost). */
int db_async_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#define DB_ASYNC_PROTOCOL                                           \
    {                                                               \
        DB_ASYNC_PROTOCOL_NAME, db_async_callback, 0, 0, 0, NULL, 0 \
    }

#endif
