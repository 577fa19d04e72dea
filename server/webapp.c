/*
 * webapp.c - the web dashboard's files on the public port.
 */
#include "webapp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Scripts and styles only from the page's own origin (no inline code, no
 * eval); 'self' in connect-src covers ws: and wss: to the same host
 * (CSP Level 3), which the live stream needs. */
const char webapp_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; object-src 'none'; "
                          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

static const char *const app_headers[] = {
    "content-security-policy:",
    webapp_csp,
    "x-content-type-options:",
    "nosniff",
    "referrer-policy:",
    "no-referrer",
    "x-frame-options:",
    "DENY",
    NULL,
};

static const char *const redirect_headers[] = {
    "referrer-policy:",
    "no-referrer",
    NULL,
};

const struct webapp_file *webapp_find(const char *name)
{
    for (const struct webapp_file *f = webapp_files; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static void redirect(struct http_req *rq, const char *to)
{
    snprintf(rq->location, sizeof rq->location, "%s", to);
    rq->extra_headers = redirect_headers;
    http_respond(rq, 302, NULL);
}

/* True when If-None-Match names this ETag (or is "*"). */
static bool not_modified(struct http_req *rq, const char *etag)
{
    char inm[256];
    if (http_header(rq, WSI_TOKEN_HTTP_IF_NONE_MATCH, inm, sizeof inm) <= 0)
        return false;
    return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

static void serve(struct http_req *rq, const char *name)
{
    rq->extra_headers = app_headers;
    const struct webapp_file *f = webapp_find(name);
    if (!f) {
        http_respond_error(rq, 404, "not_found", "no such file", NULL);
        return;
    }
    if (rq->method != HTTP_GET && rq->method != HTTP_HEAD) {
        rq->allow = "GET, HEAD";
        http_respond_error(rq, 405, "method_not_allowed", "method not allowed on this endpoint",
                           NULL);
        return;
    }
    snprintf(rq->etag, sizeof rq->etag, "%s", f->etag);
    /* Revalidate every time: a new server version may serve new files. */
    rq->cache_control = "no-cache";
    if (not_modified(rq, f->etag)) {
        http_respond(rq, 304, NULL);
        return;
    }
    char *body = malloc(f->len + 1);
    if (!body) {
        http_respond_error(rq, 500, "internal", "out of memory", NULL);
        return;
    }
    memcpy(body, f->data, f->len + 1);
    rq->content_type = f->content_type;
    http_respond(rq, 200, body);
}

bool webapp_handle(struct http_req *rq)
{
    static const char prefix[] = "/app/";
    const char *path = rq->path;
    if (strcmp(path, "/") == 0 || strcmp(path, "/app") == 0) {
        rq->route = strcmp(path, "/") == 0 ? "/" : "/app";
        redirect(rq, "/app/");
        return true;
    }
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *name = path + sizeof prefix - 1;
    rq->route = "/app/{file}";
    serve(rq, name[0] ? name : "index.html");
    return true;
}
