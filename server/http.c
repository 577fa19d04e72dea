/*
 * http.c - request intake and response writing on the public port.
 */
#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "export.h"
#include "guard.h"
#include "pjson.h"
#include "server.h"

static const struct {
    enum lws_token_indexes token;
    enum http_method method;
    const char *name;
} method_tokens[] = {
    {WSI_TOKEN_GET_URI, HTTP_GET, "GET"},          {WSI_TOKEN_POST_URI, HTTP_POST, "POST"},
    {WSI_TOKEN_PATCH_URI, HTTP_PATCH, "PATCH"},    {WSI_TOKEN_PUT_URI, HTTP_PUT, "PUT"},
    {WSI_TOKEN_DELETE_URI, HTTP_DELETE, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, HTTP_OPTIONS, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, HTTP_HEAD, "HEAD"},
};

int http_header(struct http_req *rq, enum lws_token_indexes token, char *buf, size_t cap)
{
    int len = lws_hdr_total_length(rq->wsi, token);
    if (len <= 0 || (size_t) len >= cap)
        return -1;
    if (lws_hdr_copy(rq->wsi, buf, (int) cap, token) < 0)
        return -1;
    return len;
}

int http_custom_header(struct http_req *rq, const char *name, char *buf, size_t cap)
{
    int nlen = (int) strlen(name);
    int len = lws_hdr_custom_length(rq->wsi, name, nlen);
    if (len < 0 || (size_t) len >= cap)
        return -1;
    if (lws_hdr_custom_copy(rq->wsi, buf, (int) cap, name, nlen) < 0)
        return -1;
    buf[len] = '\0';
    return len;
}

int http_query_args(struct http_req *rq, const char **keys, const char **values, int max,
                    char *store, size_t cap)
{
    size_t used = 0;
    int n = 0;
    for (int i = 0;; i++) {
        int flen = lws_hdr_fragment_length(rq->wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0) {
            if (lws_hdr_copy_fragment(rq->wsi, store + used, (int) (cap - used),
                                      WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
                break;
            /* an empty fragment ("a=1&&b=2"): skip it */
            continue;
        }
        if (n == max || used + (size_t) flen + 1 > cap)
            return -1;
        char *frag = store + used;
        if (lws_hdr_copy_fragment(rq->wsi, frag, (int) (cap - used), WSI_TOKEN_HTTP_URI_ARGS, i) <
            0)
            return -1;
        used += (size_t) flen + 1;
        char *eq = strchr(frag, '=');
        if (eq)
            *eq = '\0';
        keys[n] = frag;
        values[n] = eq ? eq + 1 : "";
        n++;
    }
    return n;
}

static void request_id(struct http_req *rq)
{
    char given[72];
    int n = http_custom_header(rq, "x-request-id:", given, sizeof given);
    /* A caller's id is reused when it is short and plain (safe to log). */
    if (n > 0 && n <= 64 &&
        strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_.:") == (size_t) n) {
        memcpy(rq->request_id, given, (size_t) n + 1);
        return;
    }
    snprintf(rq->request_id, sizeof rq->request_id, "%s-%08" PRIx64, rq->srv->boot_id,
             ++rq->srv->request_counter);
}

static void reset_request(struct http_req *rq)
{
    free(rq->body);
    free(rq->resp_body);
    struct server *srv = rq->srv;
    struct lws *wsi = rq->wsi;
    struct http_req *next = rq->next, *prev = rq->prev;
    bool linked = rq->linked;
    memset(rq, 0, sizeof *rq);
    rq->srv = srv;
    rq->wsi = wsi;
    rq->next = next;
    rq->prev = prev;
    rq->linked = linked;
    rq->route = "unmatched";
    rq->method_name = "OTHER";
}

static void link_request(struct http_req *rq)
{
    if (rq->linked)
        return;
    rq->next = rq->srv->requests;
    rq->prev = NULL;
    if (rq->next)
        rq->next->prev = rq;
    rq->srv->requests = rq;
    rq->linked = true;
    rq->srv->open_requests++;
}

static void unlink_request(struct http_req *rq)
{
    if (!rq->linked)
        return;
    if (rq->prev)
        rq->prev->next = rq->next;
    else
        rq->srv->requests = rq->next;
    if (rq->next)
        rq->next->prev = rq->prev;
    rq->linked = false;
    rq->srv->open_requests--;
}

void http_respond(struct http_req *rq, int status, char *body)
{
    free(rq->resp_body);
    rq->status = status;
    rq->resp_body = body;
    rq->resp_len = body ? strlen(body) : 0;
    rq->resp_sent = 0;
    rq->phase = HTTP_SEND_HEADERS;
    if (status == 503 && !rq->retry_after)
        rq->retry_after = 1;
    lws_set_timeout(rq->wsi, NO_PENDING_TIMEOUT, 0);
    lws_callback_on_writable(rq->wsi);
}

void http_respond_error(struct http_req *rq, int status, const char *code, const char *message,
                        const char *field)
{
    if (status == 401)
        rq->www_authenticate = true;
    http_respond(rq, status, pt_error_body(code, message, field));
}

void http_respond_result(struct http_req *rq, struct db_result *result)
{
    snprintf(rq->etag, sizeof rq->etag, "%s", result->etag);
    snprintf(rq->location, sizeof rq->location, "%s", result->location);
    rq->replayed = result->replayed;
    rq->retry_after = result->retry_after;
    char *body = result->body;
    result->body = NULL;
    http_respond(rq, result->status, body);
}

static int add_header(struct http_req *rq, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(rq->wsi, (const unsigned char *) name,
                                       (const unsigned char *) value, (int) strlen(value), p, end);
}

/* Puts the response headers, finalised, at *p. */
static int put_headers(struct http_req *rq, unsigned char **p, unsigned char *end)
{
    struct lws *wsi = rq->wsi;
    if (lws_add_http_header_status(wsi, (unsigned int) rq->status, p, end))
        return -1;
    if (rq->resp_body) {
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *) "application/json", 16, p, end))
            return -1;
    }
    if (rq->status != 204 && rq->status != 304 &&
        lws_add_http_header_content_length(wsi, rq->resp_len, p, end))
        return -1;
    if (add_header(rq, "x-request-id:", rq->request_id, p, end) ||
        add_header(rq, "cache-control:", "no-store", p, end))
        return -1;
    if (rq->etag[0] && add_header(rq, "etag:", rq->etag, p, end))
        return -1;
    if (rq->location[0] && add_header(rq, "location:", rq->location, p, end))
        return -1;
    if (rq->allow && add_header(rq, "allow:", rq->allow, p, end))
        return -1;
    if (rq->replayed && add_header(rq, "idempotent-replayed:", "true", p, end))
        return -1;
    if (rq->www_authenticate &&
        add_header(rq, "www-authenticate:", "Bearer realm=\"paytrackr\"", p, end))
        return -1;
    if (rq->retry_after) {
        char num[32];
        snprintf(num, sizeof num, "%d", rq->retry_after);
        if (add_header(rq, "retry-after:", num, p, end))
            return -1;
    }
    if ((rq->close_after || rq->srv->draining) && add_header(rq, "connection:", "close", p, end))
        return -1;
    if (lws_finalize_http_header(wsi, p, end))
        return -1;
    return 0;
}

static void log_request(struct http_req *rq)
{
    int64_t dur = server_now_us() - rq->t_start_us;
    char status[8], ms[32];
    snprintf(status, sizeof status, "%d", rq->status);
    snprintf(ms, sizeof ms, "%.3f", (double) dur / 1000.0);
    /* The path is client input: it is logged only for an authenticated
     * request on one of our routes, so a token pasted into a URL by
     * mistake (or by a prober) never reaches the logs. */
    bool path_ok = rq->authenticated && strcmp(rq->route, "unmatched") != 0 && rq->status != 404;
    struct log_field fields[] = {
        {"request_id", rq->request_id, 0},
        {"method", rq->method_name, 0},
        {"route", rq->route, 0},
        {"path", path_ok ? rq->path : "-", 0},
        {"status", status, 1},
        {"duration_ms", ms, 1},
        {NULL, NULL, 0},
    };
    log_fields(&rq->srv->log, rq->status >= 500 ? LOG_WARN : LOG_INFO, "request", fields);
    metrics_observe(&rq->srv->metrics, rq->route, rq->method_name, rq->status, dur);
}

/* Returns non-zero when the connection should close. */
int http_finish_request(struct http_req *rq)
{
    log_request(rq);
    int close = rq->close_after || rq->srv->draining;
    reset_request(rq);
    if (close)
        return 1;
    return lws_http_transaction_completed(rq->wsi) ? 1 : 0;
}

/*
 * The headers and the first piece of the body go out in one write, and so
 * in one TCP segment for most answers: a separate write for the headers
 * costs a send and a loopback or network round of its own per request, and
 * wakes the client twice. The public port speaks HTTP/1.1 only (tls.c
 * refuses h2), where lws_write() passes bytes through as they are and
 * buffers whatever the socket does not take.
 */
static int on_writeable(struct http_req *rq)
{
    if (rq->export)
        return export_writeable(rq);
    if (rq->phase != HTTP_SEND_HEADERS && rq->phase != HTTP_SEND_BODY)
        return 0;
    unsigned char *start = rq->srv->tx_buf + LWS_PRE, *p = start;
    if (rq->phase == HTTP_SEND_HEADERS) {
        if (put_headers(rq, &p, start + HTTP_HEADERS_MAX) < 0)
            return -1;
        rq->phase = HTTP_SEND_BODY;
    }
    size_t n = rq->resp_len - rq->resp_sent;
    if (n > HTTP_CHUNK)
        n = HTTP_CHUNK;
    if (n)
        memcpy(p, rq->resp_body + rq->resp_sent, n);
    p += n;
    bool last = rq->resp_sent + n == rq->resp_len;
    int len = (int) (p - start);
    if (lws_write(rq->wsi, start, (size_t) len, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < len)
        return -1;
    rq->resp_sent += n;
    if (!last) {
        lws_callback_on_writable(rq->wsi);
        return 0;
    }
    return http_finish_request(rq) ? -1 : 0;
}

static void read_method(struct http_req *rq)
{
    rq->method = HTTP_OTHER;
    rq->method_name = "OTHER";
    for (size_t i = 0; i < sizeof method_tokens / sizeof method_tokens[0]; i++) {
        if (lws_hdr_total_length(rq->wsi, method_tokens[i].token) > 0) {
            rq->method = method_tokens[i].method;
            rq->method_name = method_tokens[i].name;
            return;
        }
    }
}

static int on_request(struct http_req *rq, const char *path, size_t len)
{
    reset_request(rq);
    link_request(rq);
    rq->t_start_us = server_now_us();
    snprintf(rq->path, sizeof rq->path, "%.*s", (int) (len < sizeof rq->path ? len : 0), path);
    if (len >= sizeof rq->path)
        snprintf(rq->path, sizeof rq->path, "/too-long");
    read_method(rq);
    request_id(rq);
    struct server *srv = rq->srv;
    if (srv->draining) {
        rq->close_after = true;
        http_respond_error(rq, 503, "unavailable", "the server is shutting down", NULL);
        return 0;
    }
    if (guard_check_url(rq, len) < 0)
        return 0;
    char cl[32];
    uint64_t content_length = 0;
    if (http_header(rq, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl) > 0)
        content_length = strtoull(cl, NULL, 10);
    if (content_length > srv->cfg.max_body_bytes) {
        /* Refuse before reading: the unread body makes the connection
         * unusable, so it closes after the answer. */
        rq->close_after = true;
        char msg[96];
        snprintf(msg, sizeof msg, "the body is larger than %zu bytes", srv->cfg.max_body_bytes);
        http_respond_error(rq, 413, "payload_too_large", msg, NULL);
        return 0;
    }
    if (content_length > 0 && (rq->method == HTTP_POST || rq->method == HTTP_PATCH ||
                               rq->method == HTTP_PUT || rq->method == HTTP_DELETE)) {
        rq->phase = HTTP_READING;
        lws_set_timeout(rq->wsi, PENDING_TIMEOUT_HTTP_CONTENT, srv->cfg.request_timeout_seconds);
        return 0;
    }
    api_handle(rq);
    return 0;
}

static void on_body(struct http_req *rq, const char *in, size_t len)
{
    if (rq->phase != HTTP_READING || rq->body_too_large)
        return;
    if (rq->body_len + len > rq->srv->cfg.max_body_bytes) {
        rq->body_too_large = true;
        free(rq->body);
        rq->body = NULL;
        rq->body_len = 0;
        return;
    }
    char *bigger = realloc(rq->body, rq->body_len + len + 1);
    if (!bigger) {
        rq->body_too_large = true;
        return;
    }
    rq->body = bigger;
    memcpy(rq->body + rq->body_len, in, len);
    rq->body_len += len;
    rq->body[rq->body_len] = '\0';
}

static void on_body_complete(struct http_req *rq)
{
    if (rq->phase != HTTP_READING)
        return;
    if (rq->body_too_large) {
        rq->close_after = true;
        http_respond_error(rq, 413, "payload_too_large", "the body is too large", NULL);
        return;
    }
    api_handle(rq);
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct http_req *rq = user;
    struct server *srv = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        rq->srv = srv;
        rq->wsi = wsi;
        return on_request(rq, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        on_body(rq, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        on_body_complete(rq);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return rq && rq->srv ? on_writeable(rq) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        /* lws frees this per-session data after either: forget it. */
        if (rq && rq->srv) {
            if (rq->job)
                rq->job->owner = NULL; /* the job finishes without us */
            rq->job = NULL;
            export_release(rq);
            unlink_request(rq);
            free(rq->body);
            free(rq->resp_body);
            rq->body = rq->resp_body = NULL;
            rq->srv = NULL;
        }
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return srv ? guard_admit_connection(srv) : 0;
    case LWS_CALLBACK_WSI_CREATE:
    case LWS_CALLBACK_WSI_DESTROY:
        /* lws sends both to the vhost's first protocol whatever the
         * connection became (WebSocket too): they count connections. */
        if (srv)
            guard_connection_event(srv, reason == LWS_CALLBACK_WSI_CREATE);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* A WebSocket upgrade without our subprotocol lands on protocol 0
         * (this one): refuse it rather than speak WebSocket as "http". */
        return 1;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* A worker finished a job (or a signal arrived): collect on the
         * service thread. */
        if (srv)
            api_service_wakeup(srv);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
