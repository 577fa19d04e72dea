/*
 * stream_upgrade.c - the HTTP upgrade to the stream: only /v1/stream,
 * only while serving, only with a valid token (see stream_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjson.h"
#include "ratelimit.h"
#include "server.h"
#include "stream_int.h"

/* Answers the upgrade request with an HTTP error and refuses it. The wsi
 * has just been switched to the ws role, whose raw writes go straight out
 * (a few hundred bytes on a fresh connection). */
static int refuse(struct lws *wsi, int status, const char *reason, const char *code,
                  const char *message, int retry_after)
{
    char *body = pt_error_body(code, message, NULL);
    char retry[32] = "";
    if (retry_after > 0)
        snprintf(retry, sizeof retry, "retry-after: %d\r\n", retry_after);
    unsigned char buf[LWS_PRE + 1024];
    int n = snprintf((char *) buf + LWS_PRE, sizeof buf - LWS_PRE,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n%s%s"
                     "connection: close\r\n\r\n%s",
                     status, reason, body ? strlen(body) : 0,
                     status == 401 ? "www-authenticate: Bearer realm=\"paytrackr\"\r\n" : "", retry,
                     body ? body : "");
    free(body);
    if (n > 0 && (size_t) n < sizeof buf - LWS_PRE)
        lws_write(wsi, buf + LWS_PRE, (size_t) n, LWS_WRITE_RAW);
    return 1;
}

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: only /v1/stream, only with a
 * valid token (Authorization header, or ?access_token= for browsers). */
int stream_upgrade_check(struct server *srv, struct stream_conn *c, struct lws *wsi)
{
    char path[64];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int) sizeof path ||
        lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0 ||
        strcmp(path, "/v1/stream") != 0)
        return refuse(wsi, 404, "Not Found", "not_found", "the stream is at GET /v1/stream", 0);
    if (srv->draining)
        return refuse(wsi, 503, "Service Unavailable", "unavailable", "the server is shutting down",
                      1);
    char header[512];
    const char *value = NULL;
    int hlen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hlen > 0 && hlen < (int) sizeof header &&
        lws_hdr_copy(wsi, header, sizeof header, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        value = header;
    int rc;
    if (value || srv->cfg.auth == CONFIG_AUTH_OFF) {
        rc = auth_check(&srv->cfg, value, &c->who);
    } else {
        char arg[512];
        const char *token = lws_get_urlarg_by_name(wsi, "access_token=", arg, sizeof arg);
        rc = token ? auth_check_token(&srv->cfg, token, strlen(token), &c->who) : -1;
        memset(arg, 0, sizeof arg);
    }
    memset(header, 0, sizeof header);
    /* The same per-address limits as an HTTP request's authentication. */
    if (rc < 0) {
        int wait = ratelimit_peer_failed(srv, wsi);
        if (wait)
            return refuse(wsi, 429, "Too Many Requests", "rate_limited", RL_PEER_MESSAGE, wait);
        return refuse(wsi, 401, "Unauthorized", "unauthenticated",
                      "send Authorization: Bearer <token> or ?access_token= with a valid token", 0);
    }
    int wait = ratelimit_peer_wait(srv, wsi, c->who.caller);
    if (wait)
        return refuse(wsi, 429, "Too Many Requests", "rate_limited", RL_PEER_MESSAGE, wait);
    return 0;
}
