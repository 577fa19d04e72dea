/*
 * stream.h - GET /v1/stream: the WebSocket protocol "paytrackr.v1".
 *
 * Owns: the WebSocket subscribers on the public vhost: authentication at
 * the upgrade, the client messages (subscribe, create, update, list), the
 * backlog a subscriber asks for with `after` (read from the events table
 * by the worker pool), the live events the listener broadcasts, and each
 * connection's bounded outgoing queue.
 *
 * Exactly once, in order: every connection keeps a cursor, the highest
 * seq it was sent or passed over. The backlog is read up to the listener's
 * head (every event up to it is final, see listener.h), page by page, and
 * the connection turns live only when its cursor has reached the head, on
 * the service thread, between two broadcasts; a live connection takes only
 * events above its cursor. So an event is neither missed (the head never
 * passes an event still to commit) nor sent twice.
 *
 * An event is serialised once, as a complete WebSocket frame in a
 * reference-counted buffer, and queued by reference on every matching
 * subscriber. A queue over PAYTRACKR_WS_QUEUE_MAX messages or
 * STREAM_QUEUE_BYTES_MAX bytes of events closes the connection with 4008;
 * the client resumes with `after`. An operation's result is capped on its
 * own (PAYTRACKR_WS_ANSWER_MAX_BYTES: a larger one becomes an error result
 * naming the limit), and all queues together stay under
 * PAYTRACKR_WS_QUEUED_BYTES_MAX. Everything here runs on the lws service thread,
 * except the backlog reads (worker threads, which only build buffers).
 */
#ifndef PT_STREAM_H
#define PT_STREAM_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct server;

#define STREAM_PROTOCOL_NAME "paytrackr.v1"
/* lws's receive buffer per connection (allocated for every connection);
 * longer messages arrive in pieces and are assembled up to the limit. */
#define STREAM_RX_BUFFER 1024
/* Bytes written per writable turn: queued frames are coalesced up to this
 * into one write. */
#define STREAM_BATCH_BYTES 65536
/* A queue holding more than this many bytes of events closes with 4008
 * too. */
#define STREAM_QUEUE_BYTES_MAX (4u << 20)
/* Create/update/list operations in flight per connection; more get 429. */
#define STREAM_OPS_MAX 8
/* Close code for a subscriber that fell behind. */
#define STREAM_CLOSE_TOO_SLOW 4008

/* One committed event as the listener read it (strings valid only during
 * the call). */
struct stream_event {
    int64_t seq;
    const char *type;    /* payment.created, ... */
    const char *at;      /* RFC 3339 UTC with milliseconds */
    const char *payment; /* the payment's JSON text */
    size_t payment_len;
    /* the fields subscribers filter on, from the payment */
    const char *status, *currency, *payer, *payee;
    const char *actor;  /* {"name","role"} JSON, NULL before v1.1 */
    const char *refund; /* the refund's JSON, NULL when none */
};

struct stream_msg;
struct stream_filter;
struct stream_owner;

enum stream_state {
    STREAM_OPEN,      /* connected, not subscribed */
    STREAM_WAIT_HEAD, /* subscribed before the listener knew its head */
    STREAM_BACKLOG,   /* reading past events from the table */
    STREAM_LIVE,      /* taking broadcasts */
};

/* One WebSocket connection's per-session data (lws allocates it). */
struct stream_conn {
    struct server *srv;
    struct lws *wsi;
    struct stream_conn *next, *prev; /* server->stream_conns */
    bool linked;
    enum stream_state state;
    struct auth_identity who;
    int64_t cursor;               /* highest seq sent or passed over; -1: head (WAIT_HEAD) */
    struct stream_filter *filter; /* NULL: every event */

    /* outgoing queue: a ring of references to complete frames */
    struct stream_msg **q;
    uint32_t q_head, q_count, q_cap;
    size_t q_bytes;
    size_t q_answer_bytes; /* of q_bytes, operation results */

    /* the message being received */
    char *rx;
    size_t rx_len;
    bool rx_active;  /* inside a message */
    bool rx_too_big; /* over the limit: the rest is dropped */
    bool rx_binary;

    struct stream_owner *owner; /* handle the jobs hold; NULL until one */
    uint16_t ops;               /* operations in flight */
    bool backlog_job;           /* a backlog read is in flight */
    uint16_t close_code;        /* non-zero: closing with this code */
    int64_t heard_us;           /* last frame or PONG from the peer */
    int64_t pinged_us;          /* last PING we sent; 0: none since heard */
    bool ping_due;              /* a PING to write at the next writable turn */
    bool close_drop;            /* ...without sending what is queued */
};

/* The lws protocol callback (public vhost). */
int stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);

#define STREAM_PROTOCOL                                                                         \
    {                                                                                           \
        STREAM_PROTOCOL_NAME, stream_callback, sizeof(struct stream_conn), STREAM_RX_BUFFER, 0, \
            NULL, STREAM_BATCH_BYTES                                                            \
    }

/* Prepares the ping policy (before the vhosts are made: the public vhost
 * points at srv->ws_retry). lws's own keepalive ("validity") pings are
 * turned off: lws 4.1.6 writes their payload over a client's pending
 * PONG. The stream sends its own PINGs from its writable callback after
 * PAYTRACKR_WS_PING_SECONDS without hearing from the peer, and drops a
 * peer silent for twice that. */
void stream_init(struct server *srv);

/* Sends one committed event to every live subscriber it matches, by
 * reference (listener, in seq order, each event once). */
void stream_broadcast(struct server *srv, const struct stream_event *ev);

/* The listener learned its head for the first time: subscriptions that
 * were waiting for it start. */
void stream_head_known(struct server *srv);

/* SIGTERM: every connection is sent what is queued, then closed with 1001
 * going away. New upgrades are refused. */
void stream_drain(struct server *srv);

#endif
