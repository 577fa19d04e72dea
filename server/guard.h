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

/*
 * Pipelined requests with a body (lws 4.1.6 workaround). When one read
 * from the socket holds a request and the start of the next, lws keeps the
 * rest on the connection's buffer list and parses the next request from
 * there once the first is finished. For a request with a body,
 * lws_http_action() (roles/http/server/server.c) then drains that same
 * buffer list through lws_read_h1() as if it were the body: the request's
 * own header bytes arrive as LWS_CALLBACK_HTTP_BODY, and once the declared
 * length is used up lws_read_h1() returns 0 bytes consumed while the list is
 * not empty, so the loop calls LWS_CALLBACK_HTTP_BODY_COMPLETION forever on
 * the service thread. No callback can end that loop safely: a non-zero
 * return closes and frees the connection inside lws_read_h1() and the outer
 * lws_read_h1() then uses it again.
 *
 * The one safe moment is LWS_CALLBACK_HTTP, before lws gets to that loop:
 * there the request is refused and the connection closed when its headers
 * came from lws's buffer list rather than a fresh read of the socket. Only
 * a client that sends a request before the answer to the previous one
 * (HTTP/1.1 pipelining) gets there; lws has no call that says so, so the
 * kernel does: the bytes lws has taken from the socket (TCP_INFO's
 * tcpi_bytes_received minus FIONREAD) have not grown since the previous
 * request on the connection was finished. Remove on an lws that reads
 * pipelined bodies correctly.
 */

/* Records, as the current request ends, how many bytes lws has taken from
 * the socket. */
void guard_mark_consumed(struct http_req *rq);

/* True when the request now starting was parsed from bytes lws had read
 * before the previous request ended (or when that cannot be measured). */
bool guard_pipelined(struct http_req *rq);

/* Starts the deadline sweep; logs a warning when the process may not
 * open as many files as the connection cap needs. */
void guard_start(struct server *srv);

void guard_stop(struct server *srv);

#endif
