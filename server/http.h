/*
 * http.h - the public port's HTTP transport.
 *
 * Owns: the lws protocol callback for plain HTTP requests on the public
 * vhost: reading the method, path, headers and a bounded body; writing a
 * response (the headers and the first piece of the body in one write,
 * then the rest in pieces as the socket accepts them); the request id; the
 * per-request log line and metrics. What a request means is api.c's
 * business.
 */
#ifndef PT_HTTP_H
#define PT_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "db.h"

struct server;

/* Body bytes written per writable callback: small enough not to hog the
 * loop, large enough that a default page of payments goes out in one
 * write and a 300 KiB page needs few turns. */
#define HTTP_CHUNK 65536
/* Room for the response headers ahead of the body in the same write. */
#define HTTP_HEADERS_MAX 2048
#define HTTP_TX_BUF_SIZE (LWS_PRE + HTTP_HEADERS_MAX + HTTP_CHUNK)

enum http_method {
    HTTP_GET,
    HTTP_POST,
    HTTP_PATCH,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_HEAD,
    HTTP_OTHER
};

enum http_phase {
    HTTP_IDLE,         /* between requests on a keep-alive connection */
    HTTP_READING,      /* headers seen, body arriving */
    HTTP_WAITING,      /* handed to the database */
    HTTP_SEND_HEADERS, /* answer known, headers not yet written */
    HTTP_SEND_BODY,    /* headers written, body pending */
};

/* A chunked request body being decoded (RFC 9112 section 7.1). */
enum http_chunk_state {
    CHUNK_SIZE,    /* hex digits of the next chunk's size */
    CHUNK_EXT,     /* a chunk extension, skipped up to CRLF */
    CHUNK_SIZE_LF, /* the LF that ends the size line */
    CHUNK_DATA,    /* `chunk_left` bytes of data */
    CHUNK_DATA_CR, /* the CRLF after the data */
    CHUNK_DATA_LF,
    CHUNK_TRAILER, /* trailer lines, skipped, up to an empty line */
    CHUNK_TRAILER_LF,
    CHUNK_DONE,
};

/* What outlives one request on a keep-alive connection. lws 4.1.6 frees
 * and zeroes the per-session data (struct http_req) at every
 * lws_http_transaction_completed(), so this hangs off the connection's
 * opaque user data instead: allocated at its first request, freed at
 * LWS_CALLBACK_WSI_DESTROY. */
struct http_conn {
    /* Socket bytes lws had taken when the previous request on this
     * connection was finished (see guard_pipelined_body). */
    uint64_t consumed_mark;
    bool marked;
    bool rx_paused; /* lws_rx_flow_control() off while the database works */
    /* The peer's key for the per-address limits (ratelimit.c), looked up
     * on first use: 1 known, -1 none (loopback, unknown), 0 not yet. */
    signed char peer_known;
    char peer_key[48];
};

/* One HTTP connection's per-session data (lws allocates it; one request at
 * a time on it). Service thread only. */
struct http_req {
    struct server *srv;
    struct lws *wsi;
    struct http_req *next, *prev; /* server->requests: requests in progress */
    bool linked;
    struct http_conn *conn; /* NULL when it could not be allocated */

    enum http_phase phase;
    enum http_method method;
    const char *method_name;
    char path[512];
    const char *route; /* template for logs and metrics */
    char request_id[72];
    int64_t t_start_us;

    char *body; /* request body, NUL-terminated */
    size_t body_len;
    bool body_too_large;
    bool chunked; /* Transfer-Encoding: chunked, decoded here */
    bool chunk_error;
    int chunk_digits;
    enum http_chunk_state chunk_state;
    uint64_t chunk_left;
    struct auth_identity who;
    bool authenticated;

    struct db_job *job;      /* the job this request waits for */
    char if_none_match[128]; /* for a conditional GET */

    /* the answer */
    int status;
    char *resp_body;
    size_t resp_len, resp_sent;
    char etag[32];
    char location[96];
    const char *allow;
    const char *content_type;         /* NULL: application/json */
    const char *cache_control;        /* NULL: no-store */
    const char *const *extra_headers; /* NULL, or name/value pairs then NULL */
    int retry_after;
    bool replayed;
    bool www_authenticate;
    bool close_after;

    struct export_state *export; /* GET /v1/payments/export.csv (export.h) */
};

/* The protocol callback for lws (public vhost, protocol "http"). */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/* Sets the answer and asks lws for a writable callback. Takes ownership of
 * `body` (malloc'd JSON or NULL). */
void http_respond(struct http_req *rq, int status, char *body);

/* Turns reading back on for a request that waited on the database (see
 * intake_done in http.c): lws 4.1.6 gives a flow-controlled HTTP/1
 * connection no writable callbacks, so an answer streamed without
 * http_respond (the CSV export) calls this before it asks to write. */
void http_resume_reading(struct http_req *rq);

/* An error answer in the contract's shape. */
void http_respond_error(struct http_req *rq, int status, const char *code, const char *message,
                        const char *field);

/* The answer is complete: logs it, counts it and readies the connection
 * for the next request. Returns non-zero when the connection should close.
 * For answers written outside http.c (export.c). */
int http_finish_request(struct http_req *rq);

/* Moves a finished job's result into the answer. */
void http_respond_result(struct http_req *rq, struct db_result *result);

/* Copies a request header (a lws token) into buf; returns its length or
 * -1 when absent or longer than cap - 1. */
int http_header(struct http_req *rq, enum lws_token_indexes token, char *buf, size_t cap);

/* The same for a header lws has no token for; `name` is lower case with a
 * trailing colon, e.g. "idempotency-key:". */
int http_custom_header(struct http_req *rq, const char *name, char *buf, size_t cap);

/*
 * Splits the query string into decoded key/value pairs, at most `max`.
 * Returns the count, or -1 when there are more than `max`, one is too
 * long, or one is not valid UTF-8 once decoded. The strings live in `store` (cap bytes), which the caller owns.
 */
int http_query_args(struct http_req *rq, const char **keys, const char **values, int max,
                    char *store, size_t cap);

/* Writes out the request lines logged in this loop turn (they go out at
 * the start of the next one by themselves): before the server stops. */
void http_log_flush(struct server *srv);

#endif
