/*
 * http.c - request intake and response writing on the public port.
 */
#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "export.h"
#include "guard.h"
#include "pjson.h"
#include "proto.h"
#include "server.h"
#include "stream.h"
#include "utf8.h"

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
    /* lws keeps a NUL inside a value as it came; a value that C would cut
     * short there counts as absent (a token "good\0junk" is not "good"). */
    if (strlen(buf) != (size_t) len)
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
    if (strlen(buf) != (size_t) len)
        return -1;
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
        /* Decoded text goes back to the client in error messages, which
         * must stay valid JSON (UTF-8). */
        if (!pt_utf8_valid(frag, strlen(frag)))
            return -1;
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
    struct http_conn *conn = rq->conn;
    memset(rq, 0, sizeof *rq);
    rq->conn = conn;
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
    /* A 503 naming a payment to look up (a create whose outcome is not
     * known) does not invite a retry. */
    if (status == 503 && !rq->retry_after && !rq->location[0])
        rq->retry_after = 1;
    http_resume_reading(rq);
    lws_set_timeout(rq->wsi, NO_PENDING_TIMEOUT, 0);
    lws_callback_on_writable(rq->wsi);
}

void http_resume_reading(struct http_req *rq)
{
    if (rq->conn && rq->conn->rx_paused) {
        rq->conn->rx_paused = false;
        lws_rx_flow_control(rq->wsi, 1);
    }
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
        const char *type = rq->content_type ? rq->content_type : "application/json";
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *) type, (int) strlen(type), p, end))
            return -1;
    }
    if (rq->status != 204 && rq->status != 304 &&
        lws_add_http_header_content_length(wsi, rq->resp_len, p, end))
        return -1;
    if (add_header(rq, "x-request-id:", rq->request_id, p, end) ||
        add_header(rq, "cache-control:", rq->cache_control ? rq->cache_control : "no-store", p,
                   end))
        return -1;
    for (const char *const *h = rq->extra_headers; h && h[0]; h += 2)
        if (add_header(rq, h[0], h[1], p, end))
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

static void log_flush_cb(lws_sorted_usec_list_t *sul)
{
    http_log_flush(lws_container_of(sul, struct server, sul_log));
}

void http_log_flush(struct server *srv)
{
    lws_sul_cancel(&srv->sul_log);
    if (srv->log_batch)
        log_batch_flush(&srv->log, srv->log_batch);
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
    enum log_level level = rq->status >= 500 ? LOG_WARN : LOG_INFO;
    struct server *srv = rq->srv;
    if (srv->log_batch) {
        if (srv->log_batch->len == 0)
            lws_sul_schedule(srv->context, 0, &srv->sul_log, log_flush_cb, 1);
        log_fields_batched(&srv->log, srv->log_batch, level, "request", fields);
    } else {
        log_fields(&srv->log, level, "request", fields);
    }
    metrics_observe(&rq->srv->metrics, rq->route, rq->method_name, rq->status, dur);
}

/* Returns non-zero when the connection should close. */
int http_finish_request(struct http_req *rq)
{
    log_request(rq);
    struct lws *wsi = rq->wsi;
    /* lws 4.1.6 defers completing a transaction whose answer the socket
     * has not fully taken, and meanwhile reads the next request's bytes
     * as this one's body: such a connection closes once the answer is out
     * (lws flushes before it closes). */
    int close = rq->close_after || rq->srv->draining || lws_partial_buffered(wsi);
    reset_request(rq);
    if (close)
        return 1;
    guard_mark_consumed(rq);
    return lws_http_transaction_completed(wsi) ? 1 : 0;
}

/*
 * While the database works on a request, lws reads nothing more from its
 * connection; the answer turns reading back on (http_respond). Without
 * this, lws 4.1.6 spins the service thread for as long as the request
 * waits when the client has sent more bytes already: a connection with
 * unparsed bytes makes lws_service() poll with a zero timeout, and after a
 * request with a body lws stays in its body state and hands each pass to
 * LWS_CALLBACK_HTTP_BODY_COMPLETION again, consuming nothing. Reading must
 * be on again before the answer is written: lws 4.1.6 gives a
 * flow-controlled HTTP/1 connection no writable callbacks at all
 * (rops_handle_POLLIN_h1 returns before its POLLOUT handling).
 */
static void intake_done(struct http_req *rq)
{
    if (rq->phase == HTTP_WAITING && rq->conn && !rq->conn->rx_paused) {
        rq->conn->rx_paused = true;
        lws_rx_flow_control(rq->wsi, 0);
    }
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
    if (rq->method == HTTP_HEAD)
        rq->resp_sent = rq->resp_len; /* Content-Length says what GET would send */
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

/*
 * Answers now, in this callback, and has the connection closed: for a
 * request lws must not go on reading. The caller returns -1 to lws, which
 * closes the connection after flushing what the socket did not take.
 */
static int refuse_now(struct http_req *rq, int status, const char *code, const char *message)
{
    rq->close_after = true;
    http_respond_error(rq, status, code, message, NULL);
    on_writeable(rq);
    return -1;
}

static bool is_method(struct http_req *rq, enum lws_token_indexes token)
{
    return lws_hdr_total_length(rq->wsi, token) > 0;
}

/* A header value without surrounding blanks, lower-cased; false when absent,
 * too long, or holding a NUL. */
static bool header_word(struct http_req *rq, enum lws_token_indexes token, char *buf, size_t cap)
{
    int n = http_header(rq, token, buf, cap);
    if (n <= 0)
        return false;
    size_t end = (size_t) n;
    while (end && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
        end--;
    buf[end] = '\0';
    for (char *c = buf; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    return true;
}

/*
 * How the body is delimited (RFC 9112 section 6). Returns -1 after
 * refusing the request (refuse_now); else 0 with *length (Content-Length
 * or 0) and *lws_body: whether lws will read a body (it takes
 * Content-Length when present, and for POST, PUT and PATCH without it
 * reads up to 100 MiB as body).
 *
 * lws 4.1.6 takes the first Content-Length it parses with atoll() (two
 * headers reach us joined by a comma; "-1" means no body), and knows
 * nothing of Transfer-Encoding: a body sent chunked, or with a second
 * length, would otherwise be read as the next request (request
 * smuggling). Anything but one plain length or "chunked" is refused and
 * the connection closed.
 */
static int read_framing(struct http_req *rq, uint64_t *length, bool *lws_body)
{
    char v[64];
    bool with_body = is_method(rq, WSI_TOKEN_POST_URI) || is_method(rq, WSI_TOKEN_PUT_URI) ||
                     is_method(rq, WSI_TOKEN_PATCH_URI);
    bool has_cl = lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    bool has_te = lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    *length = 0;
    *lws_body = with_body;
    if (has_te) {
        if (has_cl)
            return refuse_now(rq, 400, "bad_request",
                              "send Content-Length or Transfer-Encoding, not both");
        if (!header_word(rq, WSI_TOKEN_HTTP_TRANSFER_ENCODING, v, sizeof v) ||
            strcmp(v, "chunked") != 0)
            return refuse_now(rq, 400, "bad_request",
                              "the only Transfer-Encoding accepted is chunked");
        if (!with_body)
            return refuse_now(rq, 400, "bad_request",
                              "a chunked body is accepted on POST, PUT and PATCH only");
        rq->chunked = true;
        return 0;
    }
    if (!has_cl)
        return 0;
    if (!header_word(rq, WSI_TOKEN_HTTP_CONTENT_LENGTH, v, sizeof v))
        return refuse_now(rq, 400, "bad_request", "Content-Length is not a number");
    size_t digits = strspn(v, "0123456789");
    if (digits == 0 || digits > 15 || v[digits] != '\0')
        return refuse_now(rq, 400, "bad_request", "Content-Length must be one non-negative number");
    *length = strtoull(v, NULL, 10);
    *lws_body = *length > 0;
    return 0;
}

/* Expect: 100-continue is answered before the body is read, so that a
 * client that waits for it does not wait for nothing (lws 4.1.6 ignores
 * the header). Other expectations are ignored (RFC 9110 section 10.1.1
 * allows it). */
static int expect_continue(struct http_req *rq)
{
    char v[32];
    if (!header_word(rq, WSI_TOKEN_HTTP_EXPECT, v, sizeof v) || strcmp(v, "100-continue") != 0)
        return 0;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char *start = rq->srv->tx_buf + LWS_PRE;
    memcpy(start, cont, sizeof cont - 1);
    if (lws_write(rq->wsi, start, sizeof cont - 1, LWS_WRITE_HTTP) < (int) sizeof cont - 1)
        return -1;
    return 0;
}

static int on_request(struct http_req *rq, const char *path, size_t len)
{
    rq->conn = lws_get_opaque_user_data(rq->wsi);
    if (!rq->conn) {
        rq->conn = calloc(1, sizeof *rq->conn);
        lws_set_opaque_user_data(rq->wsi, rq->conn);
    }
    reset_request(rq);
    link_request(rq);
    rq->t_start_us = server_now_us();
    snprintf(rq->path, sizeof rq->path, "%.*s", (int) (len < sizeof rq->path ? len : 0), path);
    if (len >= sizeof rq->path)
        snprintf(rq->path, sizeof rq->path, "/too-long");
    read_method(rq);
    request_id(rq);
    struct server *srv = rq->srv;
    uint64_t content_length;
    bool lws_body;
    if (read_framing(rq, &content_length, &lws_body) < 0)
        return -1;
    if (lws_body && guard_pipelined(rq))
        return refuse_now(rq, 400, "bad_request",
                          "a request with a body was sent before the answer to the previous "
                          "request: send it again once that answer has arrived");
    /* lws reads a body we will not (GET with a Content-Length, a POST
     * without one): the connection ends after the answer rather than lws
     * going on to take those bytes as a body or a request. */
    bool reads_body = (content_length > 0 || rq->chunked) &&
                      (rq->method == HTTP_POST || rq->method == HTTP_PATCH ||
                       rq->method == HTTP_PUT || rq->method == HTTP_DELETE);
    if (lws_body && !reads_body)
        rq->close_after = true;
    if (srv->draining) {
        rq->close_after = true;
        http_respond_error(rq, 503, "unavailable", "the server is shutting down", NULL);
    } else if (guard_check_url(rq, len) == 0) {
        if (content_length > srv->cfg.max_body_bytes) {
            /* Refuse before reading: the unread body makes the connection
             * unusable, so it closes after the answer. */
            rq->close_after = true;
            char msg[96];
            snprintf(msg, sizeof msg, "the body is larger than %zu bytes", srv->cfg.max_body_bytes);
            http_respond_error(rq, 413, "payload_too_large", msg, NULL);
        } else if (reads_body) {
            rq->phase = HTTP_READING;
            lws_set_timeout(rq->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                            srv->cfg.request_timeout_seconds);
            if (rq->chunked)
                rq->close_after = true; /* lws still expects its 100 MiB */
            return expect_continue(rq);
        } else {
            api_handle(rq);
        }
    }
    intake_done(rq);
    return 0;
}

static void append_body(struct http_req *rq, const char *in, size_t len)
{
    if (rq->body_too_large || !len)
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

/* Feeds bytes of a chunked body to the decoder; the data goes to the body.
 * Stops at the end of the body or at the first error. */
static void dechunk(struct http_req *rq, const char *in, size_t len)
{
    size_t i = 0;
    while (i < len && rq->chunk_state != CHUNK_DONE && !rq->chunk_error) {
        char c = in[i];
        switch (rq->chunk_state) {
        case CHUNK_SIZE: {
            int d = pt_hex_digit(c);
            if (d >= 0 && rq->chunk_digits < 15) {
                rq->chunk_left = rq->chunk_left * 16 + (uint64_t) d;
                rq->chunk_digits++;
            } else if (rq->chunk_digits > 0 && (c == ';' || c == ' ' || c == '\t')) {
                rq->chunk_state = CHUNK_EXT;
            } else if (rq->chunk_digits > 0 && c == '\r') {
                rq->chunk_state = CHUNK_SIZE_LF;
            } else {
                rq->chunk_error = true;
            }
            i++;
            break;
        }
        case CHUNK_EXT:
            if (c == '\r')
                rq->chunk_state = CHUNK_SIZE_LF;
            i++;
            break;
        case CHUNK_SIZE_LF:
            if (c != '\n')
                rq->chunk_error = true;
            rq->chunk_state = rq->chunk_left ? CHUNK_DATA : CHUNK_TRAILER;
            rq->chunk_digits = 0;
            i++;
            break;
        case CHUNK_DATA: {
            size_t n = len - i;
            if (n > rq->chunk_left)
                n = (size_t) rq->chunk_left;
            append_body(rq, in + i, n);
            rq->chunk_left -= n;
            i += n;
            if (!rq->chunk_left)
                rq->chunk_state = CHUNK_DATA_CR;
            break;
        }
        case CHUNK_DATA_CR:
            rq->chunk_error = c != '\r';
            rq->chunk_state = CHUNK_DATA_LF;
            i++;
            break;
        case CHUNK_DATA_LF:
            rq->chunk_error = c != '\n';
            rq->chunk_state = CHUNK_SIZE;
            i++;
            break;
        case CHUNK_TRAILER:
            /* an empty line ends the body; a trailer field is skipped */
            if (c == '\r' && rq->chunk_digits == 0)
                rq->chunk_state = CHUNK_TRAILER_LF;
            else if (c == '\n')
                rq->chunk_digits = 0;
            else
                rq->chunk_digits = 1;
            i++;
            break;
        case CHUNK_TRAILER_LF:
            rq->chunk_error = c != '\n';
            rq->chunk_state = CHUNK_DONE;
            i++;
            break;
        case CHUNK_DONE:
            break;
        }
    }
}

/* The whole body is in: answer it. */
static void body_read(struct http_req *rq)
{
    if (rq->body_too_large) {
        rq->close_after = true;
        http_respond_error(rq, 413, "payload_too_large", "the body is too large", NULL);
    } else {
        api_handle(rq);
    }
    intake_done(rq);
}

static void on_body(struct http_req *rq, const char *in, size_t len)
{
    if (rq->phase != HTTP_READING)
        return;
    if (!rq->chunked) {
        append_body(rq, in, len);
        return;
    }
    dechunk(rq, in, len);
    if (rq->chunk_error) {
        http_respond_error(rq, 400, "bad_request", "the chunked body is malformed", NULL);
        intake_done(rq);
    } else if (rq->body_too_large || rq->chunk_state == CHUNK_DONE) {
        body_read(rq);
    }
}

static void on_body_complete(struct http_req *rq)
{
    /* A chunked body ends at its last chunk, not where lws thinks. */
    if (rq->phase != HTTP_READING || rq->chunked)
        return;
    body_read(rq);
}

/*
 * An error answer written at once on a connection lws is about to close,
 * where no request of ours exists (the request line or an upgrade was
 * refused before LWS_CALLBACK_HTTP). Returns -1 for the callback to return,
 * which has lws close the connection after flushing the answer.
 */
static int raw_refuse(struct server *srv, struct lws *wsi, const char *message)
{
    char *body = pt_error_body("bad_request", message, NULL);
    if (!body)
        return -1;
    char rid[48];
    snprintf(rid, sizeof rid, "%s-%08" PRIx64, srv->boot_id, ++srv->request_counter);
    char *out = (char *) srv->tx_buf + LWS_PRE;
    int n = snprintf(out, HTTP_HEADERS_MAX + HTTP_CHUNK,
                     "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\nx-request-id: %s\r\ncache-control: no-store\r\n"
                     "connection: close\r\n\r\n%s",
                     strlen(body), rid, body);
    free(body);
    if (n > 0 && n < HTTP_HEADERS_MAX + HTTP_CHUNK)
        lws_write(wsi, (unsigned char *) out, (size_t) n, LWS_WRITE_RAW);
    metrics_observe(&srv->metrics, "unmatched", "OTHER", 400, 0);
    return -1;
}

/*
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, before lws acts on an Upgrade header.
 *
 * h2c: lws 4.1.6 answers 101 and speaks HTTP/2 on the plain port (the
 * answer to the upgrading request goes out as DATA without HEADERS, and
 * its streams escape the connection cap); the public port speaks HTTP/1.1
 * only, and ignoring the header is not possible from here (0 lets lws
 * upgrade), so the request is refused and the connection closed.
 *
 * websocket: lws binds the first subprotocol in the client's list that
 * names any protocol of the vhost ("http" and the LISTEN connection's
 * included), and closes without an answer when none matches; the upgrade
 * is answered 400 here unless paytrackr.v1 is the one it would pick.
 */
static int confirm_upgrade(struct server *srv, struct lws *wsi, const char *up)
{
    /* Any other value: lws 4.1.6 has answered 403 itself already and
     * goes on to ask us anyway. */
    if (!up || (strcasecmp(up, "h2c") != 0 && strcasecmp(up, "websocket") != 0))
        return -1;
    if (strcasecmp(up, "h2c") == 0)
        return raw_refuse(srv, wsi,
                          "the only upgrade offered is to a WebSocket at GET /v1/stream; "
                          "HTTP/2 is not offered on this port");
    char list[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
    if (n > 0 && n < (int) sizeof list &&
        lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) > 0) {
        char *save = NULL;
        for (char *tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            if (strcmp(tok, PT_PROTO_SUBPROTOCOL) == 0)
                return 0;
            if (lws_vhost_name_to_protocol(lws_get_vhost(wsi), tok))
                break;
        }
    }
    return raw_refuse(srv, wsi,
                      "a WebSocket upgrade needs the subprotocol " PT_PROTO_SUBPROTOCOL
                      " (Sec-WebSocket-Protocol)");
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
        /* Whatever the connection became: only http.c sets this data on
         * the public vhost. */
        if (reason == LWS_CALLBACK_WSI_DESTROY) {
            free(lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return srv ? confirm_upgrade(srv, wsi, in) : -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* A WebSocket upgrade without our subprotocol lands on protocol 0
         * (this one): refuse it rather than speak WebSocket as "http".
         * confirm_upgrade has answered it already. */
        return 1;
    case LWS_CALLBACK_RAW_ADOPT:
        /*
         * lws 4.1.6 turns a connection into a raw socket, bound to this
         * protocol, for CONNECT (it then holds the connection with no
         * timeout) and, with LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_
         * ACCEPT_CONFIG (main.c), for a request line with a method it does
         * not know (otherwise it closes with no answer). Answer and close.
         * On the TLS port the same happens to a client that does not start
         * with a TLS hello: that one is closed without a plain-text answer.
         */
        if (!srv || srv->cfg.tls_cert)
            return -1;
        return raw_refuse(srv, wsi,
                          "the request line is not one this server accepts (method, "
                          "request target or version)");
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
