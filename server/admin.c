/*
 * admin.c - probes and metrics on the admin port.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_async.h"
#include "server.h"

struct admin_req {
    int status;
    const char *content_type;
    char *body;
    size_t len, sent;
};

static char *readiness_body(const struct server *srv)
{
    char buf[256];
    snprintf(buf, sizeof buf, "{\"ready\":%s,\"database\":%s,\"draining\":%s}\n",
             server_ready(srv) ? "true" : "false", srv->db_ready ? "true" : "false",
             srv->draining ? "true" : "false");
    return strdup(buf);
}

/* Appends the webhook engine's lines to the rendered metrics; frees
 * `text` and returns the longer text, or NULL when memory ran out. */
static char *admin_append_webhooks(const struct server *srv, char *text)
{
    char *more = text && srv->webhooks ? webhook_metrics_text(srv->webhooks) : NULL;
    if (!more)
        return text;
    size_t a = strlen(text), b = strlen(more);
    char *both = realloc(text, a + b + 1);
    if (both)
        memcpy(both + a, more, b + 1);
    else
        free(text);
    free(more);
    return both;
}

static void answer(struct admin_req *ar, const struct server *srv, const char *path)
{
    ar->content_type = "application/json";
    ar->status = 200;
    if (strcmp(path, "/healthz") == 0) {
        ar->body = strdup("{\"status\":\"ok\"}\n");
    } else if (strcmp(path, "/readyz") == 0) {
        ar->status = server_ready(srv) ? 200 : 503;
        ar->body = readiness_body(srv);
    } else if (strcmp(path, "/metrics") == 0) {
        struct db_pool_stats st;
        db_pool_get_stats(srv->pool, &st);
        st.read_connections = srv->cfg.db_read_connections;
        st.read_connected = db_async_connected(srv->reads);
        st.reads_in_flight = db_async_in_flight(srv->reads);
        ar->content_type = "text/plain; version=0.0.4";
        ar->body = metrics_render(&srv->metrics, &st, server_ready(srv), srv->draining);
        ar->body = admin_append_webhooks(srv, ar->body);
    } else {
        ar->status = 404;
        ar->body = strdup("{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}");
    }
    if (!ar->body)
        ar->status = 500;
    ar->len = ar->body ? strlen(ar->body) : 0;
    ar->sent = 0;
}

static int write_headers(struct lws *wsi, struct admin_req *ar)
{
    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int) ar->status, ar->content_type, ar->len, &p,
                                    end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *) "cache-control:",
                                    (const unsigned char *) "no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return 0;
}

int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct admin_req *ar = user;
    struct server *srv = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        char path[64];
        snprintf(path, sizeof path, "%.*s", (int) (len < sizeof path ? len : 0), (const char *) in);
        free(ar->body);
        memset(ar, 0, sizeof *ar);
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
            snprintf(path, sizeof path, "/method-not-allowed");
        answer(ar, srv, path);
        if (write_headers(wsi, ar) < 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!ar || !ar->body)
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        size_t n = ar->len - ar->sent;
        if (n > 16384)
            n = 16384;
        unsigned char buf[LWS_PRE + 16384];
        memcpy(buf + LWS_PRE, ar->body + ar->sent, n);
        int last = ar->sent + n == ar->len;
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
            (int) n)
            return -1;
        ar->sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        free(ar->body);
        ar->body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ar) {
            free(ar->body);
            ar->body = NULL;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
