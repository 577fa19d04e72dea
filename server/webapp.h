/*
 * webapp.h - the web dashboard's files on the public port.
 *
 * Owns: GET / (302 to /app/), /app (302 to /app/), /app/ and /app/<file>:
 * the page's HTML, CSS and JavaScript modules compiled into the binary
 * (tools/embed_web.py), with their Content-Type, a strong ETag (and 304 on
 * If-None-Match) and the security headers every answer under /app/ sends.
 * These routes need no token: the page signs in itself.
 */
#ifndef PT_WEBAPP_H
#define PT_WEBAPP_H

#include <stdbool.h>
#include <stddef.h>

struct http_req;

struct webapp_file {
    const char *name;         /* served as /app/<name>; index.html also as /app/ */
    const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
    const char *etag;         /* quoted, e.g. "\"3f2a...\"" */
    size_t len;
    const unsigned char *data; /* len bytes, then a NUL */
};

/* Generated: every file, then an entry with a NULL name. */
extern const struct webapp_file webapp_files[];

/* The Content-Security-Policy sent under /app/. */
extern const char webapp_csp[];

/* Answers the request when its path is one of the web routes and returns
 * true; returns false (touching nothing) for every other path. */
bool webapp_handle(struct http_req *rq);

/* The file served under /app/<name>, or NULL. */
const struct webapp_file *webapp_find(const char *name);

#endif
