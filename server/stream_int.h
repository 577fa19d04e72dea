/*
 * stream_int.h - what the stream's files share; nothing outside them
 * includes it.
 *
 * The stream (stream.h) is split by concern, one file each:
 *   stream.c          the connection's life: the lws callback, the jobs'
 *                     handle on a connection, live broadcasts, draining
 *   stream_queue.c    reference-counted frames and each connection's
 *                     bounded outgoing queue, and closing
 *   stream_backlog.c  reading past events page by page until live (the
 *                     SQL itself is store_read_event_page in store.c)
 *   stream_ops.c      the client's messages: subscribe, create, update,
 *                     list, and the answers
 *   stream_upgrade.c  the HTTP upgrade: path, draining, authentication
 *   stream_ping.c     keepalive: our own PINGs, dropping silent peers
 * Everything runs on the lws service thread unless a comment says
 * otherwise.
 */
#ifndef PT_STREAM_INT_H
#define PT_STREAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

/* Events read per backlog job (at most half the queue, see
 * stream_backlog_next). */
#define STREAM_PAGE_MAX 500
/* A failed backlog read is retried after this long. */
#define STREAM_RETRY_US (500 * LWS_US_PER_SEC / 1000)
/* How long a closing connection may take to take its close frame. */
#define STREAM_CLOSE_GRACE_S 5
/* The largest WebSocket frame header a server writes (no mask). */
#define FRAME_HDR_MAX  10
#define REQUEST_ID_MAX 200

/* ---- stream.c: the jobs' handle on a connection ------------------------ */

/* Jobs outlive connections: they hold this handle, whose `conn` is cleared
 * when the connection closes; the last holder frees it. */
struct stream_owner {
    struct stream_conn *conn;
    unsigned refs;
};

/* A new reference to the connection's handle (made on first use), or
 * NULL when out of memory. */
struct stream_owner *stream_owner_get(struct stream_conn *c);
void stream_owner_put(struct stream_owner *o);

/* ---- stream_queue.c: frames and the outgoing queue --------------------- */

/* A complete server-to-client text frame, shared by every queue it is on.
 * `frame` has LWS_PRE bytes before it, as lws_write() wants. */
struct stream_msg {
    uint32_t refs;
    uint32_t len; /* header + payload */
    bool answer;  /* a result: not counted against the lag limit */
    unsigned char *frame;
    unsigned char data[]; /* LWS_PRE, room for a header, the payload */
};

/* A frame holding a copy of `text` (refs 1), or NULL when out of memory.
 * Any thread. */
struct stream_msg *stream_msg_text(const char *text, size_t len);

/* An event frame (refs 1), or NULL when out of memory. Any thread. */
struct stream_msg *stream_msg_event(const struct stream_event *ev);

/* A frame of the `n` pieces of text one after the other (refs 1), or NULL
 * when out of memory. Any thread. */
struct stream_msg *stream_msg_concat(const char *const parts[], const size_t lens[], int n);

/* Drops a reference; the last frees (NULL is fine). */
void stream_msg_unref(struct stream_msg *m);

/* Queues a reference to `m` (taking a new one). A full queue closes the
 * connection with 4008 instead. */
void stream_queue_push(struct stream_conn *c, struct stream_msg *m);

/* Queues a message made for this connection alone (takes it over; NULL
 * closes the connection: memory ran out). */
void stream_queue_push_own(struct stream_conn *c, struct stream_msg *m);

/* Queues an operation's result (takes it over, not NULL). Answers are
 * bounded by PAYTRACKR_WS_ANSWER_MAX_BYTES each, STREAM_OPS_MAX at a time
 * and the process budget (checked by the caller), not by the lag limit:
 * one large list page is not a client falling behind. */
void stream_queue_push_answer(struct stream_conn *c, struct stream_msg *m);

/* True when queueing `len` more bytes would pass the process-wide
 * PAYTRACKR_WS_QUEUED_BYTES_MAX. */
bool stream_queue_over_budget(const struct stream_conn *c, size_t len);

/* Drops everything queued and the ring itself. */
void stream_queue_clear(struct stream_conn *c);

/* Writes the next batch of queued frames. Returns 0 or -1 (broken). */
int stream_queue_write(struct stream_conn *c);

/* Marks the connection for closing with `code`; `drop` discards what is
 * queued, else it is sent first. */
void stream_queue_close(struct stream_conn *c, uint16_t code, bool drop);

/* ---- stream_backlog.c -------------------------------------------------- */

/* Reads the next backlog page, or turns the connection live when its
 * cursor has reached the listener's head. */
void stream_backlog_next(struct stream_conn *c);

/* ---- stream_ops.c ------------------------------------------------------ */

/* A piece of a client message (LWS_CALLBACK_RECEIVE). */
void stream_ops_receive(struct stream_conn *c, const char *in, size_t len);

/* Answers the subscribe and starts the backlog (head known). `after` -1
 * means "from the head". */
void stream_ops_start(struct stream_conn *c, int64_t after);

/* ---- stream_ping.c ----------------------------------------------------- */

/* Starts the keepalive scan unless it runs (a connection was opened). */
void stream_ping_arm(struct server *srv);

/* The peer sent a frame or a PONG. */
void stream_ping_heard(struct stream_conn *c);

/* Writes the PING that is due (writable callback). 0, or -1: broken. */
int stream_ping_write(struct stream_conn *c);

/* ---- stream_upgrade.c -------------------------------------------------- */

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: 0 lets the upgrade through,
 * 1 refuses it (the answer is written). */
int stream_upgrade_check(struct server *srv, struct stream_conn *c, struct lws *wsi);

#endif
