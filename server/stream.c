/*
 * stream.c - a WebSocket subscriber's life: the lws callback, the jobs'
 * handle on a connection, live broadcasts and draining. The other
 * concerns are in the stream_*.c files (see stream_int.h).
 */
#include "stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server.h"
#include "stream_int.h"
#include "wsmsg.h"

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

struct stream_owner *stream_owner_get(struct stream_conn *c)
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

void stream_owner_put(struct stream_owner *o)
{
    if (o && --o->refs == 0)
        free(o);
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
    stream_queue_clear(c);
    free(c->rx);
    c->rx = NULL;
    wsmsg_filter_free(c->filter);
    c->filter = NULL;
    if (c->owner) {
        c->owner->conn = NULL; /* jobs in flight finish without us */
        stream_owner_put(c->owner);
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
    if (c->ping_due && !c->close_code)
        return stream_ping_write(c);
    if (stream_queue_write(c) < 0)
        return -1;
    if (c->state == STREAM_BACKLOG)
        stream_backlog_next(c);
    return 0;
}

int stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct stream_conn *c = user;
    struct server *srv = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return c ? stream_upgrade_check(srv, c, wsi) : 1;
    case LWS_CALLBACK_ESTABLISHED:
        c->srv = srv;
        c->wsi = wsi;
        c->state = STREAM_OPEN;
        c->cursor = -1;
        link_conn(c);
        stream_ping_heard(c);
        stream_ping_arm(srv);
        srv->metrics.ws_connections++;
        /* Frames are coalesced here already; Nagle would hold a small one
         * back until the previous one is acknowledged (delayed ACKs: up to
         * 40 ms). */
        setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        if (srv->draining)
            stream_queue_close(c, LWS_CLOSE_STATUS_GOINGAWAY, true);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (c && c->srv) {
            stream_ping_heard(c);
            stream_ops_receive(c, in, len);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->srv)
            stream_ping_heard(c);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c && c->srv ? on_writeable(c) : 0;
    case LWS_CALLBACK_TIMER:
        /* a backlog read to retry */
        if (c && c->srv && c->state == STREAM_BACKLOG)
            stream_backlog_next(c);
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
    memset(&srv->ws_retry, 0, sizeof srv->ws_retry);
    srv->ws_retry.retry_ms_table = table;
    srv->ws_retry.retry_ms_table_count = 1;
    srv->ws_retry.conceal_count = 1;
    /* secs_since_valid_ping and _hangup stay 0: no lws keepalive pings
     * (stream_ping.c sends ours). */
}

void stream_head_known(struct server *srv)
{
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next)
        if (c->state == STREAM_WAIT_HEAD && !c->close_code)
            stream_ops_start(c, c->cursor);
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
            m = stream_msg_event(ev);
            failed = !m;
        }
        if (m) {
            stream_queue_push(c, m);
        } else {
            /* Never skip silently: the client resumes with `after`. */
            stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        }
    }
    stream_msg_unref(m);
}

void stream_drain(struct server *srv)
{
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next)
        stream_queue_close(c, LWS_CLOSE_STATUS_GOINGAWAY, false);
}
