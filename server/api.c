/*
 * api.c - routes, roles and validation for the HTTP API.
 */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db_async.h"
#include "embedded.h"
#include "export.h"
#include "http.h"
#include "pjson.h"
#include "proto.h"
#include "query.h"
#include "ratelimit.h"
#include "server.h"
#include "store.h"
#include "validate.h"
#include "webapp.h"
#include "wh_api.h"

#define API_MAX_ARGS 32

enum api_route {
    ROUTE_NONE,
    ROUTE_PAYMENTS,
    ROUTE_PAYMENT,
    ROUTE_PAYMENT_EVENTS,
    ROUTE_EVENTS,
    ROUTE_STATS,
    ROUTE_OPENAPI,
    ROUTE_STREAM,
    ROUTE_ME,
    ROUTE_REFUNDS,
    ROUTE_REFUND,
    ROUTE_EXPORT,
};

struct route_info {
    const char *template;
    const char *allow;
};

static const struct route_info routes[] = {
    [ROUTE_NONE] = {"unmatched", NULL},
    [ROUTE_PAYMENTS] = {"/v1/payments", "GET, POST"},
    [ROUTE_PAYMENT] = {"/v1/payments/{id}", "GET, PATCH, DELETE"},
    [ROUTE_PAYMENT_EVENTS] = {"/v1/payments/{id}/events", "GET"},
    [ROUTE_EVENTS] = {"/v1/events", "GET"},
    [ROUTE_STATS] = {"/v1/stats", "GET"},
    [ROUTE_OPENAPI] = {"/v1/openapi.json", "GET"},
    [ROUTE_STREAM] = {PT_PROTO_STREAM_PATH, "GET"},
    [ROUTE_ME] = {"/v1/me", "GET"},
    [ROUTE_REFUNDS] = {"/v1/payments/{id}/refunds", "GET, POST"},
    [ROUTE_REFUND] = {"/v1/payments/{id}/refunds/{refund_id}", "GET"},
    [ROUTE_EXPORT] = {"/v1/payments/export.csv", "GET"},
};

/* Matches the path; for payment routes copies the id, and for one refund
 * its id too (any 1 to 36 characters are taken here; a malformed id is a
 * 404 later). */
static enum api_route match_route(const char *path, char id[37], char sub[37])
{
    static const char prefix[] = "/v1/payments/";
    const size_t plen = sizeof prefix - 1;
    if (strcmp(path, "/v1/payments") == 0)
        return ROUTE_PAYMENTS;
    if (strcmp(path, "/v1/events") == 0)
        return ROUTE_EVENTS;
    if (strcmp(path, "/v1/stats") == 0)
        return ROUTE_STATS;
    if (strcmp(path, "/v1/openapi.json") == 0)
        return ROUTE_OPENAPI;
    if (strcmp(path, PT_PROTO_STREAM_PATH) == 0)
        return ROUTE_STREAM;
    if (strcmp(path, "/v1/me") == 0)
        return ROUTE_ME;
    if (strcmp(path, "/v1/payments/export.csv") == 0)
        return ROUTE_EXPORT;
    if (strncmp(path, prefix, plen) != 0)
        return ROUTE_NONE;
    const char *rest = path + plen;
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t) (slash - rest) : strlen(rest);
    if (idlen == 0 || idlen > 36)
        return ROUTE_NONE;
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    if (!slash)
        return ROUTE_PAYMENT;
    if (strcmp(slash, "/events") == 0)
        return ROUTE_PAYMENT_EVENTS;
    if (strcmp(slash, "/refunds") == 0)
        return ROUTE_REFUNDS;
    if (strncmp(slash, "/refunds/", 9) == 0) {
        size_t sublen = strlen(slash + 9);
        if (sublen == 0 || sublen > 36 || strchr(slash + 9, '/'))
            return ROUTE_NONE;
        memcpy(sub, slash + 9, sublen + 1);
        return ROUTE_REFUND;
    }
    return ROUTE_NONE;
}

static bool method_allowed(enum api_route route, enum http_method m)
{
    if (m == HTTP_HEAD)
        m = HTTP_GET; /* http.c sends GET's headers without the body */
    switch (route) {
    case ROUTE_PAYMENTS:
    case ROUTE_REFUNDS:
        return m == HTTP_GET || m == HTTP_POST;
    case ROUTE_PAYMENT:
        return m == HTTP_GET || m == HTTP_PATCH || m == HTTP_DELETE;
    case ROUTE_NONE:
        return true;
    default:
        return m == HTTP_GET;
    }
}

static void result_problem(struct db_result *r, const pt_problem *p)
{
    int status = 422;
    if (strcmp(p->code, "malformed_json") == 0 || strcmp(p->code, "bad_request") == 0)
        status = 400;
    else if (strcmp(p->code, "invalid_transition") == 0)
        status = 409;
    else if (strcmp(p->code, "internal") == 0)
        status = 500;
    db_result_error(r, status, p->code, p->message, p->field[0] ? p->field : NULL);
}

static struct db_job *new_job(db_run_fn run, void *arg, void (*free_arg)(void *))
{
    struct db_job *job = calloc(1, sizeof *job);
    if (!job) {
        if (free_arg)
            free_arg(arg);
        return NULL;
    }
    job->run = run;
    job->arg = arg;
    job->free_arg = free_arg;
    return job;
}

/* True for no key or a well-formed one; else answers 400 in `now`. */
static bool idempotency_key_ok(const char *key, struct db_result *now)
{
    size_t n = key ? strlen(key) : 1;
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && key && i < n; i++)
        ok = (unsigned char) key[i] >= 0x21 && (unsigned char) key[i] <= 0x7e;
    if (!ok)
        db_result_error(now, 400, "bad_request",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                        "Idempotency-Key");
    return ok;
}

void api_actor_json(const struct auth_identity *who, char *out, size_t cap)
{
    /* Names are limited to characters JSON carries unescaped (config.c). */
    snprintf(out, cap, "{\"name\":\"%s\",\"role\":\"%s\"}", who->name, auth_role_name(who->role));
}

/* The request hash an Idempotency-Key answers for: SHA-256 of `route`, a
 * newline and the canonical body (creates use the body alone, as before
 * v1.1, so keys stored then still match). Returns 0, or -1 out of memory. */
static int request_hash(const char *route, const cJSON *json, char out[65])
{
    char *canonical = pt_json_canonical(json);
    if (!canonical)
        return -1;
    if (!route) {
        auth_sha256_hex(canonical, strlen(canonical), out);
        free(canonical);
        return 0;
    }
    size_t rl = strlen(route), cl = strlen(canonical);
    char *buf = malloc(rl + 1 + cl + 1);
    if (buf) {
        memcpy(buf, route, rl);
        buf[rl] = '\n';
        memcpy(buf + rl + 1, canonical, cl + 1);
        auth_sha256_hex(buf, rl + 1 + cl, out);
    }
    free(canonical);
    free(buf);
    return buf ? 0 : -1;
}

/* Fills the idempotency part of a job. Returns 0, or -1 out of memory. */
static int set_idempotency(struct store_idempotency *idem, const struct auth_identity *who,
                           const char *key, const char *route, const cJSON *json)
{
    snprintf(idem->caller, sizeof idem->caller, "%s", who->caller);
    if (request_hash(route, json, idem->request_hash) < 0)
        return -1;
    return key && !(idem->key = strdup(key)) ? -1 : 0;
}

struct db_job *api_prepare_create(const struct auth_identity *who, const char *body, size_t len,
                                  const char *idempotency_key, struct db_result *now)
{
    pt_problem problem;
    if (!idempotency_key_ok(idempotency_key, now))
        return NULL;
    cJSON *json = pt_json_parse_object(body, len, &problem);
    if (!json) {
        result_problem(now, &problem);
        return NULL;
    }
    struct store_create *in = calloc(1, sizeof *in);
    if (!in) {
        cJSON_Delete(json);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    if (pt_validate_create(json, body, len, &in->payment, &problem) < 0) {
        cJSON_Delete(json);
        store_create_free(in);
        result_problem(now, &problem);
        return NULL;
    }
    int rc = set_idempotency(&in->idem, who, idempotency_key, NULL, json);
    cJSON_Delete(json);
    api_actor_json(who, in->actor, sizeof in->actor);
    if (rc < 0) {
        store_create_free(in);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    struct db_job *job = new_job(store_run_create, in, store_create_free);
    if (!job)
        db_result_error(now, 500, "internal", "out of memory", NULL);
    return job;
}

/* The actor of a change, in the three forms the store wants. */
static void set_actor(const struct auth_identity *who, char *json, size_t cap, char name[65],
                      char role[16])
{
    api_actor_json(who, json, cap);
    snprintf(name, 65, "%s", who->name);
    snprintf(role, 16, "%s", auth_role_name(who->role));
}

struct db_job *api_prepare_patch(const struct auth_identity *who, const char *id,
                                 long long if_match, const char *body, size_t len,
                                 struct db_result *now)
{
    pt_problem problem;
    if (!query_valid_uuid(id)) {
        db_result_error(now, 404, "not_found", "no payment with this id", NULL);
        return NULL;
    }
    cJSON *json = pt_json_parse_object(body, len, &problem);
    if (!json) {
        result_problem(now, &problem);
        return NULL;
    }
    struct store_change *in = calloc(1, sizeof *in);
    if (!in) {
        cJSON_Delete(json);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    int rc = pt_validate_patch(json, body, len, &in->patch, &in->changes, &problem);
    cJSON_Delete(json);
    if (rc < 0) {
        store_change_free(in);
        result_problem(now, &problem);
        return NULL;
    }
    snprintf(in->id, sizeof in->id, "%s", id);
    in->if_match = if_match;
    set_actor(who, in->actor, sizeof in->actor, in->actor_name, in->actor_role);
    struct db_job *job = new_job(store_run_patch, in, store_change_free);
    if (!job)
        db_result_error(now, 500, "internal", "out of memory", NULL);
    return job;
}

struct db_job *api_prepare_refund(const struct auth_identity *who, const char *id,
                                  long long if_match, const char *body, size_t len,
                                  const char *idempotency_key, struct db_result *now)
{
    pt_problem problem;
    if (!query_valid_uuid(id)) {
        db_result_error(now, 404, "not_found", "no payment with this id", NULL);
        return NULL;
    }
    if (!idempotency_key_ok(idempotency_key, now))
        return NULL;
    /* An empty body is an empty object: refund what is left. */
    cJSON *json = len ? pt_json_parse_object(body, len, &problem) : cJSON_CreateObject();
    if (!json) {
        if (len)
            result_problem(now, &problem);
        else
            db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    struct store_refund *in = calloc(1, sizeof *in);
    if (!in) {
        cJSON_Delete(json);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    if (pt_validate_refund(json, body, len, &in->req, &problem) < 0) {
        cJSON_Delete(json);
        store_refund_free(in);
        result_problem(now, &problem);
        return NULL;
    }
    /* The payment is part of what a key answers for. */
    char route[80];
    snprintf(route, sizeof route, "POST /v1/payments/%s/refunds", id);
    for (char *p = route; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    int rc = set_idempotency(&in->idem, who, idempotency_key, route, json);
    cJSON_Delete(json);
    if (rc < 0) {
        store_refund_free(in);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    snprintf(in->id, sizeof in->id, "%s", id);
    in->if_match = if_match;
    set_actor(who, in->actor, sizeof in->actor, in->actor_name, in->actor_role);
    struct db_job *job = new_job(store_run_refund, in, store_refund_free);
    if (!job)
        db_result_error(now, 500, "internal", "out of memory", NULL);
    return job;
}

struct db_job *api_prepare_list(const char *const *keys, const char *const *values, int n,
                                struct db_result *now)
{
    struct list_query *q = calloc(1, sizeof *q);
    if (!q) {
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    pt_problem problem;
    if (query_parse(keys, values, n, q, &problem) < 0) {
        store_list_free(q);
        result_problem(now, &problem);
        return NULL;
    }
    struct db_job *job = new_job(store_run_list, q, store_list_free);
    if (!job)
        db_result_error(now, 500, "internal", "out of memory", NULL);
    return job;
}

/* ---- HTTP glue ------------------------------------------------------------ */

/* Strong or weak ETag match of `etag` ("\"3\"") against an If-None-Match
 * list ("\"2\", W/\"3\"" or "*"). */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, elen) == 0 && (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

static void job_done(struct db_job *job)
{
    struct http_req *rq = job->owner;
    if (rq) {
        rq->job = NULL;
        if (job->result.status == 200 && rq->if_none_match[0] && job->result.etag[0] &&
            etag_listed(rq->if_none_match, job->result.etag)) {
            snprintf(rq->etag, sizeof rq->etag, "%s", job->result.etag);
            http_respond(rq, 304, NULL);
        } else {
            http_respond_result(rq, &job->result);
        }
    }
    db_job_free(job);
}

/* The statement of a job the loop's read connections can run, or false. */
static bool loop_read(const struct db_job *job, struct db_async_stmt *st)
{
    if (job->run == store_run_get)
        store_get_statement(job->arg, st);
    else if (job->run == store_run_list)
        store_list_statement(job->arg, st);
    else
        return false;
    return true;
}

int api_start_job(struct server *srv, struct db_job *job)
{
    struct db_async_stmt st;
    if (loop_read(job, &st) && db_async_submit(srv->reads, job, &st) == 0)
        return 0;
    return db_pool_submit(srv->pool, job);
}

static void submit(struct http_req *rq, struct db_job *job, struct db_result *now)
{
    if (!job) {
        http_respond_result(rq, now);
        db_result_clear(now);
        return;
    }
    job->done = job_done;
    job->owner = rq;
    if (api_start_job(rq->srv, job) < 0) {
        db_job_free(job);
        http_respond_error(rq, 503, "unavailable", "the server is busy, retry later", NULL);
        return;
    }
    rq->job = job;
    rq->phase = HTTP_WAITING;
    /* A request that the database never answers still ends. */
    lws_set_timeout(rq->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE,
                    rq->srv->cfg.request_timeout_seconds);
}

/* If-Match: "3", W/"3" or *; -1 for absent or "*", -2 when unparseable. */
static long long parse_if_match(struct http_req *rq)
{
    char v[64];
    int len = http_header(rq, WSI_TOKEN_HTTP_IF_MATCH, v, sizeof v);
    if (len == -1 && lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_IF_MATCH) > 0)
        return -2; /* too long to be one of ours */
    if (len <= 0)
        return -1;
    const char *p = v;
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0)
        return -1;
    if (strncmp(p, "W/", 2) == 0)
        p += 2;
    if (*p != '"' || !isdigit((unsigned char) p[1]))
        return -2;
    char *end;
    errno = 0;
    long long n = strtoll(p + 1, &end, 10);
    if (errno || *end != '"' || end[1] != '\0')
        return -2;
    return n;
}

static bool json_content_type(struct http_req *rq)
{
    char ct[128];
    if (http_header(rq, WSI_TOKEN_HTTP_CONTENT_TYPE, ct, sizeof ct) <= 0)
        return false;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static int no_query_allowed(struct http_req *rq)
{
    if (lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_URI_ARGS) > 0) {
        http_respond_error(rq, 400, "bad_request", "this endpoint takes no query parameters", NULL);
        return -1;
    }
    return 0;
}

/* The Idempotency-Key header into key[300]: its length, -1 when absent,
 * or -2 (answered 400) when too long to be valid. */
static int idempotency_header(struct http_req *rq, char key[300])
{
    int klen = http_custom_header(rq, "idempotency-key:", key, 300);
    if (klen == -1 && lws_hdr_custom_length(rq->wsi, "idempotency-key:", 16) >= 0)
        klen = -2; /* present but too long */
    if (klen == -2)
        http_respond_error(rq, 400, "bad_request",
                           "Idempotency-Key must be 1 to 255 visible ASCII characters",
                           "Idempotency-Key");
    return klen;
}

static void handle_create(struct http_req *rq)
{
    struct db_result now = {0};
    char key[300];
    int klen = idempotency_header(rq, key);
    if (klen == -2)
        return;
    struct db_job *job = api_prepare_create(&rq->who, rq->body ? rq->body : "", rq->body_len,
                                            klen >= 0 ? key : NULL, &now);
    submit(rq, job, &now);
}

static void handle_list(struct http_req *rq)
{
    const char *keys[API_MAX_ARGS], *values[API_MAX_ARGS];
    char store[8192];
    int n = http_query_args(rq, keys, values, API_MAX_ARGS, store, sizeof store);
    if (n < 0) {
        http_respond_error(rq, 400, "bad_request", "query parameters must be UTF-8, few and short",
                           NULL);
        return;
    }
    struct db_result now = {0};
    submit(rq, api_prepare_list(keys, values, n, &now), &now);
}

static int parse_bounded(const char *v, long long min, long long max, long long *out)
{
    if (!*v || !isdigit((unsigned char) v[0]))
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* Reads `after` and `limit` (1..1000, default `limit_default`), the only
 * parameters of the event reads. Returns 0, or -1 having answered 400. */
static int read_page_args(struct http_req *rq, long long *after, long long *limit)
{
    const char *keys[API_MAX_ARGS], *values[API_MAX_ARGS];
    char store[2048];
    int n = http_query_args(rq, keys, values, API_MAX_ARGS, store, sizeof store);
    bool seen_after = false, seen_limit = false;
    for (int i = 0; n >= 0 && i < n; i++) {
        if (strcmp(keys[i], "after") == 0 && !seen_after) {
            seen_after = true;
            if (parse_bounded(values[i], 0, INT64_MAX, after) < 0) {
                http_respond_error(rq, 400, "bad_request",
                                   "after must be a non-negative integer seq", "after");
                return -1;
            }
        } else if (strcmp(keys[i], "limit") == 0 && !seen_limit) {
            seen_limit = true;
            if (parse_bounded(values[i], 1, STORE_EVENTS_LIMIT_MAX, limit) < 0) {
                http_respond_error(rq, 400, "bad_request",
                                   "limit must be an integer from 1 to 1000", "limit");
                return -1;
            }
        } else {
            n = -1;
        }
    }
    if (n < 0) {
        http_respond_error(rq, 400, "bad_request",
                           "unknown or repeated query parameter (use after and limit)", NULL);
        return -1;
    }
    return 0;
}

/* The event reads: `after` and `limit` from the query (`limit` defaults
 * to `limit_default`), then `run` on a struct store_events; `id` is the
 * payment's for its audit trail, NULL for the whole feed. */
static void submit_events(struct http_req *rq, db_run_fn run, const char *id,
                          long long limit_default)
{
    long long after = 0, limit = limit_default;
    if (read_page_args(rq, &after, &limit) < 0)
        return;
    struct store_events *in = calloc(1, sizeof *in);
    if (in) {
        snprintf(in->id, sizeof in->id, "%s", id ? id : "");
        in->after = after;
        in->limit = (int) limit;
    }
    struct db_result now = {0};
    struct db_job *job = in ? new_job(run, in, free) : NULL;
    if (!job)
        db_result_error(&now, 500, "internal", "out of memory", NULL);
    submit(rq, job, &now);
}

static void handle_refunds(struct http_req *rq, const char *id, const char *refund_id)
{
    struct db_result now = {0};
    if (rq->method == HTTP_POST) {
        if (rq->body_len > 0 && !json_content_type(rq)) {
            http_respond_error(rq, 415, "unsupported_media_type",
                               "send the body as Content-Type: application/json", NULL);
            return;
        }
        long long if_match = parse_if_match(rq);
        if (if_match == -2) {
            http_respond_error(rq, 412, "version_mismatch",
                               "If-Match must be an ETag such as \"3\"", NULL);
            return;
        }
        char key[300];
        int klen = idempotency_header(rq, key);
        if (klen == -2)
            return;
        submit(rq,
               api_prepare_refund(&rq->who, id, if_match, rq->body ? rq->body : "", rq->body_len,
                                  klen >= 0 ? key : NULL, &now),
               &now);
        return;
    }
    if (!query_valid_uuid(id) || (refund_id && !query_valid_uuid(refund_id))) {
        http_respond_error(rq, 404, "not_found",
                           refund_id ? "no refund with this id" : "no payment with this id", NULL);
        return;
    }
    struct store_get *in = calloc(1, sizeof *in);
    if (in) {
        snprintf(in->id, sizeof in->id, "%s", id);
        snprintf(in->refund_id, sizeof in->refund_id, "%s", refund_id ? refund_id : "");
    }
    struct db_job *job = in ? new_job(store_run_refunds, in, free) : NULL;
    if (!job)
        db_result_error(&now, 500, "internal", "out of memory", NULL);
    submit(rq, job, &now);
}

/* GET /v1/payments/export.csv: export.c streams it; viewers may export. */
static void handle_export(struct http_req *rq)
{
    const char *keys[API_MAX_ARGS], *values[API_MAX_ARGS];
    char store[8192];
    int n = http_query_args(rq, keys, values, API_MAX_ARGS, store, sizeof store);
    if (n < 0) {
        http_respond_error(rq, 400, "bad_request", "too many or too long query parameters", NULL);
        return;
    }
    export_start(rq, keys, values, n);
}

/* GET /v1/me: who the caller's token acts as. */
static void handle_me(struct http_req *rq)
{
    char actor[STORE_ACTOR_MAX];
    api_actor_json(&rq->who, actor, sizeof actor);
    char *body = strdup(actor);
    if (!body)
        http_respond_error(rq, 500, "internal", "out of memory", NULL);
    else
        http_respond(rq, 200, body);
}

/* GET /v1/stats: the list filters, without paging or order (v1.1). */
static void handle_stats(struct http_req *rq)
{
    const char *keys[API_MAX_ARGS], *values[API_MAX_ARGS];
    char store[8192];
    int n = http_query_args(rq, keys, values, API_MAX_ARGS, store, sizeof store);
    if (n < 0) {
        http_respond_error(rq, 400, "bad_request", "too many or too long query parameters", NULL);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(keys[i], "limit") == 0 || strcmp(keys[i], "cursor") == 0 ||
            strcmp(keys[i], "order") == 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "stats take the list filters, not %s", keys[i]);
            http_respond_error(rq, 400, "bad_request", msg, keys[i]);
            return;
        }
    }
    struct db_result now = {0};
    struct db_job *job = api_prepare_list(keys, values, n, &now);
    if (job)
        job->run = store_run_stats;
    submit(rq, job, &now);
}

static void handle_by_id(struct http_req *rq, enum api_route route, const char *id)
{
    struct db_result now = {0};
    if (!query_valid_uuid(id)) {
        http_respond_error(rq, 404, "not_found", "no payment with this id", NULL);
        return;
    }
    if (rq->method == HTTP_PATCH) {
        if (!json_content_type(rq)) {
            http_respond_error(rq, 415, "unsupported_media_type",
                               "send the body as Content-Type: application/json", NULL);
            return;
        }
        long long if_match = parse_if_match(rq);
        if (if_match == -2) {
            http_respond_error(rq, 412, "version_mismatch",
                               "If-Match must be an ETag such as \"3\"", NULL);
            return;
        }
        submit(
            rq,
            api_prepare_patch(&rq->who, id, if_match, rq->body ? rq->body : "", rq->body_len, &now),
            &now);
        return;
    }
    if (rq->method == HTTP_DELETE) {
        long long if_match = parse_if_match(rq);
        if (if_match == -2) {
            http_respond_error(rq, 412, "version_mismatch",
                               "If-Match must be an ETag such as \"3\"", NULL);
            return;
        }
        struct store_change *in = calloc(1, sizeof *in);
        if (in) {
            snprintf(in->id, sizeof in->id, "%s", id);
            in->if_match = if_match;
            set_actor(&rq->who, in->actor, sizeof in->actor, in->actor_name, in->actor_role);
        }
        struct db_job *job = in ? new_job(store_run_delete, in, store_change_free) : NULL;
        if (!job)
            db_result_error(&now, 500, "internal", "out of memory", NULL);
        submit(rq, job, &now);
        return;
    }
    struct store_get *in = calloc(1, sizeof *in);
    if (in)
        snprintf(in->id, sizeof in->id, "%s", id);
    if (route == ROUTE_PAYMENT)
        http_header(rq, WSI_TOKEN_HTTP_IF_NONE_MATCH, rq->if_none_match, sizeof rq->if_none_match);
    struct db_job *job = in ? new_job(store_run_get, in, free) : NULL;
    if (!job)
        db_result_error(&now, 500, "internal", "out of memory", NULL);
    submit(rq, job, &now);
}

static int authenticate(struct http_req *rq)
{
    char header[512];
    const char *value = NULL;
    if (http_header(rq, WSI_TOKEN_HTTP_AUTHORIZATION, header, sizeof header) > 0)
        value = header;
    if (auth_check(&rq->srv->cfg, value, &rq->who) < 0) {
        http_respond_error(rq, 401, "unauthenticated",
                           "send Authorization: Bearer <token> with a valid token", NULL);
        return -1;
    }
    rq->authenticated = true;
    return 0;
}

void api_handle(struct http_req *rq)
{
    if (webapp_handle(rq))
        return; /* the web page's files: no token needed */
    char id[37] = "", sub[37] = "";
    enum api_route route = match_route(rq->path, id, sub);
    rq->route = routes[route].template;
    if (authenticate(rq) < 0) {
        ratelimit_auth_failed(rq);
        return;
    }
    if (ratelimit_check_peer(rq) < 0 || ratelimit_check_caller(rq) < 0)
        return;
    if (route == ROUTE_NONE && wh_api_owns(rq->path)) {
        wh_api_handle(rq);
        return;
    }
    if (route == ROUTE_NONE) {
        http_respond_error(rq, 404, "not_found", "no such endpoint", NULL);
        return;
    }
    if (!method_allowed(route, rq->method)) {
        rq->allow = routes[route].allow;
        http_respond_error(rq, 405, "method_not_allowed", "method not allowed on this endpoint",
                           NULL);
        return;
    }
    bool writes = rq->method != HTTP_GET && rq->method != HTTP_HEAD;
    if (writes && rq->who.role != ROLE_OPERATOR) {
        http_respond_error(rq, 403, "forbidden", "this token may read but not write", NULL);
        return;
    }
    switch (route) {
    case ROUTE_PAYMENTS:
        if (rq->method == HTTP_POST) {
            if (!json_content_type(rq)) {
                http_respond_error(rq, 415, "unsupported_media_type",
                                   "send the body as Content-Type: application/json", NULL);
                return;
            }
            if (no_query_allowed(rq) == 0)
                handle_create(rq);
            return;
        }
        handle_list(rq);
        return;
    case ROUTE_PAYMENT:
        if (no_query_allowed(rq) == 0)
            handle_by_id(rq, route, id);
        return;
    case ROUTE_PAYMENT_EVENTS:
        /* Without parameters, the first STORE_EVENTS_LIMIT_MAX events. */
        if (!query_valid_uuid(id))
            http_respond_error(rq, 404, "not_found", "no payment with this id", NULL);
        else
            submit_events(rq, store_run_payment_events, id, STORE_EVENTS_LIMIT_MAX);
        return;
    case ROUTE_EVENTS:
        submit_events(rq, store_run_feed, NULL, 100);
        return;
    case ROUTE_STATS:
        handle_stats(rq);
        return;
    case ROUTE_EXPORT:
        handle_export(rq);
        return;
    case ROUTE_ME:
        if (no_query_allowed(rq) == 0)
            handle_me(rq);
        return;
    case ROUTE_REFUNDS:
    case ROUTE_REFUND:
        if (no_query_allowed(rq) == 0)
            handle_refunds(rq, id, route == ROUTE_REFUND ? sub : NULL);
        return;
    case ROUTE_OPENAPI: {
        char *doc = strdup(embedded_openapi[0].text);
        if (!doc)
            http_respond_error(rq, 500, "internal", "out of memory", NULL);
        else
            http_respond(rq, 200, doc);
        return;
    }
    case ROUTE_STREAM:
        http_respond_error(rq, 400, "bad_request",
                           "GET " PT_PROTO_STREAM_PATH " needs a WebSocket upgrade with "
                           "subprotocol " PT_PROTO_SUBPROTOCOL,
                           NULL);
        return;
    case ROUTE_NONE:
        break;
    }
}

/* Entry points for the route modules, which share this file's answers. */
void api_submit(struct http_req *rq, struct db_job *job, struct db_result *now)
{
    submit(rq, job, now);
}

bool api_json_content_type(struct http_req *rq)
{
    return json_content_type(rq);
}

void api_service_wakeup(struct server *srv)
{
    db_pool_drain(srv->pool);
}
