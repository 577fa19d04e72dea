/*
 * wh_api.h - the webhook endpoint management routes.
 *
 * Owns: /v1/webhook_endpoints and everything under it: validating the
 * requests (the target URL through wh_guard.h), the SQL run on the
 * database pool, and the endpoint, delivery and page JSON. A secret
 * leaves the server only in the answers to a create and a rotation.
 * Service thread for the handler; the jobs run on pool workers.
 */
#ifndef PT_WH_API_H
#define PT_WH_API_H

#include <stdbool.h>

struct http_req;

/* True for paths under /v1/webhook_endpoints. */
bool wh_api_owns(const char *path);

/* Handles an authenticated request for one of those paths. */
void wh_api_handle(struct http_req *rq);

#endif
