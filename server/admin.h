/*
 * admin.h - the admin port: /healthz, /readyz and /metrics.
 *
 * Owns: the lws protocol callback of the admin vhost. Every answer is
 * computed from state the service thread already holds, so probes never
 * wait on the database: liveness says the loop turns, readiness says the
 * last database check passed and the server is not draining.
 */
#ifndef PT_ADMIN_H
#define PT_ADMIN_H

#include <libwebsockets.h>

int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);

#endif
