/*
 * stream_ping.c - the stream's own keepalive: PINGs after silence, and
 * dropping a peer that stays silent (see stream_int.h).
 *
 * lws 4.1.6's keepalive ("validity") ping writes its payload into the
 * buffer a client's pending PONG is sent from, so a client that pings
 * sometimes got a PONG that answered none of its PINGs, and closed. Our
 * PINGs are written from our own buffer in the writable callback, where
 * lws has sent any pending PONG first, untouched.
 */
#include <string.h>

#include "server.h"
#include "stream_int.h"

/* The scan runs every quarter of the interval, within these bounds. */
#define PING_SCAN_MIN_US (250 * LWS_US_PER_SEC / 1000)
#define PING_SCAN_MAX_US (5 * LWS_US_PER_SEC)

static lws_usec_t scan_interval(const struct server *srv)
{
    lws_usec_t us = (lws_usec_t) srv->cfg.ws_ping_seconds * LWS_US_PER_SEC / 4;
    return us < PING_SCAN_MIN_US ? PING_SCAN_MIN_US : us > PING_SCAN_MAX_US ? PING_SCAN_MAX_US : us;
}

/* Service thread, every scan_interval while connections are open. */
static void ping_scan(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, sul_ws_ping);
    int64_t now = server_now_us();
    int64_t ping_us = (int64_t) srv->cfg.ws_ping_seconds * 1000000;
    for (struct stream_conn *c = srv->stream_conns; c; c = c->next) {
        int64_t silent = now - c->heard_us;
        if (silent >= 2 * ping_us) {
            /* Dead or gone: no close handshake to wait for. */
            srv->metrics.ws_ping_timeouts++;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else if (silent >= ping_us && !c->pinged_us && !c->close_code) {
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
    srv->ws_ping_armed = srv->stream_conns != NULL;
    if (srv->ws_ping_armed)
        lws_sul_schedule(srv->context, 0, &srv->sul_ws_ping, ping_scan, scan_interval(srv));
}

void stream_ping_arm(struct server *srv)
{
    if (srv->ws_ping_armed)
        return;
    srv->ws_ping_armed = true;
    lws_sul_schedule(srv->context, 0, &srv->sul_ws_ping, ping_scan, scan_interval(srv));
}

void stream_ping_heard(struct stream_conn *c)
{
    c->heard_us = server_now_us();
    c->pinged_us = 0;
    c->ping_due = false;
}

int stream_ping_write(struct stream_conn *c)
{
    static const char payload[] = "paytrackr";
    unsigned char buf[LWS_PRE + sizeof payload];
    memcpy(buf + LWS_PRE, payload, sizeof payload - 1);
    c->ping_due = false;
    c->pinged_us = server_now_us();
    if (lws_write(c->wsi, buf + LWS_PRE, sizeof payload - 1, LWS_WRITE_PING) < 0)
        return -1;
    /* One write per turn: what is queued goes at the next. */
    if (c->q_count || c->state == STREAM_BACKLOG)
        lws_callback_on_writable(c->wsi);
    return 0;
}
