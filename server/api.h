/*
 * api.h - what the HTTP API's requests mean.
 *
 * Owns: routing, authentication and roles, request validation, and turning
 * a request into a database job (or an immediate answer). The "prepare"
 * functions are shared with the WebSocket operations, which answer with the
 * same status and body as HTTP.
 */
#ifndef PT_API_H
#define PT_API_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "db.h"

struct http_req;
struct server;

/* Handles a complete request (service thread): answers at once or submits
 * a job whose completion answers. */
void api_handle(struct http_req *rq);

/* Drains finished database jobs and anything else woken by
 * lws_cancel_service() (service thread). */
void api_service_wakeup(struct server *srv);

/*
 * Builds the job for a create: validates `body` (len bytes of JSON) and
 * the optional idempotency key. Returns the job (caller sets done/owner and
 * submits), or NULL with `now` holding the answer (an error).
 */
struct db_job *api_prepare_create(const struct auth_identity *who, const char *body, size_t len,
                                  const char *idempotency_key, struct db_result *now);

/* The same for a PATCH of `id` with an optional If-Match version (-1). */
struct db_job *api_prepare_patch(const struct auth_identity *who, const char *id,
                                 long long if_match, const char *body, size_t len,
                                 struct db_result *now);

/* The same for a refund of payment `id` (v1.1): optional If-Match version
 * (-1) and Idempotency-Key (NULL). An empty body refunds what is left. */
struct db_job *api_prepare_refund(const struct auth_identity *who, const char *id,
                                  long long if_match, const char *body, size_t len,
                                  const char *idempotency_key, struct db_result *now);

/* The actor of the caller's changes as JSON {"name":…,"role":…}, into
 * `out` (STORE_ACTOR_MAX bytes are enough). */
void api_actor_json(const struct auth_identity *who, char *out, size_t cap);

/* The same for a list page from decoded query pairs. */
struct db_job *api_prepare_list(const char *const *keys, const char *const *values, int n,
                                struct db_result *now);

/* Submits `job` for `rq` (or answers with `now` when job is NULL): the
 * route modules (wh_api.c) hand their jobs over here. */
void api_submit(struct http_req *rq, struct db_job *job, struct db_result *now);

/* Starts `job` (its done and owner set): a point read or a page of the
 * list goes to the loop's pipelined read connections when one can take
 * it, anything else (or a read they cannot take) to the worker pool.
 * Returns 0, or -1 when both are full: the caller answers 503. */
int api_start_job(struct server *srv, struct db_job *job);

/* True when the request says Content-Type: application/json. */
bool api_json_content_type(struct http_req *rq);

#endif
