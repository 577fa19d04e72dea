/*
 * stream_ops.c - the client's messages on the stream: subscribe, create,
 * update and list, and the answers (see stream_int.h).
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "listener.h"
#include "pjson.h"
#include "ratelimit.h"
#include "server.h"
#include "stream_int.h"
#include "validate.h"
#include "wsmsg.h"

/* ---- messages to the client ------------------------------------------------- */

static struct stream_msg *msg_from_json(cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    struct stream_msg *m = stream_msg_text(text, strlen(text));
    free(text);
    return m;
}

/* {"type":"error","code":…,"message":…[,"request_id":…]}: a bad message;
 * the connection stays open. */
static void send_error(struct stream_conn *c, const char *code, const char *message,
                       const char *request_id)
{
    cJSON *root = cJSON_CreateObject();
    if (root) {
        cJSON_AddStringToObject(root, "type", "error");
        cJSON_AddStringToObject(root, "code", code);
        cJSON_AddStringToObject(root, "message", message);
        if (request_id)
            cJSON_AddStringToObject(root, "request_id", request_id);
    }
    stream_queue_push_own(c, msg_from_json(root));
}

/* {"type":"result","request_id":…,"status":…,"body":…}, written around
 * the body without copying it into a tree first (lists can be large). */
static void queue_result(struct stream_conn *c, const char *request_id, const struct db_result *r)
{
    cJSON *id = cJSON_CreateString(request_id);
    char *id_json = id ? cJSON_PrintUnformatted(id) : NULL; /* quoted, escaped */
    cJSON_Delete(id);
    char head[REQUEST_ID_MAX * 6 + 96];
    int n = id_json ? snprintf(head, sizeof head,
                               "{\"type\":\"result\",\"request_id\":%s,"
                               "\"status\":%d,\"body\":",
                               id_json, r->status)
                    : -1;
    free(id_json);
    const char *body = r->body ? r->body : "null";
    const char *parts[3] = {head, body, "}"};
    size_t lens[3] = {n > 0 ? (size_t) n : 0, strlen(body), 1};
    struct stream_msg *m =
        n > 0 && (size_t) n < sizeof head ? stream_msg_concat(parts, lens, 3) : NULL;
    if (!m) {
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    stream_queue_push_answer(c, m);
}

/* An operation's result, as its HTTP twin would answer, unless it is over
 * PAYTRACKR_WS_ANSWER_MAX_BYTES or the process budget: then a small error
 * result naming the limit takes its place, and the connection stays. */
static void send_result(struct stream_conn *c, const char *request_id, const struct db_result *r)
{
    struct server *srv = c->srv;
    size_t len = r->body ? strlen(r->body) : 0;
    struct db_result capped = {0};
    char message[200];
    if (len > srv->cfg.ws_answer_max_bytes) {
        snprintf(message, sizeof message,
                 "the answer is %zu bytes, more than PAYTRACKR_WS_ANSWER_MAX_BYTES (%zu): "
                 "ask for fewer rows with limit",
                 len, srv->cfg.ws_answer_max_bytes);
        db_result_error(&capped, 413, "answer_too_large", message, NULL);
    } else if (stream_queue_over_budget(c, len)) {
        snprintf(message, sizeof message,
                 "the server's WebSocket queues are full (PAYTRACKR_WS_QUEUED_BYTES_MAX, %zu "
                 "bytes): retry later",
                 srv->cfg.ws_queued_bytes_max);
        db_result_error(&capped, 503, "unavailable", message, NULL);
    } else {
        queue_result(c, request_id, r);
        return;
    }
    srv->metrics.ws_answers_capped++;
    queue_result(c, request_id, &capped);
    db_result_clear(&capped);
}

static void send_subscribed(struct stream_conn *c, int64_t head)
{
    char text[64];
    int n = snprintf(text, sizeof text, "{\"type\":\"subscribed\",\"head\":%" PRId64 "}", head);
    stream_queue_push_own(c, stream_msg_text(text, (size_t) n));
}

/* ---- client messages ----------------------------------------------------------- */

/* An operation waiting for the pool: who asked, and the request id. */
struct op_ctx {
    struct stream_owner *owner;
    char request_id[REQUEST_ID_MAX + 1];
};

static void op_done(struct db_job *job)
{
    struct op_ctx *ctx = job->owner;
    struct stream_conn *c = ctx->owner->conn;
    if (c) {
        c->ops--;
        send_result(c, ctx->request_id, &job->result);
    }
    stream_owner_put(ctx->owner);
    free(ctx);
    db_job_free(job);
}

/* Submits an operation's job, or answers at once (`now`). */
static void op_submit(struct stream_conn *c, const char *request_id, struct db_job *job,
                      struct db_result *now)
{
    if (!job) {
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    struct op_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx)
        ctx->owner = stream_owner_get(c);
    if (!ctx || !ctx->owner) {
        free(ctx);
        db_job_free(job);
        db_result_error(now, 500, "internal", "out of memory", NULL);
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    snprintf(ctx->request_id, sizeof ctx->request_id, "%s", request_id);
    job->done = op_done;
    job->owner = ctx;
    if (api_start_job(c->srv, job) < 0) {
        stream_owner_put(ctx->owner);
        free(ctx);
        db_job_free(job);
        db_result_error(now, 503, "unavailable", "the server is busy, retry later", NULL);
        send_result(c, request_id, now);
        db_result_clear(now);
        return;
    }
    c->ops++;
}

/*
 * The raw text of member `key`, which must be an object: create and update
 * hand the "payment" and "changes" objects to the HTTP code as the very
 * bytes the client sent, so they are judged exactly as an HTTP body would
 * be (number literals included). The parser kept that text.
 */
static int object_span(const cJSON *root, const char *key, const char **start, size_t *span)
{
    const char *raw = pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(root, key));
    if (!raw)
        return -1;
    *start = raw;
    *span = strlen(raw);
    return 0;
}

static void handle_create(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
    if (key && !cJSON_IsNull(key) && !cJSON_IsString(key)) {
        send_error(c, "bad_request", "idempotency_key must be a string", rid);
        return;
    }
    const char *body;
    size_t blen;
    if (object_span(root, "payment", &body, &blen) < 0) {
        send_error(c, "bad_request", "create needs a payment object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    struct db_job *job = api_prepare_create(&c->who, body, blen,
                                            cJSON_IsString(key) ? key->valuestring : NULL, &now);
    op_submit(c, rid, job, &now);
}

static void handle_update(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "if_version");
    if (!cJSON_IsString(id)) {
        send_error(c, "bad_request", "update needs the payment id as a string", rid);
        return;
    }
    int64_t if_version = -1;
    if (ver && !cJSON_IsNull(ver) && (!pt_json_get_int64(ver, &if_version) || if_version < 0)) {
        send_error(c, "bad_request", "if_version must be a non-negative integer", rid);
        return;
    }
    const char *body;
    size_t blen;
    if (object_span(root, "changes", &body, &blen) < 0) {
        send_error(c, "bad_request", "update needs a changes object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid, api_prepare_patch(&c->who, id->valuestring, if_version, body, blen, &now),
              &now);
}

/* {"type":"refund","request_id","id","if_version"?,"idempotency_key"?,
 * "refund"?}: POST /v1/payments/{id}/refunds over the socket (v1.1). */
static void handle_refund(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "if_version");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
    if (!cJSON_IsString(id)) {
        send_error(c, "bad_request", "refund needs the payment id as a string", rid);
        return;
    }
    int64_t if_version = -1;
    if (ver && !cJSON_IsNull(ver) && (!pt_json_get_int64(ver, &if_version) || if_version < 0)) {
        send_error(c, "bad_request", "if_version must be a non-negative integer", rid);
        return;
    }
    if (key && !cJSON_IsNull(key) && !cJSON_IsString(key)) {
        send_error(c, "bad_request", "idempotency_key must be a string", rid);
        return;
    }
    const char *body = "";
    size_t blen = 0;
    const cJSON *refund = cJSON_GetObjectItemCaseSensitive(root, "refund");
    if (refund && !cJSON_IsNull(refund) && object_span(root, "refund", &body, &blen) < 0) {
        send_error(c, "bad_request", "refund must be an object", rid);
        return;
    }
    if (c->who.role != ROLE_OPERATOR) {
        db_result_error(&now, 403, "forbidden", "this token may read but not write", NULL);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid,
              api_prepare_refund(&c->who, id->valuestring, if_version, body, blen,
                                 cJSON_IsString(key) ? key->valuestring : NULL, &now),
              &now);
}

static void handle_list(struct stream_conn *c, const cJSON *root, const char *rid)
{
    struct db_result now = {0};
    struct wsmsg_list_args args;
    const char *bad = NULL, *field = NULL;
    int rc =
        wsmsg_read_list_args(cJSON_GetObjectItemCaseSensitive(root, "query"), &args, &bad, &field);
    if (rc == -1) {
        send_error(c, "bad_request", bad, rid);
        return;
    }
    if (rc < 0) {
        db_result_error(&now, 400, "bad_request", bad, field);
        op_submit(c, rid, NULL, &now);
        return;
    }
    op_submit(c, rid, api_prepare_list(args.keys, args.values, args.n, &now), &now);
}

void stream_ops_start(struct stream_conn *c, int64_t after)
{
    int64_t head = listener_head(c->srv);
    send_subscribed(c, head);
    c->cursor = after < 0 ? head : after;
    c->state = STREAM_BACKLOG;
    stream_backlog_next(c);
}
static void handle_subscribe(struct stream_conn *c, const cJSON *root)
{
    if (c->state != STREAM_OPEN) {
        send_error(c, "already_subscribed", "this connection is subscribed already", NULL);
        return;
    }
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(root, "after");
    int64_t from = -1;
    if (after && !cJSON_IsNull(after) && (!pt_json_get_int64(after, &from) || from < 0)) {
        send_error(c, "bad_request", "after must be a seq (a non-negative integer) or null", NULL);
        return;
    }
    struct stream_filter *f = NULL;
    const char *bad = NULL;
    int rc = wsmsg_read_filter(cJSON_GetObjectItemCaseSensitive(root, "filter"), &f, &bad);
    if (rc == -2) {
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    if (rc < 0) {
        send_error(c, "bad_request", bad, NULL);
        return;
    }
    c->filter = f;
    if (listener_head(c->srv) < 0) {
        /* The listener has not connected yet: start when it has. */
        c->state = STREAM_WAIT_HEAD;
        c->cursor = from;
        return;
    }
    stream_ops_start(c, from);
}

/* One complete client message (c->rx, c->rx_len). */
static void handle_message(struct stream_conn *c)
{
    pt_problem problem;
    cJSON *root = pt_json_parse_object(c->rx, c->rx_len, &problem);
    if (!root) {
        send_error(c, strcmp(problem.code, "internal") == 0 ? "internal" : "malformed_json",
                   problem.message[0] ? problem.message : "the message is not a JSON object", NULL);
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(root, "request_id");
    const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
    int wait;
    if (!t) {
        send_error(c, "bad_request", "a message needs a string type", NULL);
    } else if (strcmp(t, "subscribe") == 0) {
        handle_subscribe(c, root);
    } else if (strcmp(t, "create") == 0 || strcmp(t, "update") == 0 || strcmp(t, "list") == 0 ||
               strcmp(t, "refund") == 0) {
        if (!cJSON_IsString(rid) || !rid->valuestring[0] ||
            strlen(rid->valuestring) > REQUEST_ID_MAX) {
            send_error(c, "bad_request", "request_id must be a string of 1 to 200 bytes", NULL);
        } else if (c->ops >= STREAM_OPS_MAX) {
            struct db_result now = {0};
            db_result_error(&now, 429, "rate_limited",
                            "too many operations in flight on this connection", NULL);
            now.retry_after = 1;
            op_submit(c, rid->valuestring, NULL, &now);
        } else if ((wait = ratelimit_caller(c->srv, c->who.caller)) > 0) {
            /* Each operation is a request like its HTTP twin and takes a
             * token from the same bucket. (subscribe does not: it is once
             * per connection, and the upgrade passed the peer limit.) */
            struct db_result now = {0};
            c->srv->metrics.rate_limited_caller++;
            db_result_error(&now, 429, "rate_limited", RL_CALLER_MESSAGE, NULL);
            now.retry_after = wait;
            op_submit(c, rid->valuestring, NULL, &now);
        } else if (t[0] == 'c') {
            handle_create(c, root, rid->valuestring);
        } else if (t[0] == 'u') {
            handle_update(c, root, rid->valuestring);
        } else if (t[0] == 'r') {
            handle_refund(c, root, rid->valuestring);
        } else {
            handle_list(c, root, rid->valuestring);
        }
    } else {
        send_error(c, "unknown_type", "type must be subscribe, create, update, refund or list",
                   cJSON_IsString(rid) && strlen(rid->valuestring) <= REQUEST_ID_MAX
                       ? rid->valuestring
                       : NULL);
    }
    cJSON_Delete(root);
}

/* A piece of a client message: assembled up to the size limit; a longer
 * one is dropped as it arrives and answered with an error at its end. */
void stream_ops_receive(struct stream_conn *c, const char *in, size_t len)
{
    if (!c->rx_active) {
        c->rx_active = true;
        c->rx_too_big = false;
        c->rx_binary = lws_frame_is_binary(c->wsi);
        c->rx_len = 0;
    }
    size_t max = c->srv->cfg.max_body_bytes;
    if (!c->rx_too_big && !c->rx_binary) {
        if (c->rx_len + len > max) {
            c->rx_too_big = true;
            free(c->rx);
            c->rx = NULL;
            c->rx_len = 0;
        } else if (len) {
            char *bigger = realloc(c->rx, c->rx_len + len + 1);
            if (!bigger) {
                c->rx_too_big = true;
            } else {
                c->rx = bigger;
                memcpy(c->rx + c->rx_len, in, len);
                c->rx_len += len;
                c->rx[c->rx_len] = '\0';
            }
        }
    }
    if (!lws_is_final_fragment(c->wsi))
        return;
    c->rx_active = false;
    if (c->close_code) {
        /* closing: nothing more is answered */
    } else if (c->rx_binary) {
        send_error(c, "bad_request", "send JSON in text frames", NULL);
    } else if (c->rx_too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "a message may be at most %zu bytes", max);
        send_error(c, "payload_too_large", msg, NULL);
    } else {
        handle_message(c);
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}
