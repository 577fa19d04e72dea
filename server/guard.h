/*
 * guard.h - what one client may hold on the public port.
 *
 * Owns: the connection cap (PAYTRACKR_MAX_CONNECTIONS: beyond it a new
 * connection is closed as soon as it is accepted, before any TLS or HTTP
 * work), the URL length limit (PAYTRACKR_MAX_URL_BYTES: 414), and the
 * whole-request deadline (PAYTRACKR_REQUEST_TIMEOUT_SECONDS: 408 for a
 * body still arriving). lws's own timers cover the rest: a request's
 * headers must be complete within PAYTRACKR_HEADER_TIMEOUT_SECONDS of its
 * first byte, and a TLS handshake within the same time; but lws re-arms
 * its body timer on every chunk, so a body trickled a byte at a time
 * needs the deadline kept here. Service thread only.
 */
#ifndef PT_GUARD_H
#define PT_GUARD_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct http_req;
struct server;

/* Sets a vhost's lws header timer from the configuration. */
void guard_vhost_options(const struct server *srv, struct lws_context_creation_info *info);

/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: 0 to accept, non-zero to have
 * lws close the new connection at once (over the cap). */
int guard_admit_connection(struct server *srv);

/* LWS_CALLBACK_WSI_CREATE (opened) and _WSI_DESTROY on the public vhost:
 * keeps the count of open connections. */
void guard_connection_event(struct server *srv, bool opened);

/* When the request's URL (path of `path_len` bytes plus query string) is
 * over the limit, answers 414 and returns -1; else 0. */
int guard_check_url(struct http_req *rq, size_t path_len);

/* Starts the deadline sweep; logs a warning when the process may not
 * open as many files as the connection cap needs. */
void guard_start(struct server *srv);

void guard_stop(struct server *srv);

#endif
