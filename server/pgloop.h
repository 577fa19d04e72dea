/*
 * pgloop.h - PostgreSQL connections the service loop drives itself.
 *
 * Owns: connecting on a helper thread (DNS, TCP, TLS and authentication
 * block, and the loop must not), handing the connection over to the
 * service thread, the reconnect back-off, and watching the connection's
 * socket in lws (a dup() of it adopted as a raw file, so that lws closing
 * it leaves libpq's own). Used by the LISTEN connection (listener.c) and
 * the read connections (db_async.c); what runs on the connection is
 * theirs.
 */
#ifndef PT_PGLOOP_H
#define PT_PGLOOP_H

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdbool.h>

/* One connection's helper and back-off. Service thread, except what the
 * helper hands over under `lock`. */
struct pgloop_connector {
    struct lws_context *context; /* woken when the helper is done */
    const char *app_name;        /* application_name, static text */
    bool connecting;             /* a helper runs (or ran, not yet taken) */
    unsigned attempt;            /* reconnects since the last success */

    pthread_t thread;
    pthread_mutex_t lock;
    bool thread_done;
    PGconn *thread_conn;
    char *thread_conninfo;       /* owned by the helper while it runs */
    const char *thread_rootcert; /* the caller's; outlives the helper */
};

void pgloop_init(struct pgloop_connector *c, struct lws_context *context, const char *app_name);

/* Starts a helper connecting with `conninfo` (taken: wiped and freed
 * whatever happens) and the optional CA file. 0, or -1 when no thread
 * could be started. The helper wakes the loop (lws_cancel_service) when
 * it is done: pgloop_take() on LWS_CALLBACK_EVENT_WAIT_CANCELLED. */
int pgloop_connect(struct pgloop_connector *c, char *conninfo, const char *sslrootcert);

/* True when a helper has finished: *out is what it made, which may be NULL
 * or a failed connection (the caller checks PQstatus and PQfinishes it). */
bool pgloop_take(struct pgloop_connector *c, PGconn **out);

/* The delay before the next attempt, growing with each call until
 * pgloop_connected(). */
lws_usec_t pgloop_backoff_us(struct pgloop_connector *c);
void pgloop_connected(struct pgloop_connector *c);

/* Waits for a running helper and drops what it made (stopping); frees
 * what the connector holds. */
void pgloop_finish(struct pgloop_connector *c);

/* Watches a dup() of `conn`'s socket in `vhost` under `protocol`, with
 * `opaque` as the wsi's opaque user data. NULL on failure. */
struct lws *pgloop_adopt(struct lws_vhost *vhost, PGconn *conn, const char *protocol, void *opaque);

/* Lets go of an adopted wsi: its opaque data is cleared (callbacks find no
 * owner) and lws closes it on its next turn. */
void pgloop_release(struct lws *wsi);

#endif
