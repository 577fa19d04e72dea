/*
 * wh_api.c - webhook endpoint management (see wh_api.h).
 */
#include "wh_api.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "proto.h"
#include "query.h"
#include "server.h"
#include "store.h"
#include "utf8.h"
#include "validate.h"
#include "pjson.h"
#include "wh_guard.h"
#include "wh_sign.h"
#include "wsmsg.h"

#define WH_PREFIX     "/v1/webhook_endpoints"
#define WH_DESC_MAX   500
#define WH_EVENTS_MAX 8
#define WH_PAGE_MAX   200
#define WH_PAGE_DEF   50

enum wh_route { WHR_NONE, WHR_LIST, WHR_ONE, WHR_ROTATE, WHR_DELIVERIES, WHR_REPLAY };

static const struct {
    const char *template;
    const char *allow;
} wh_routes[] = {
    [WHR_NONE] = {"unmatched", NULL},
    [WHR_LIST] = {WH_PREFIX, "GET, POST"},
    [WHR_ONE] = {WH_PREFIX "/{id}", "GET, PATCH, DELETE"},
    [WHR_ROTATE] = {WH_PREFIX "/{id}/rotate_secret", "POST"},
    [WHR_DELIVERIES] = {WH_PREFIX "/{id}/deliveries", "GET"},
    [WHR_REPLAY] = {WH_PREFIX "/{id}/replay", "POST"},
};

/* What a job needs; owned by the job. */
struct wh_req {
    char id[37];
    char *url;
    char *events; /* JSON array text */
    char *filter; /* JSON object text */
    char *description;
    bool set_url, set_events, set_filter, set_description, set_enabled;
    bool enabled;
    char secret[WH_SECRET_MAX];
    char actor[STORE_ACTOR_MAX]; /* JSON {"name","role"} of the creator */
    long long after;
    int limit;
    long long cursor; /* deliveries before this id; 0 for the newest */
};

static void req_free(void *arg)
{
    struct wh_req *in = arg;
    if (!in)
        return;
    free(in->url);
    free(in->events);
    free(in->filter);
    free(in->description);
    memset(in->secret, 0, sizeof in->secret);
    free(in);
}

bool wh_api_owns(const char *path)
{
    size_t n = sizeof WH_PREFIX - 1;
    return strncmp(path, WH_PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static enum wh_route match(const char *path, char id[37])
{
    const char *rest = path + sizeof WH_PREFIX - 1;
    if (*rest == '\0')
        return WHR_LIST;
    rest++;
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t) (slash - rest) : strlen(rest);
    if (idlen == 0 || idlen > 36)
        return WHR_NONE;
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    if (!slash)
        return WHR_ONE;
    if (strcmp(slash, "/rotate_secret") == 0)
        return WHR_ROTATE;
    if (strcmp(slash, "/deliveries") == 0)
        return WHR_DELIVERIES;
    if (strcmp(slash, "/replay") == 0)
        return WHR_REPLAY;
    return WHR_NONE;
}

static bool allowed(enum wh_route r, enum http_method m)
{
    switch (r) {
    case WHR_LIST:
        return m == HTTP_GET || m == HTTP_POST;
    case WHR_ONE:
        return m == HTTP_GET || m == HTTP_PATCH || m == HTTP_DELETE;
    case WHR_DELIVERIES:
        return m == HTTP_GET;
    default:
        return m == HTTP_POST;
    }
}

/* ---- SQL (worker threads) ------------------------------------------------ */

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* `pending` as "N", or "N+" when more events follow than were looked at
 * (migration 0008: the first 10,000 after delivered_seq). */
#define ENDPOINT_COLUMNS                                                                      \
    "w.id::text, w.url, w.events::text, w.filter::text, w.description, w.enabled, "           \
    "w.disabled_reason, w.delivered_seq::text, (SELECT b.pending || CASE WHEN b.capped THEN " \
    "'+' ELSE '' END FROM paytrackr_webhook_backlog(w.events, w.filter, w.delivered_seq, "    \
    "NULL) b), w.actor::text, " TS("w.created_at") ", " TS("w.updated_at")

static void add_text_or_null(cJSON *o, const char *key, PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddStringToObject(o, key, PQgetvalue(res, row, col));
}

static void add_raw_or_null(cJSON *o, const char *key, PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddItemToObject(o, key, cJSON_CreateRaw(PQgetvalue(res, row, col)));
}

/* `pending` and `pending_capped` from "N" or "N+". */
static void add_pending(cJSON *o, PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    size_t n = strlen(v);
    cJSON_AddNumberToObject(o, "pending", (double) strtoll(v, NULL, 10));
    cJSON_AddBoolToObject(o, "pending_capped", n > 0 && v[n - 1] == '+');
}

/* An endpoint object from a row of ENDPOINT_COLUMNS; `secret` adds it. */
static cJSON *endpoint_json(PGresult *res, int row, const char *secret)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", PQgetvalue(res, row, 0));
    cJSON_AddStringToObject(o, "url", PQgetvalue(res, row, 1));
    add_raw_or_null(o, "events", res, row, 2);
    add_raw_or_null(o, "filter", res, row, 3);
    add_text_or_null(o, "description", res, row, 4);
    cJSON_AddBoolToObject(o, "enabled", PQgetvalue(res, row, 5)[0] == 't');
    add_text_or_null(o, "disabled_reason", res, row, 6);
    add_raw_or_null(o, "delivered_seq", res, row, 7);
    add_pending(o, res, row, 8);
    add_raw_or_null(o, "actor", res, row, 9);
    cJSON_AddStringToObject(o, "created_at", PQgetvalue(res, row, 10));
    cJSON_AddStringToObject(o, "updated_at", PQgetvalue(res, row, 11));
    if (secret)
        cJSON_AddStringToObject(o, "secret", secret);
    return o;
}

static void set_json(struct db_result *r, int status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    r->status = status;
    r->body = text;
}

static void not_found(struct db_result *r)
{
    db_result_error(r, 404, "not_found", "no webhook endpoint with this id", NULL);
}

/* Answers with the endpoint a statement returned (or 404). */
static void answer_endpoint(struct db_result *r, PGconn *conn, PGresult *res, int status,
                            const char *secret)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        not_found(r);
        return;
    }
    cJSON *o = endpoint_json(res, 0, secret);
    PQclear(res);
    set_json(r, status, o);
}

static void run_create(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    const char *params[6] = {in->url,         in->events, in->filter,
                             in->description, in->secret, in->actor};
    /* A new endpoint starts at the stable seq: it gets the events that
     * commit from now on. */
    PGresult *res = PQexecParams(
        conn,
        "WITH s AS (SELECT paytrackr_stable_seq() AS seq), "
        "w AS (INSERT INTO webhook_endpoints (url, events, filter, description, secret, "
        " actor, delivered_seq) SELECT $1, $2::jsonb, $3::jsonb, $4, $5, $6::jsonb, s.seq FROM s "
        " WHERE s.seq IS NOT NULL RETURNING *) "
        "SELECT " ENDPOINT_COLUMNS " FROM w",
        6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
        PQclear(res);
        db_result_error(&job->result, 503, "unavailable",
                        "a long-running write holds the event sequence; retry", NULL);
        return;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        snprintf(job->result.location, sizeof job->result.location, WH_PREFIX "/%s",
                 PQgetvalue(res, 0, 0));
    answer_endpoint(&job->result, conn, res, 201, in->secret);
}

static void run_list(struct db_job *job, PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT " ENDPOINT_COLUMNS
                                 " FROM webhook_endpoints w ORDER BY w.created_at, w.id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(&job->result, conn, res);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(body, "data");
    for (int i = 0; data && i < PQntuples(res); i++)
        cJSON_AddItemToArray(data, endpoint_json(res, i, NULL));
    PQclear(res);
    set_json(&job->result, 200, body);
}

static void run_get(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    const char *params[1] = {in->id};
    PGresult *res = PQexecParams(
        conn, "SELECT " ENDPOINT_COLUMNS " FROM webhook_endpoints w WHERE w.id = $1::uuid", 1, NULL,
        params, NULL, NULL, 0);
    answer_endpoint(&job->result, conn, res, 200, NULL);
}

/* Every change bumps config_version, so a delivery in flight under the
 * old settings is not written back over the new ones. Enabling starts
 * again with the first unacknowledged event, at once. */
static void run_patch(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    const char *params[7] = {
        in->id,
        in->set_url ? in->url : NULL,
        in->set_events ? in->events : NULL,
        in->set_filter ? in->filter : NULL,
        in->set_description ? "t" : "f",
        in->description,
        in->set_enabled ? (in->enabled ? "t" : "f") : NULL,
    };
    PGresult *res =
        PQexecParams(conn,
                     "WITH w AS (UPDATE webhook_endpoints SET url = COALESCE($2, url), "
                     " events = COALESCE($3::jsonb, events), filter = COALESCE($4::jsonb, filter), "
                     " description = CASE WHEN $5::boolean THEN $6 ELSE description END, "
                     " enabled = COALESCE($7::boolean, enabled), "
                     " disabled_reason = CASE WHEN $7::boolean IS NULL THEN disabled_reason "
                     "  WHEN $7::boolean THEN NULL WHEN enabled THEN 'disabled by an operator' "
                     "  ELSE disabled_reason END, "
                     " attempt = CASE WHEN $7::boolean AND NOT enabled THEN 0 ELSE attempt END, "
                     " next_attempt_at = CASE WHEN $7::boolean AND NOT enabled THEN now() "
                     "  ELSE next_attempt_at END, "
                     " config_version = config_version + 1, updated_at = now() "
                     " WHERE id = $1::uuid RETURNING *) "
                     "SELECT " ENDPOINT_COLUMNS " FROM w",
                     7, NULL, params, NULL, NULL, 0);
    answer_endpoint(&job->result, conn, res, 200, NULL);
}

/* Runs one statement of the delete's transaction; false (the job's error
 * answer set, the transaction rolled back) when it fails. */
static bool delete_step(struct db_job *job, PGconn *conn, const char *sql, const char *id,
                        bool *touched)
{
    const char *params[1] = {id};
    PGresult *res = PQexecParams(conn, sql, id ? 1 : 0, NULL, id ? params : NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_result_from_pg(&job->result, conn, res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return false;
    }
    if (touched)
        *touched = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return true;
}

/* The endpoint, then its deliveries log (no foreign key since migration
 * 0007): the second statement's snapshot comes after the endpoint's row
 * lock was granted, so it sees every attempt a writer logged meanwhile. */
static void run_delete(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    bool gone = false;
    if (!delete_step(job, conn, "BEGIN", NULL, NULL) ||
        !delete_step(job, conn, "DELETE FROM webhook_endpoints WHERE id = $1::uuid", in->id,
                     &gone) ||
        !delete_step(job, conn, "DELETE FROM webhook_deliveries WHERE endpoint_id = $1::uuid",
                     in->id, NULL) ||
        !delete_step(job, conn, "COMMIT", NULL, NULL))
        return;
    if (gone)
        job->result.status = 204;
    else
        not_found(&job->result);
}

/* The old secret keeps signing beside the new one for 24 hours. */
static void run_rotate(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    const char *params[2] = {in->id, in->secret};
    PGresult *res = PQexecParams(conn,
                                 "WITH w AS (UPDATE webhook_endpoints SET old_secret = secret, "
                                 " old_secret_until = now() + interval '24 hours', secret = $2, "
                                 " config_version = config_version + 1, updated_at = now() "
                                 " WHERE id = $1::uuid RETURNING *) "
                                 "SELECT " ENDPOINT_COLUMNS " FROM w",
                                 2, NULL, params, NULL, NULL, 0);
    answer_endpoint(&job->result, conn, res, 200, in->secret);
}

/* Moves delivered_seq back to `after`, never forward. */
static void run_replay(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    char after[24];
    snprintf(after, sizeof after, "%lld", in->after);
    const char *params[2] = {in->id, after};
    PGresult *res = PQexecParams(conn,
                                 "WITH w AS (UPDATE webhook_endpoints SET "
                                 " delivered_seq = LEAST(delivered_seq, $2::bigint), attempt = 0, "
                                 " next_attempt_at = now(), config_version = config_version + 1 "
                                 " WHERE id = $1::uuid RETURNING *) "
                                 "SELECT " ENDPOINT_COLUMNS " FROM w",
                                 2, NULL, params, NULL, NULL, 0);
    answer_endpoint(&job->result, conn, res, 202, NULL);
}

static cJSON *delivery_json(PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[32];
    snprintf(id, sizeof id, "evt_%s", PQgetvalue(res, row, 1));
    cJSON_AddItemToObject(o, "seq", cJSON_CreateRaw(PQgetvalue(res, row, 1)));
    cJSON_AddStringToObject(o, "webhook_id", id);
    cJSON_AddItemToObject(o, "attempt", cJSON_CreateRaw(PQgetvalue(res, row, 2)));
    add_raw_or_null(o, "status_code", res, row, 3);
    add_text_or_null(o, "error", res, row, 4);
    cJSON_AddItemToObject(o, "duration_ms", cJSON_CreateRaw(PQgetvalue(res, row, 5)));
    cJSON_AddStringToObject(o, "at", PQgetvalue(res, row, 6));
    return o;
}

static void run_deliveries(struct db_job *job, PGconn *conn)
{
    struct wh_req *in = job->arg;
    char cursor[24], limit[16];
    snprintf(cursor, sizeof cursor, "%lld", in->cursor);
    snprintf(limit, sizeof limit, "%d", in->limit + 1);
    const char *params[3] = {in->id, cursor, limit};
    PGresult *res = PQexecParams(
        conn,
        "SELECT d.id::text, d.seq::text, d.attempt::text, d.status_code::text, d.error, "
        " d.duration_ms::text, " TS(
            "d.at") ", w.id IS NOT NULL "
                    "FROM (SELECT $1::uuid AS id) q LEFT JOIN webhook_endpoints w ON w.id = q.id "
                    "LEFT JOIN LATERAL (SELECT * FROM webhook_deliveries x WHERE x.endpoint_id = "
                    "q.id "
                    " AND ($2::bigint = 0 OR x.id < $2::bigint) ORDER BY x.id DESC LIMIT $3::int) "
                    "d "
                    " ON true ORDER BY d.id DESC",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(&job->result, conn, res);
        return;
    }
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 7)[0] != 't') {
        PQclear(res);
        not_found(&job->result);
        return;
    }
    int rows = PQgetisnull(res, 0, 0) ? 0 : PQntuples(res);
    int shown = rows > in->limit ? in->limit : rows;
    cJSON *body = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(body, "data");
    for (int i = 0; data && i < shown; i++)
        cJSON_AddItemToArray(data, delivery_json(res, i));
    cJSON_AddBoolToObject(body, "has_more", rows > in->limit);
    if (rows > in->limit)
        cJSON_AddStringToObject(body, "next_cursor", PQgetvalue(res, shown - 1, 0));
    else
        cJSON_AddNullToObject(body, "next_cursor");
    PQclear(res);
    set_json(&job->result, 200, body);
}

/* ---- validation (service thread) ------------------------------------------ */

static bool event_type_ok(const char *t)
{
    return strcmp(t, "*") == 0 || pt_event_parse(t, NULL);
}

/* "events": a non-empty array of known types, or ["*"]; stored as JSON. */
static int read_events(const cJSON *v, char **out, const char **bad)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (n < 1 || n > WH_EVENTS_MAX) {
        *bad = "events must be a non-empty array of event types, or [\"*\"]";
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it) || !event_type_ok(it->valuestring)) {
            *bad = "events may hold payment.created, payment.updated, payment.deleted or *";
            return -1;
        }
    }
    *out = cJSON_PrintUnformatted(v);
    return *out ? 0 : -2;
}

/* "filter": as a subscribe message's; stored as an object of the set keys. */
static int read_filter(const cJSON *v, char **out, const char **bad)
{
    struct stream_filter *f = NULL;
    int rc = wsmsg_read_filter(v, &f, bad);
    if (rc < 0)
        return rc;
    cJSON *o = cJSON_CreateObject();
    if (o && f) {
        if (f->status)
            cJSON_AddStringToObject(o, "status", f->status);
        if (f->currency)
            cJSON_AddStringToObject(o, "currency", f->currency);
        if (f->payer)
            cJSON_AddStringToObject(o, "payer", f->payer);
        if (f->payee)
            cJSON_AddStringToObject(o, "payee", f->payee);
    }
    wsmsg_filter_free(f);
    *out = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return *out ? 0 : -2;
}

static int read_description(const cJSON *v, char **out, const char **bad)
{
    if (cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || pt_utf8_length(v->valuestring) > WH_DESC_MAX ||
        pt_utf8_has_control(v->valuestring)) {
        *bad = "description must be text of at most 500 characters, or null";
        return -1;
    }
    *out = strdup(v->valuestring);
    return *out ? 0 : -2;
}

/* Reads a create (`patch` false) or PATCH body into `in`. Returns 0, or
 * -1 with the answer in `now`. */
static int read_body(struct server *srv, const cJSON *json, bool patch, struct wh_req *in,
                     struct db_result *now)
{
    const cJSON *it;
    const char *bad = NULL, *field = NULL;
    int rc = 0;
    cJSON_ArrayForEach(it, json)
    {
        field = it->string;
        if (strcmp(field, "url") == 0 && !in->set_url) {
            char why[160];
            in->set_url = true;
            if (!cJSON_IsString(it)) {
                bad = "url must be a string";
                rc = -1;
            } else if (wh_url_check(it->valuestring, srv->whcfg.allow_private, why, sizeof why) <
                       0) {
                db_result_error(now, 422, "validation_failed", why, "url");
                return -1;
            } else if (!(in->url = strdup(it->valuestring))) {
                rc = -2;
            }
        } else if (strcmp(field, "events") == 0 && !in->set_events) {
            in->set_events = true;
            rc = read_events(it, &in->events, &bad);
        } else if (strcmp(field, "filter") == 0 && !in->set_filter) {
            in->set_filter = true;
            rc = read_filter(it, &in->filter, &bad);
        } else if (strcmp(field, "description") == 0 && !in->set_description) {
            in->set_description = true;
            rc = read_description(it, &in->description, &bad);
        } else if (patch && strcmp(field, "enabled") == 0 && !in->set_enabled) {
            in->set_enabled = true;
            in->enabled = cJSON_IsTrue(it);
            if (!cJSON_IsBool(it)) {
                bad = "enabled must be true or false";
                rc = -1;
            }
        } else {
            bad = "unknown field";
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && !patch && !in->set_url) {
        bad = "url is required";
        field = "url";
        rc = -1;
    }
    if (rc == -1)
        db_result_error(now, 422, "validation_failed", bad, field);
    else if (rc == -2)
        db_result_error(now, 500, "internal", "out of memory", NULL);
    return rc < 0 ? -1 : 0;
}

static struct db_job *job_for(db_run_fn run, struct wh_req *in, struct db_result *now)
{
    struct db_job *job = in ? calloc(1, sizeof *job) : NULL;
    if (!job) {
        req_free(in);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    job->run = run;
    job->arg = in;
    job->free_arg = req_free;
    return job;
}

static struct db_job *prepare_write(struct http_req *rq, bool patch, struct db_result *now)
{
    pt_problem problem;
    cJSON *json = pt_json_parse_object(rq->body ? rq->body : "", rq->body_len, &problem);
    if (!json) {
        db_result_error(now, strcmp(problem.code, "internal") == 0 ? 500 : 400, problem.code,
                        problem.message, NULL);
        return NULL;
    }
    struct wh_req *in = calloc(1, sizeof *in);
    if (!in) {
        cJSON_Delete(json);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    int rc = read_body(rq->srv, json, patch, in, now);
    cJSON_Delete(json);
    if (rc < 0) {
        req_free(in);
        return NULL;
    }
    if (!patch) {
        api_actor_json(&rq->who, in->actor, sizeof in->actor);
        if ((!in->events && !(in->events = strdup("[\"*\"]"))) ||
            (!in->filter && !(in->filter = strdup("{}"))) || wh_secret_new(in->secret) < 0) {
            req_free(in);
            db_result_error(now, 500, "internal", "cannot make a secret", NULL);
            return NULL;
        }
    }
    return job_for(patch ? run_patch : run_create, in, now);
}

static struct db_job *prepare_replay(struct http_req *rq, struct wh_req *in, struct db_result *now)
{
    pt_problem problem;
    cJSON *json = pt_json_parse_object(rq->body ? rq->body : "", rq->body_len, &problem);
    if (!json) {
        req_free(in);
        db_result_error(now, strcmp(problem.code, "internal") == 0 ? 500 : 400, problem.code,
                        problem.message, NULL);
        return NULL;
    }
    const cJSON *it;
    int64_t after = -1;
    bool seen = false;
    const char *bad = NULL;
    cJSON_ArrayForEach(it, json)
    {
        if (strcmp(it->string, "after") != 0 || seen)
            bad = it->string;
        else if (!cJSON_IsNumber(it) || pt_json_get_int64(it, &after) < 0 || after < 0)
            bad = "after";
        seen = true;
    }
    cJSON_Delete(json);
    if (bad || after < 0) {
        req_free(in);
        db_result_error(now, 422, "validation_failed",
                        "the body is {\"after\": SEQ}, a non-negative integer",
                        bad ? bad : "after");
        return NULL;
    }
    in->after = after;
    return job_for(run_replay, in, now);
}

/* ?limit=N&cursor=C for the deliveries page. */
static int read_page(struct http_req *rq, struct wh_req *in)
{
    const char *keys[4], *values[4];
    char store[512];
    int n = http_query_args(rq, keys, values, 4, store, sizeof store);
    in->limit = WH_PAGE_DEF;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(values[i], &end, 10);
        bool num = *values[i] && isdigit((unsigned char) values[i][0]) && !*end && !errno;
        if (strcmp(keys[i], "limit") == 0 && num && v >= 1 && v <= WH_PAGE_MAX)
            in->limit = (int) v;
        else if (strcmp(keys[i], "cursor") == 0 && num && v >= 1)
            in->cursor = v;
        else
            return -1;
    }
    return n < 0 ? -1 : 0;
}

/* ---- the handler ----------------------------------------------------------- */

static void handle_id_route(struct http_req *rq, enum wh_route route, const char *id)
{
    struct db_result now = {0};
    struct wh_req *in = calloc(1, sizeof *in);
    if (in)
        snprintf(in->id, sizeof in->id, "%s", id);
    if (route == WHR_DELIVERIES) {
        if (in && read_page(rq, in) < 0) {
            req_free(in);
            http_respond_error(rq, 400, "bad_request",
                               "deliveries take limit (1 to 200) and cursor", NULL);
            return;
        }
        api_submit(rq, job_for(run_deliveries, in, &now), &now);
    } else if (route == WHR_ROTATE) {
        if (in && wh_secret_new(in->secret) < 0) {
            req_free(in);
            in = NULL;
        }
        api_submit(rq, job_for(run_rotate, in, &now), &now);
    } else if (route == WHR_REPLAY) {
        api_submit(rq, in ? prepare_replay(rq, in, &now) : job_for(run_replay, NULL, &now), &now);
    } else if (rq->method == HTTP_PATCH) {
        req_free(in);
        struct db_job *job = prepare_write(rq, true, &now);
        if (job)
            snprintf(((struct wh_req *) job->arg)->id, 37, "%s", id);
        api_submit(rq, job, &now);
    } else {
        api_submit(rq, job_for(rq->method == HTTP_DELETE ? run_delete : run_get, in, &now), &now);
    }
}

void wh_api_handle(struct http_req *rq)
{
    char id[37] = "";
    enum wh_route route = match(rq->path, id);
    rq->route = wh_routes[route].template;
    if (route == WHR_NONE) {
        http_respond_error(rq, 404, "not_found", "no such endpoint", NULL);
        return;
    }
    if (!allowed(route, rq->method)) {
        rq->allow = wh_routes[route].allow;
        http_respond_error(rq, 405, "method_not_allowed", "method not allowed on this endpoint",
                           NULL);
        return;
    }
    if (rq->method != HTTP_GET && rq->who.role != ROLE_OPERATOR) {
        http_respond_error(rq, 403, "forbidden", "this token may read but not write", NULL);
        return;
    }
    if (route != WHR_LIST && !query_valid_uuid(id)) {
        http_respond_error(rq, 404, "not_found", "no webhook endpoint with this id", NULL);
        return;
    }
    bool has_body = rq->method == HTTP_PATCH || (rq->method == HTTP_POST && route != WHR_ROTATE);
    if (has_body && !api_json_content_type(rq)) {
        http_respond_error(rq, 415, "unsupported_media_type",
                           "send the body as Content-Type: application/json", NULL);
        return;
    }
    if (route != WHR_DELIVERIES && lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_URI_ARGS) > 0) {
        http_respond_error(rq, 400, "bad_request", "this endpoint takes no query parameters", NULL);
        return;
    }
    struct db_result now = {0};
    if (route == WHR_LIST)
        api_submit(rq,
                   rq->method == HTTP_POST
                       ? prepare_write(rq, false, &now)
                       : job_for(run_list, calloc(1, sizeof(struct wh_req)), &now),
                   &now);
    else
        handle_id_route(rq, route, id);
}
