/*
 * server.h - one running paytrackr server: what its parts share.
 *
 * Owns: struct server, the single instance created by main for a serving
 * process. Every field is touched only on the lws service thread unless it
 * says otherwise; worker threads reach only the pool and the logger.
 */
#ifndef PT_SERVER_H
#define PT_SERVER_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "webhook.h"

struct db_async;
struct http_req;
struct listener;
struct stream_conn;

struct server {
    struct config cfg;
    struct logger log;
    struct log_batch *log_batch;    /* request lines of this loop turn; NULL: one write each */
    lws_sorted_usec_list_t sul_log; /* writes log_batch out at the next turn */
    struct lws_context *context;
    struct lws_vhost *public_vhost;
    struct lws_vhost *admin_vhost;
    struct db_pool *pool;
    struct db_async *reads; /* point reads and pages, pipelined on the loop */
    struct metrics metrics;

    char boot_id[9]; /* random per process: request ids are unique */
    uint64_t request_counter;
    struct http_req *requests; /* open HTTP connections, for draining */
    int open_requests;

    bool draining; /* SIGTERM seen: finish and leave */
    bool stop;     /* leave the service loop now */
    int exit_code;
    int64_t drain_deadline_us;

    /* health, refreshed by a periodic ping job */
    bool db_ready;
    bool ping_in_flight;
    int64_t last_ping_ok_us;

    lws_sorted_usec_list_t sul_health;
    lws_sorted_usec_list_t sul_housekeeping; /* housekeeping.c */
    bool housekeeping_in_flight;
    lws_sorted_usec_list_t sul_drain;
    struct tls_watch tls_watch; /* certificate renewal (tls.c) */

    /* the WebSocket stream (stream.c) and its LISTEN connection (listener.c) */
    struct listener *listener;
    bool listener_up;                 /* LISTENing and fetching: part of readiness */
    struct stream_conn *stream_conns; /* open WebSocket connections */
    int stream_open;
    unsigned char *stream_batch;        /* frames coalesced for one write (stream_queue.c) */
    lws_retry_bo_t ws_retry;            /* the public vhost's policy: no lws pings */
    lws_sorted_usec_list_t sul_ws_ping; /* the stream's keepalive scan */
    bool ws_ping_armed;

    /* abuse limits (guard.c, ratelimit.c) */
    struct ratelimit *rl_callers; /* requests per token */
    struct ratelimit *rl_peers;   /* failed authentications per address */
    lws_sorted_usec_list_t sul_guard;
    int64_t cap_warned_us; /* when the connection cap last made a log line */

    /* webhooks (webhook.c): settings, and the delivery thread */
    struct wh_config whcfg;
    struct webhooks *webhooks;

    /* http.c writes each piece of a response from here: LWS_PRE, then the
     * headers and body that go out in one write. */
    unsigned char tx_buf[HTTP_TX_BUF_SIZE];
};

/* Monotonic microseconds. */
int64_t server_now_us(void);

/* True when the server can serve: database reachable, the listener up and
 * not draining. */
bool server_ready(const struct server *srv);

#endif
