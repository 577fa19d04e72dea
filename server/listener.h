/*
 * listener.h - the server's one LISTEN connection: committed events, in
 * seq order, exactly once.
 *
 * Owns: a dedicated PostgreSQL connection (not from the worker pool) that
 * LISTENs on 'paytrackr_events' and is driven by the lws service loop
 * without ever blocking it: it is opened on a short-lived helper thread
 * (libpq resolves host names synchronously), then made non-blocking and
 * its socket (a dup()) adopted into lws as a raw file, so notifications
 * and query results arrive as LWS_CALLBACK_RAW_RX_FILE.
 *
 * A notification is only a wake-up; the events table is the source of
 * truth. A wake-up (a notification, a 1 s safety tick, a reconnect) runs a
 * "fetch" on that same connection, asynchronously, in one round trip
 * (paytrackr_stream_fetch): S, the highest seq up to which every event is
 * final (committed or never to appear; see docs/stream.md and migrations
 * 0002, 0003), then the events with delivered < seq <= S, in order, which are
 * handed to stream_broadcast(); `delivered` becomes S. At most one fetch runs at
 * a time; a wake-up during one asks for another. While a writer with a
 * lower seq is still committing (S below the sequence's high-water mark),
 * it looks again every 2 ms.
 *
 * When the connection drops, it reconnects with backoff, LISTENs again and
 * the first fetch catches up from `delivered`, so nothing is lost or
 * repeated. srv->listener_up (readiness) is false meanwhile.
 *
 * Everything here runs on the lws service thread except the connect
 * helper, which touches only the hand-over fields under a mutex.
 */
#ifndef PT_LISTENER_H
#define PT_LISTENER_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

struct server;

#define LISTENER_PROTOCOL_NAME "paytrackr-listener"

/* The lws protocol the LISTEN socket is adopted into (public vhost). */
int listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#define LISTENER_PROTOCOL                                           \
    {                                                               \
        LISTENER_PROTOCOL_NAME, listener_callback, 0, 0, 0, NULL, 0 \
    }

/* Creates the listener and starts connecting (service thread, after the
 * context, vhosts and pool exist). Returns 0, or -1 on allocation failure. */
int listener_start(struct server *srv);

/* Closes the connection, stops the timers and joins the connect helper;
 * frees the listener (service thread, before lws_context_destroy). */
void listener_stop(struct server *srv);

/* The highest seq broadcast so far (every event up to it is final), or -1
 * before the first fetch has told it. */
int64_t listener_head(const struct server *srv);

#endif
