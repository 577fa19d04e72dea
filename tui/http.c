/*
 * http.c - one-shot HTTP requests on the same lws context.
 *
 * The WebSocket protocol has create, update and list; deleting and the
 * audit trail are HTTP only (DELETE /v1/payments/{id}, GET
 * /v1/payments/{id}/events), so the TUI makes those few calls here, with
 * the same host, TLS settings and token as the stream. Each request owns a
 * bounded body buffer; its answer goes to app_on_result() exactly once.
 * Requests are found by their wsi, so a late callback for a finished
 * request finds nothing rather than freed memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "tui.h"

#define HTTP_BODY_MAX (4u << 20)
#define HTTP_MAX_REQS 16

struct hreq {
    struct hreq *next;
    struct lws *wsi;
    enum req_kind kind;
    uint64_t tag;
    int status;
    char *body;
    size_t len, cap;
    bool overflow;
    char method[8];
    char path[1024];
};

static struct {
    struct lws_context *ctx;
    const struct args *args;
    struct hreq *reqs;
    int count;
} h;

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

const struct lws_protocols http_protocol = {
    "pt-http", http_callback, 0, 0, 0, NULL, 0,
};

void http_init(struct lws_context *ctx, const struct args *args)
{
    memset(&h, 0, sizeof h);
    h.ctx = ctx;
    h.args = args;
}

static struct hreq *find(const struct lws *wsi)
{
    for (struct hreq *r = h.reqs; r != NULL; r = r->next)
        if (r->wsi == wsi)
            return r;
    return NULL;
}

static void unlink_req(struct hreq *r)
{
    for (struct hreq **pp = &h.reqs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            h.count--;
            return;
        }
    }
}

/* Delivers the answer (status 0 = failed) and frees the request. */
static void finish(struct hreq *r, int status)
{
    cJSON *body = NULL;

    unlink_req(r);
    if (status > 0 && r->len > 0 && !r->overflow)
        body = cJSON_ParseWithLength(r->body, r->len);
    app_on_result(r->kind, r->tag, status, body);
    cJSON_Delete(body);
    free(r->body);
    free(r);
}

int http_request(const char *method, const char *path, enum req_kind kind, uint64_t tag)
{
    struct lws_client_connect_info i;
    struct hreq *r;

    /* the stream's address: resolving here would block the loop */
    const char *address = conn_address();

    if (h.count >= HTTP_MAX_REQS || address == NULL)
        return -1;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    r->kind = kind;
    r->tag = tag;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s%s", h.args->prefix, path);
    r->next = h.reqs;
    h.reqs = r;
    h.count++;
    memset(&i, 0, sizeof i);
    i.context = h.ctx;
    i.address = address;
    i.port = h.args->port;
    i.path = r->path;
    i.host = h.args->host;
    i.origin = h.args->host;
    i.method = r->method;
    i.protocol = http_protocol.name;
    i.local_protocol_name = http_protocol.name;
    i.ssl_connection = h.args->tls ? LCCSCF_USE_SSL : 0;
    i.alpn = "http/1.1";
    i.pwsi = &r->wsi;
    i.keep_warm_secs = 1;
    if (lws_client_connect_via_info(&i) == NULL) {
        /* If an error callback already finished it, it is gone. */
        for (struct hreq *x = h.reqs; x != NULL; x = x->next) {
            if (x == r) {
                unlink_req(r);
                free(r->body);
                free(r);
                return -1;
            }
        }
        return 0;
    }
    return 0;
}

static void append(struct hreq *r, const void *in, size_t len)
{
    if (r->overflow)
        return;
    if (r->len + len > HTTP_BODY_MAX) {
        r->overflow = true;
        return;
    }
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *nb;

        while (cap < r->len + len)
            cap *= 2;
        nb = realloc(r->body, cap);
        if (nb == NULL) {
            r->overflow = true;
            return;
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, in, len);
    r->len += len;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct hreq *r = find(wsi);

    (void) user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = (unsigned char **) in, *end = (*p) + len;
        char value[4200];
        int n;

        if (r == NULL || h.args->token == NULL)
            break;
        n = snprintf(value, sizeof value, "Bearer %s", h.args->token);
        if (n < 0 || (size_t) n >= sizeof value)
            return -1;
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *) value,
                                         n, p, end))
            return -1;
        memset(value, 0, sizeof value);
        break;
    }

    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r != NULL)
            r->status = (int) lws_http_client_http_response(wsi);
        break;

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (r != NULL)
            append(r, in, len);
        break;

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buffer[4096 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = (int) sizeof buffer - LWS_PRE;

        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        break;
    }

    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r != NULL)
            finish(r, r->status > 0 ? r->status : 0);
        return -1; /* done with this connection */

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r != NULL) {
            if (r->status > 0)
                finish(r, r->status);
            else
                finish(r, 0);
        }
        break;

    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (r != NULL)
            finish(r, r->status >= 200 && r->status < 300 && r->len == 0 ? r->status : 0);
        break;

    default:
        break;
    }
    return 0;
}
