/*
 * export.c - the CSV export: fetches by keyset, rows, chunked writing.
 */
#include "export.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "currency.h"
#include "http.h"
#include "money.h"
#include "query.h"
#include "server.h"
#include "store.h"

const char export_csv_header[] =
    "id,created_at,updated_at,status,method,currency,amount,amount_major,amount_refunded,payer,"
    "payee,reference,description,metadata\r\n";

/* A growable byte buffer; `off` is what has been written out already. */
struct csv_buf {
    char *p;
    size_t len, cap, off;
};

/* One export, owned by its request (rq->export) or, once the request has
 * gone while a fetch was in flight, by that fetch. Service thread only,
 * except `q`, which a fetch in flight reads and nobody writes meanwhile. */
struct export_state {
    struct http_req *rq; /* NULL once the connection closed */
    struct list_query q; /* filters, order, and the keyset position */
    struct db_job *job;  /* the fetch in flight, if any */
    struct csv_buf out;  /* CSV waiting to be written */
    bool more;           /* rows may remain after q's position */
    bool started;        /* the headers went out */
    bool failed;         /* a fetch failed after the headers: cut the body */
    uint64_t rows;
    char filename[48];
};

/* A fetch's own output, filled on the worker thread. */
struct export_fetch {
    const struct list_query *q; /* the export's, read only while in flight */
    struct csv_buf csv;
    int rows;
    bool full; /* stopped for size: rows remain in this page */
    char cursor_time[QUERY_TIME_MAX];
    char cursor_id[37];
};

/* ---- CSV ---------------------------------------------------------------------- */

int export_csv_cell(char *out, size_t cap, size_t *len, const char *text)
{
    if (!text)
        text = "";
    size_t n = strlen(text), o = *len;
    bool formula = n > 0 && strchr("=+-@\t\r", text[0]) != NULL;
    bool quote = strpbrk(text, ",\"\r\n") != NULL;
    /* worst case: a quote doubled per byte, the ' and two quotes */
    if (cap - o < 2 * n + 4)
        return -1;
    if (quote)
        out[o++] = '"';
    if (formula)
        out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '"')
            out[o++] = '"';
        out[o++] = text[i];
    }
    if (quote)
        out[o++] = '"';
    *len = o;
    return 0;
}

static int buf_reserve(struct csv_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Appends a cell and its separator (',' or CRLF after the last). */
static int put_cell(struct csv_buf *b, const char *text, bool last)
{
    size_t n = text ? strlen(text) : 0;
    if (buf_reserve(b, 2 * n + 6) < 0 || export_csv_cell(b->p, b->cap, &b->len, text) < 0)
        return -1;
    if (last) {
        b->p[b->len++] = '\r';
        b->p[b->len++] = '\n';
    } else {
        b->p[b->len++] = ',';
    }
    return 0;
}

static char *metadata_json(const pt_payment *p)
{
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; obj && i < p->metadata_count; i++)
        if (!cJSON_AddStringToObject(obj, p->metadata[i].key, p->metadata[i].value)) {
            cJSON_Delete(obj);
            return NULL;
        }
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return text;
}

/* One payment as a CSV line. Returns 0 or -1 (out of memory). */
static int put_row(struct csv_buf *b, const pt_payment *p)
{
    char amount[24], refunded[24], major[48] = "";
    snprintf(amount, sizeof amount, "%" PRId64, p->amount);
    snprintf(refunded, sizeof refunded, "%" PRId64, p->amount_refunded);
    const pt_currency *cur = pt_currency_find(p->currency);
    /* a currency no longer in the table: no major amount rather than a guess */
    if (cur && pt_money_format(p->amount, cur->exponent, 0, major, sizeof major) < 0)
        major[0] = '\0';
    char *meta = metadata_json(p);
    if (!meta)
        return -1;
    const char *cells[] = {p->id,
                           p->created_at,
                           p->updated_at,
                           pt_status_name(p->status),
                           pt_method_name(p->method),
                           p->currency,
                           amount,
                           major,
                           refunded,
                           p->payer,
                           p->payee,
                           p->reference,
                           p->description,
                           meta};
    size_t count = sizeof cells / sizeof cells[0];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = put_cell(b, cells[i], i + 1 == count);
    free(meta);
    return rc;
}

/* ---- fetching (worker thread) ------------------------------------------------ */

static int fetch_row(void *ctx, const pt_payment *p, const char *cursor_time)
{
    struct export_fetch *f = ctx;
    if (put_row(&f->csv, p) < 0)
        return -1;
    f->rows++;
    snprintf(f->cursor_time, sizeof f->cursor_time, "%s", cursor_time);
    snprintf(f->cursor_id, sizeof f->cursor_id, "%s", p->id);
    if (f->csv.len >= EXPORT_FETCH_BYTES) {
        f->full = true;
        return 1;
    }
    return 0;
}

static void fetch_run(struct db_job *job, PGconn *conn)
{
    struct export_fetch *f = job->arg;
    if (store_list_rows(conn, f->q, fetch_row, f, &job->result) >= 0)
        job->result.status = 200;
}

static void fetch_free(void *arg)
{
    struct export_fetch *f = arg;
    if (f)
        free(f->csv.p);
    free(f);
}

/* ---- the request (service thread) -------------------------------------------- */

static void state_free(struct export_state *st)
{
    query_free(&st->q);
    free(st->out.p);
    free(st);
}

static size_t pending(const struct export_state *st)
{
    return st->out.len - st->out.off;
}

static void fetch_done(struct db_job *job);

/* Asks for the next rows when they are wanted and none are on the way.
 * Returns 0, or -1 when the pool would not take the job. */
static int maybe_fetch(struct export_state *st)
{
    if (st->job || !st->more || pending(st) >= EXPORT_LOW_WATER)
        return 0;
    struct export_fetch *f = calloc(1, sizeof *f);
    struct db_job *job = f ? calloc(1, sizeof *job) : NULL;
    if (!job) {
        free(f);
        return -1;
    }
    f->q = &st->q;
    job->run = fetch_run;
    job->arg = f;
    job->free_arg = fetch_free;
    job->done = fetch_done;
    job->owner = st;
    if (db_pool_submit(st->rq->srv->pool, job) < 0) {
        db_job_free(job);
        return -1;
    }
    st->job = job;
    /* A database that never answers still ends the request. */
    lws_set_timeout(st->rq->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                    st->rq->srv->cfg.request_timeout_seconds);
    return 0;
}

/* Moves a fetch's rows behind what waits to be written. */
static int take_rows(struct export_state *st, struct export_fetch *f)
{
    if (st->out.off > 0) { /* drop what was written */
        memmove(st->out.p, st->out.p + st->out.off, pending(st));
        st->out.len -= st->out.off;
        st->out.off = 0;
    }
    if (buf_reserve(&st->out, f->csv.len) < 0)
        return -1;
    if (f->csv.len)
        memcpy(st->out.p + st->out.len, f->csv.p, f->csv.len);
    st->out.len += f->csv.len;
    st->rows += (uint64_t) f->rows;
    st->more = f->full || f->rows == st->q.limit;
    if (f->rows > 0) {
        st->q.has_cursor = true;
        snprintf(st->q.cursor_time, sizeof st->q.cursor_time, "%s", f->cursor_time);
        snprintf(st->q.cursor_id, sizeof st->q.cursor_id, "%s", f->cursor_id);
    }
    return 0;
}

/* Detaches the export from its request and answers with a JSON error
 * instead (nothing was sent yet). */
static void fail_before_start(struct export_state *st, struct db_result *r)
{
    struct http_req *rq = st->rq;
    rq->export = NULL;
    state_free(st);
    http_respond_result(rq, r);
}

static void fetch_done(struct db_job *job)
{
    struct export_state *st = job->owner;
    struct export_fetch *f = job->arg;
    st->job = NULL;
    if (!st->rq) { /* the client went away meanwhile */
        state_free(st);
        db_job_free(job);
        return;
    }
    if (job->result.status != 200 || take_rows(st, f) < 0) {
        if (job->result.status == 200)
            db_result_error(&job->result, 500, "internal", "out of memory", NULL);
        if (!st->started) {
            fail_before_start(st, &job->result);
        } else {
            st->failed = true; /* a cut chunked body tells the client */
            lws_callback_on_writable(st->rq->wsi);
        }
        db_job_free(job);
        return;
    }
    db_job_free(job);
    if (!st->started) {
        st->rq->status = 200;
        st->rq->phase = HTTP_SEND_BODY;
        http_resume_intake(st->rq);
    }
    lws_callback_on_writable(st->rq->wsi);
}

void export_start(struct http_req *rq, const char *const *keys, const char *const *values, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(keys[i], "limit") == 0 || strcmp(keys[i], "cursor") == 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "the export has every matching payment: no %s", keys[i]);
            http_respond_error(rq, 400, "bad_request", msg, keys[i]);
            return;
        }
    }
    struct export_state *st = calloc(1, sizeof *st);
    if (!st) {
        http_respond_error(rq, 500, "internal", "out of memory", NULL);
        return;
    }
    pt_problem problem;
    if (query_parse(keys, values, n, &st->q, &problem) < 0) {
        state_free(st);
        http_respond_error(rq, 400, "bad_request", problem.message,
                           problem.field[0] ? problem.field : NULL);
        return;
    }
    st->q.limit = EXPORT_ROWS_PER_FETCH;
    st->more = true;
    st->rq = rq;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(st->filename, sizeof st->filename, "payments-%Y%m%dT%H%M%SZ.csv", &tm);
    if (buf_reserve(&st->out, sizeof export_csv_header) < 0) {
        state_free(st);
        http_respond_error(rq, 500, "internal", "out of memory", NULL);
        return;
    }
    memcpy(st->out.p, export_csv_header, sizeof export_csv_header - 1);
    st->out.len = sizeof export_csv_header - 1;
    rq->export = st;
    rq->phase = HTTP_WAITING;
    if (maybe_fetch(st) < 0) {
        rq->export = NULL;
        state_free(st);
        http_respond_error(rq, 503, "unavailable", "the server is busy, retry later", NULL);
    }
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *) name,
                                       (const unsigned char *) value, (int) strlen(value), p, end);
}

static int put_headers(struct http_req *rq, struct export_state *st, unsigned char **p,
                       unsigned char *end)
{
    char disposition[96];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", st->filename);
    if (lws_add_http_header_status(rq->wsi, 200, p, end) ||
        add_header(rq->wsi, "content-type:", "text/csv; charset=utf-8", p, end) ||
        add_header(rq->wsi, "content-disposition:", disposition, p, end) ||
        add_header(rq->wsi, "transfer-encoding:", "chunked", p, end) ||
        add_header(rq->wsi, "x-request-id:", rq->request_id, p, end) ||
        add_header(rq->wsi, "cache-control:", "no-store", p, end) ||
        ((rq->close_after || rq->srv->draining) &&
         add_header(rq->wsi, "connection:", "close", p, end)) ||
        lws_finalize_http_header(rq->wsi, p, end))
        return -1;
    return 0;
}

/*
 * Writes the headers (first time), then one chunk of what waits, framed
 * for Transfer-Encoding: chunked (lws passes HTTP/1.1 bytes through as
 * they are), and the last chunk when everything is out. lws calls back
 * only when the socket took the previous write, so a client that stops
 * reading stops us here.
 */
int export_writeable(struct http_req *rq)
{
    struct export_state *st = rq->export;
    if (st->failed)
        return -1;
    if (!st->started && rq->phase != HTTP_SEND_BODY)
        return 0; /* the first rows are not there yet */
    unsigned char *start = rq->srv->tx_buf + LWS_PRE, *p = start;
    if (!st->started) {
        if (put_headers(rq, st, &p, start + HTTP_HEADERS_MAX) < 0)
            return -1;
        st->started = true;
    }
    size_t n = pending(st);
    if (n > HTTP_CHUNK - 32)
        n = HTTP_CHUNK - 32;
    if (n) {
        p += snprintf((char *) p, 16, "%zx\r\n", n);
        memcpy(p, st->out.p + st->out.off, n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
        st->out.off += n;
    }
    bool last = !st->more && !st->job && pending(st) == 0;
    if (last) {
        memcpy(p, "0\r\n\r\n", 5);
        p += 5;
    }
    if (p == start)
        return maybe_fetch(st) < 0 ? -1 : 0;
    int len = (int) (p - start);
    if (lws_write(rq->wsi, start, (size_t) len, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < len)
        return -1;
    /* Each write that the client takes buys another request timeout. */
    lws_set_timeout(rq->wsi, PENDING_TIMEOUT_HTTP_CONTENT, rq->srv->cfg.request_timeout_seconds);
    if (last) {
        rq->export = NULL;
        state_free(st);
        return http_finish_request(rq) ? -1 : 0;
    }
    /* Past the headers, a failed fetch can only cut the body. */
    if (maybe_fetch(st) < 0)
        return -1;
    if (pending(st) > 0)
        lws_callback_on_writable(rq->wsi);
    return 0;
}

void export_release(struct http_req *rq)
{
    struct export_state *st = rq->export;
    if (!st)
        return;
    rq->export = NULL;
    if (st->job)
        st->rq = NULL; /* fetch_done frees it */
    else
        state_free(st);
}
