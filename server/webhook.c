/*
 * webhook.c - the webhook delivery engine (see webhook.h).
 *
 * Everything below the config section runs on the delivery thread except
 * webhook_wake() and webhook_metrics_text(), which touch only the fields
 * under `lock`.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "server.h"
#include "wh_guard.h"
#include "wh_sign.h"

#define WH_SLOTS      128   /* endpoints one replica works on at once */
#define WH_BATCH      8     /* events read ahead per endpoint */
#define WH_RESP_MAX   4096  /* response bytes read, the rest is not */
#define WH_TIMEOUT_MS 10000 /* an answer later than this is a failure */
#define WH_TICK_US    500000
/* Wake-ups (one per committed event, on every replica) are served at most
 * this often: a burst of events costs a replica a few rounds, not two
 * queries per event, whether or not any endpoint exists. While it holds
 * endpoints the gap is shorter: the wait is part of every delivery's
 * latency, and at a steady rate the round it starts is one fetch for all
 * of them. */
#define WH_WAKE_GAP_US      20000
#define WH_WAKE_GAP_BUSY_US 4000
#define WH_LAG_EVERY_US     (5 * 1000000LL)
#define WH_PRUNE_EVERY_US   (10 * 1000000LL)
#define WH_LAG_ENDPOINTS    500 /* endpoints shown in /metrics */
/* Acknowledged deliveries are written back at most this often, in one
 * statement for every endpoint: an endpoint's next event goes out as soon
 * as the previous one is acknowledged, not after a database round. */
#define WH_RECORD_GAP_US 10000
/* An endpoint with nothing left to send keeps its lease this long before
 * giving it back: at a steady rate of events its next one comes within
 * milliseconds, and a claim and a release per event and endpoint were a
 * third of the writes. Held endpoints are looked at again on every tick,
 * so a PATCH, a replay or a disable is seen as soon as before; when every
 * slot is taken, idle ones are given back at once so that the endpoints
 * beyond WH_SLOTS get their turn. */
#define WH_IDLE_HOLD_US 1000000
#define WH_LOG_MAX      1024 /* attempts waiting to be logged */

static const char default_schedule[] = "5,300,1800,7200,18000,36000,36000";

/* ---- configuration ------------------------------------------------------ */

static int parse_schedule(const char *text, struct wh_config *cfg)
{
    cfg->schedule_len = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 7 * 86400 || cfg->schedule_len == WH_SCHEDULE_MAX)
            return -1;
        cfg->schedule[cfg->schedule_len++] = (int) v;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
        while (*p == ' ')
            p++;
    }
    return cfg->schedule_len > 0 ? 0 : -1;
}

int webhook_config_load(struct wh_config *cfg, char *cause, size_t cause_len)
{
    memset(cfg, 0, sizeof *cfg);
    const char *v = getenv("PAYTRACKR_WEBHOOK_RETRY_SCHEDULE");
    if (parse_schedule(v && *v ? v : default_schedule, cfg) < 0) {
        snprintf(cause, cause_len,
                 "PAYTRACKR_WEBHOOK_RETRY_SCHEDULE: must be 1 to %d comma-separated delays in "
                 "seconds (0 to 604800), e.g. %s",
                 WH_SCHEDULE_MAX, default_schedule);
        return -1;
    }
    v = getenv("PAYTRACKR_WEBHOOK_ALLOW_PRIVATE");
    if (v && *v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        snprintf(cause, cause_len, "PAYTRACKR_WEBHOOK_ALLOW_PRIVATE: must be on or off");
        return -1;
    }
    cfg->allow_private = v && strcmp(v, "on") == 0;
    v = getenv("PAYTRACKR_WEBHOOK_LEASE_SECONDS");
    cfg->lease_seconds = 30;
    if (v && *v) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || n < 2 || n > 3600) {
            snprintf(cause, cause_len,
                     "PAYTRACKR_WEBHOOK_LEASE_SECONDS: must be an integer from 2 to 3600");
            return -1;
        }
        cfg->lease_seconds = (int) n;
    }
    return 0;
}

/* ---- state -------------------------------------------------------------- */

enum wh_outcome { WH_OK, WH_HTTP_ERROR, WH_GONE, WH_TIMEOUT, WH_NETWORK, WH_REFUSED, WH_OUTCOMES };

static const char *const outcome_names[WH_OUTCOMES] = {
    "success", "http_error", "gone", "timeout", "network_error", "refused",
};

struct wh_event {
    int64_t seq;
    char *body; /* malloc'd: the event as the change feed shows it */
};

/* An endpoint this replica holds the lease of. */
struct wh_slot {
    bool used;
    char id[37];
    int64_t version;       /* config_version when read */
    int64_t delivered;     /* delivered_seq in the database */
    int64_t sent;          /* acknowledged by the endpoint (>= delivered) */
    bool ending;           /* a result that ends the slot waits to be written */
    int64_t read_upto;     /* events up to this stable seq are read; -1: none */
    int64_t idle_since_us; /* since when nothing is left to send; 0: busy */
    int attempt;           /* failed attempts at ev[0] so far */
    char *url;
    char secret[WH_SECRET_MAX];
    char old_secret[WH_SECRET_MAX]; /* "" when none is valid */
    struct wh_event ev[WH_BATCH];
    int nev;

    /* the transfer of ev[0]; the handle is kept for the slot's next ones */
    CURL *easy;
    bool in_flight;
    struct curl_slist *headers;
    int64_t t_start_us;
    char errbuf[CURL_ERROR_SIZE];
    size_t resp_len;
    long retry_after; /* seconds, -1 for none */
    bool refused;     /* the guard refused the address */
    bool allow_private;
};

/* What ends a slot: a failed attempt (retry later, or disable) or
 * nothing left to send; written back with the slot's progress. */
struct wh_result {
    int slot;
    int64_t new_delivered;
    int new_attempt;
    int64_t delay_ms;
    char disable_reason[160]; /* "" to stay enabled */
    bool release;
};

/* One attempt for the deliveries log (the endpoint by id: its slot may
 * be reused before the log is written). */
struct wh_attempt {
    char id[37];
    int64_t seq;
    int attempt_no;
    long status; /* 0 for none */
    char error[200];
    int duration_ms;
};

struct webhooks {
    struct server *srv;
    struct wh_config cfg;
    const struct logger *log;
    pthread_t thread;
    CURLM *multi;

    pthread_mutex_t lock; /* guards the fields up to `lag_text` */
    bool stop;
    bool wake;
    int64_t wake_stable; /* the highest stable seq a wake-up brought; -1: none */
    uint64_t outcomes[WH_OUTCOMES];
    char *lag_text; /* Prometheus lines, rebuilt every few seconds */

    /* delivery thread only */
    PGconn *conn;
    bool conn_warned;
    char owner[48]; /* this process's lease name */
    struct wh_slot slots[WH_SLOTS];
    struct wh_result results[WH_SLOTS];
    int nresults;
    struct wh_attempt attempts[WH_LOG_MAX];
    int nattempts;
    int64_t next_record_us; /* acknowledged progress written no earlier */
    int64_t stable;
    int64_t next_tick_us, next_renew_us, next_lag_us, next_prune_us;
    int64_t next_wake_round_us; /* the next wake-up served no earlier */
    /* The write-back in flight (sent, its result not read yet): the slots
     * it writes and the progress it writes for each. Transfers go on
     * meanwhile; every other query waits for it (record_finish). */
    bool rec_in_flight;
    int rec_rows[WH_SLOTS], rec_nrows;
    int64_t rec_wrote[WH_SLOTS];
    bool rec_ended[WH_SLOTS]; /* the row carries the slot's result */
    bool wake_pending;        /* a wake-up waits for next_wake_round_us */
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_us(void)
{
    return server_now_us();
}

static bool should_stop(struct webhooks *wh)
{
    pthread_mutex_lock(&wh->lock);
    bool stop = wh->stop;
    pthread_mutex_unlock(&wh->lock);
    return stop;
}

static bool take_wake(struct webhooks *wh)
{
    pthread_mutex_lock(&wh->lock);
    bool w = wh->wake;
    wh->wake = false;
    pthread_mutex_unlock(&wh->lock);
    return w;
}

/* The highest stable seq the wake-ups brought (-1: none yet). */
static int64_t heard_stable(struct webhooks *wh)
{
    pthread_mutex_lock(&wh->lock);
    int64_t v = wh->wake_stable;
    pthread_mutex_unlock(&wh->lock);
    return v;
}

static void count_outcome(struct webhooks *wh, enum wh_outcome o)
{
    pthread_mutex_lock(&wh->lock);
    wh->outcomes[o]++;
    pthread_mutex_unlock(&wh->lock);
}

/* A growing text buffer for array literals; `ok` false after a failed
 * allocation. */
struct wh_buf {
    char *s;
    size_t len, cap;
    bool ok;
};

static void buf_add(struct wh_buf *b, const char *text, size_t n)
{
    if (!b->ok)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->ok = false;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct wh_buf *b, const char *text)
{
    buf_add(b, text, strlen(text));
}

/* Appends one element of a PostgreSQL array literal: NULL, or the text
 * double-quoted with " and \ escaped. */
static void buf_elem(struct wh_buf *b, const char *text)
{
    buf_str(b, b->len > 1 ? "," : "");
    if (!text) {
        buf_str(b, "NULL");
        return;
    }
    buf_str(b, "\"");
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_add(b, "\\", 1);
        buf_add(b, p, 1);
    }
    buf_str(b, "\"");
}

static void buf_elem_i64(struct wh_buf *b, int64_t v)
{
    char n[24];
    snprintf(n, sizeof n, "%" PRId64, v);
    buf_elem(b, n);
}

/* Copies as much of `src` as fits (an error text cut short is fine). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t to_i64(const char *s)
{
    return strtoll(s, NULL, 10);
}

static bool query_ok(PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Logs a failed statement and drops the connection if it is gone. */
static void query_failed(struct webhooks *wh, const char *what, PGresult *res)
{
    log_msg(wh->log, LOG_WARN, "webhooks: %s: %s", what,
            res ? PQresultErrorMessage(res) : "no result");
    if (PQstatus(wh->conn) != CONNECTION_OK) {
        PQfinish(wh->conn);
        wh->conn = NULL;
    }
}

/* ---- slots -------------------------------------------------------------- */

static void slot_clear_events(struct wh_slot *s)
{
    for (int i = 0; i < s->nev; i++)
        free(s->ev[i].body);
    s->nev = 0;
}

static void slot_end_transfer(struct webhooks *wh, struct wh_slot *s)
{
    if (s->in_flight)
        curl_multi_remove_handle(wh->multi, s->easy);
    s->in_flight = false;
    curl_slist_free_all(s->headers);
    s->headers = NULL;
}

static void slot_free(struct webhooks *wh, struct wh_slot *s)
{
    /* A result not written yet goes with the slot: the lease runs out and
     * the attempt is made again (the slot's place may be taken next). */
    int i = (int) (s - wh->slots);
    for (int k = 0; k < wh->nresults; k++)
        if (wh->results[k].slot == i)
            wh->results[k--] = wh->results[--wh->nresults];
    slot_end_transfer(wh, s);
    if (s->easy)
        curl_easy_cleanup(s->easy);
    slot_clear_events(s);
    free(s->url);
    memset(s, 0, sizeof *s);
}

static int free_slots(const struct webhooks *wh)
{
    int n = 0;
    for (int i = 0; i < WH_SLOTS; i++)
        n += !wh->slots[i].used;
    return n;
}

static bool record_finish(struct webhooks *wh, bool wait);

/* Gives back the leases of slots `ids` (an array literal) we still hold. */
static void release_ids(struct webhooks *wh, const char *ids)
{
    record_finish(wh, true);
    if (!wh->conn)
        return;
    const char *params[2] = {ids, wh->owner};
    PGresult *res = PQexecParams(wh->conn,
                                 "UPDATE webhook_endpoints SET lease_owner = NULL, "
                                 "lease_until = NULL WHERE id = ANY ($1::uuid[]) "
                                 "AND lease_owner = $2",
                                 2, NULL, params, NULL, NULL, 0);
    if (!query_ok(res))
        query_failed(wh, "releasing leases", res);
    PQclear(res);
}

/* Forgets slot `i` and releases its lease. */
static void slot_drop(struct webhooks *wh, int i)
{
    struct wh_slot *s = &wh->slots[i];
    if (wh->conn) {
        char ids[48];
        snprintf(ids, sizeof ids, "{%s}", s->id);
        release_ids(wh, ids);
    }
    slot_free(wh, s);
}

/* ---- connection --------------------------------------------------------- */

static int connect_db(struct webhooks *wh)
{
    if (db_pool_migrating(wh->srv->pool))
        return -1;
    char *conninfo = db_pool_conninfo(wh->srv->pool);
    if (!conninfo)
        return -1;
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = "connect_timeout";
    vals[n++] = "5";
    keys[n] = "application_name";
    vals[n++] = "paytrackr-webhooks";
    keys[n] = "keepalives_idle";
    vals[n++] = "10";
    /* Results commit without waiting for the WAL flush: the flush would
     * otherwise bound every endpoint to one delivery per disk flush. A
     * database crash can then forget the last acknowledgements of a
     * fraction of a second, and those events are sent again with the same
     * webhook-id: at least once, as receivers must expect anyway. */
    keys[n] = "options";
    vals[n++] = "-c statement_timeout=15000 -c synchronous_commit=off";
    if (wh->srv->cfg.db_sslrootcert) {
        keys[n] = "sslrootcert";
        vals[n++] = wh->srv->cfg.db_sslrootcert;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    db_wipe_free(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        if (!wh->conn_warned)
            log_msg(wh->log, LOG_WARN, "webhooks: database unreachable: %s",
                    strtok(PQerrorMessage(conn), "\n"));
        wh->conn_warned = true;
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeProcessor(conn, db_ignore_notice, NULL);
    wh->conn_warned = false;
    wh->conn = conn;
    /* Whatever this process held before the connection broke is stale. */
    for (int i = 0; i < WH_SLOTS; i++)
        if (wh->slots[i].used)
            slot_drop(wh, i);
    return 0;
}

/* ---- reading the database ----------------------------------------------- */

/* The stable seq (every event up to it is final), or -1. */
static int64_t read_stable(struct webhooks *wh)
{
    PGresult *res = PQexec(wh->conn, "SELECT stable FROM paytrackr_stream_bounds('2 seconds')");
    int64_t v = -1;
    if (!query_ok(res))
        query_failed(wh, "reading the stable seq", res);
    else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        v = to_i64(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Takes the leases of due endpoints that have events to send. */
static void claim(struct webhooks *wh)
{
    int room = free_slots(wh);
    if (room == 0)
        return;
    char lease[16], limit[16], stable[24];
    snprintf(lease, sizeof lease, "%d", wh->cfg.lease_seconds);
    snprintf(limit, sizeof limit, "%d", room);
    snprintf(stable, sizeof stable, "%" PRId64, wh->stable);
    const char *params[4] = {wh->owner, lease, limit, stable};
    PGresult *res = PQexecParams(
        wh->conn,
        "UPDATE webhook_endpoints w SET lease_owner = $1, "
        "lease_until = now() + make_interval(secs => $2::int) "
        "FROM (SELECT id FROM webhook_endpoints WHERE enabled AND next_attempt_at <= now() "
        "AND delivered_seq < $4::bigint AND (lease_until IS NULL OR lease_until < now()) "
        "ORDER BY next_attempt_at LIMIT $3::int FOR UPDATE SKIP LOCKED) c "
        "WHERE w.id = c.id "
        "RETURNING w.id::text, w.config_version, w.delivered_seq, w.attempt",
        4, NULL, params, NULL, NULL, 0);
    if (!query_ok(res)) {
        query_failed(wh, "claiming endpoints", res);
        PQclear(res);
        return;
    }
    int j = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        while (j < WH_SLOTS && wh->slots[j].used)
            j++;
        if (j == WH_SLOTS)
            break;
        struct wh_slot *s = &wh->slots[j];
        memset(s, 0, sizeof *s);
        s->used = true;
        snprintf(s->id, sizeof s->id, "%s", PQgetvalue(res, r, 0));
        s->version = to_i64(PQgetvalue(res, r, 1));
        s->delivered = to_i64(PQgetvalue(res, r, 2));
        s->sent = s->delivered;
        s->attempt = (int) to_i64(PQgetvalue(res, r, 3));
        s->allow_private = wh->cfg.allow_private;
        s->read_upto = -1;
    }
    PQclear(res);
}

/* The event as the change feed shows it (store.c's event_from_row): seq,
 * type, at, actor (null before v1.1), payment and, for a refund, refund.
 * malloc'd or NULL. */
static char *event_body(PGresult *res, int r)
{
    const char *seq = PQgetvalue(res, r, 5), *type = PQgetvalue(res, r, 6);
    const char *at = PQgetvalue(res, r, 7), *payment = PQgetvalue(res, r, 8);
    const char *actor = PQgetisnull(res, r, 9) ? "null" : PQgetvalue(res, r, 9);
    const char *refund = PQgetisnull(res, r, 10) ? NULL : PQgetvalue(res, r, 10);
    size_t n = strlen(seq) + strlen(type) + strlen(at) + strlen(actor) + strlen(payment) +
               (refund ? strlen(refund) : 0) + 96;
    char *body = malloc(n);
    if (body)
        snprintf(body, n,
                 "{\"seq\":%s,\"type\":\"%s\",\"at\":\"%s\",\"actor\":%s,\"payment\":%s%s%s}", seq,
                 type, at, actor, payment, refund ? ",\"refund\":" : "", refund ? refund : "");
    return body;
}

/* Refreshes slot `s` from one row of the fetch: config and one event,
 * whose body (`body`, the caller's) is copied. */
static int fill_slot(struct wh_slot *s, PGresult *res, int r, const char *body)
{
    const char *url = PQgetvalue(res, r, 2);
    if (!s->url || strcmp(s->url, url) != 0) {
        free(s->url);
        if (!(s->url = strdup(url)))
            return -1;
    }
    snprintf(s->secret, sizeof s->secret, "%s", PQgetvalue(res, r, 3));
    snprintf(s->old_secret, sizeof s->old_secret, "%s", PQgetvalue(res, r, 4));
    if (PQgetisnull(res, r, 5) || s->nev == WH_BATCH)
        return 0;
    struct wh_event *e = &s->ev[s->nev];
    e->seq = to_i64(PQgetvalue(res, r, 5));
    if (!body || !(e->body = strdup(body)))
        return -1;
    s->nev++;
    return 0;
}

/* Whether slot `s` has nothing in hand and events may wait for it. */
static bool slot_wants_events(const struct webhooks *wh, const struct wh_slot *s)
{
    return s->used && s->nev == 0 && !s->in_flight && !s->ending && s->read_upto < wh->stable;
}

/* Queues a "caught up" result: delivered_seq moves over the events that do
 * not match, up to where the slot read, and the lease goes back. */
static void result_caught_up(struct webhooks *wh, int i)
{
    struct wh_slot *s = &wh->slots[i];
    struct wh_result *r = &wh->results[wh->nresults++];
    memset(r, 0, sizeof *r);
    r->slot = i;
    r->new_delivered = s->read_upto > s->sent ? s->read_upto : s->sent;
    r->new_attempt = s->attempt;
    r->release = true;
    s->ending = true;
}

/* Gives back the leases of slots that have had nothing to send for
 * WH_IDLE_HOLD_US, or of every idle one when no slot is free (other
 * endpoints may be waiting for a place: holding would starve them), and
 * makes the other idle ones read again at the next round: their endpoint
 * may have changed meanwhile. */
static void release_idle(struct webhooks *wh)
{
    bool full = free_slots(wh) == 0;
    int64_t t = now_us();
    for (int i = 0; i < WH_SLOTS && wh->nresults < WH_SLOTS; i++) {
        struct wh_slot *s = &wh->slots[i];
        if (!s->used || s->nev > 0 || s->in_flight || s->ending || !s->idle_since_us)
            continue;
        if (full || t - s->idle_since_us >= WH_IDLE_HOLD_US)
            result_caught_up(wh, i);
        else
            s->read_upto = -1;
    }
}

/* The bodies of one fetch's events, each built once: the fetch sends an
 * event's columns only on its first row (most endpoints wait for the same
 * events, and forming the text per endpoint was most of the fetch). */
struct wh_bodies {
    int64_t *seqs;
    char **texts; /* malloc'd */
    int n;
};

/* The body of row `r`'s event (NULL: none, or out of memory): built from
 * the row when it carries the columns, else the one built before. */
static const char *bodies_take(struct wh_bodies *b, PGresult *res, int r)
{
    if (!b->seqs || !b->texts || PQgetisnull(res, r, 5))
        return NULL;
    int64_t seq = to_i64(PQgetvalue(res, r, 5));
    for (int k = b->n - 1; k >= 0; k--)
        if (b->seqs[k] == seq)
            return b->texts[k];
    if (PQgetisnull(res, r, 6))
        return NULL;
    b->seqs[b->n] = seq;
    b->texts[b->n] = event_body(res, r);
    return b->texts[b->n++];
}

static void bodies_free(struct wh_bodies *b)
{
    for (int k = 0; k < b->n; k++)
        free(b->texts[k]);
    free(b->seqs);
    free(b->texts);
}

/* Reads the next events of every held endpoint that has none buffered,
 * in one statement. */
static void fetch_events(struct webhooks *wh)
{
    struct wh_buf ids = {.ok = true}, afters = {.ok = true};
    int idx[WH_SLOTS], n = 0;
    buf_str(&ids, "{");
    buf_str(&afters, "{");
    for (int i = 0; i < WH_SLOTS; i++) {
        struct wh_slot *s = &wh->slots[i];
        if (!slot_wants_events(wh, s))
            continue;
        buf_elem(&ids, s->id);
        buf_elem_i64(&afters, s->sent);
        idx[n++] = i;
    }
    buf_str(&ids, "}");
    buf_str(&afters, "}");
    if (n == 0 || !ids.ok || !afters.ok) {
        free(ids.s);
        free(afters.s);
        return;
    }
    char stable[24], batch[8];
    snprintf(stable, sizeof stable, "%" PRId64, wh->stable);
    snprintf(batch, sizeof batch, "%d", WH_BATCH);
    const char *params[5] = {ids.s, afters.s, stable, wh->owner, batch};
    PGresult *res = PQexecParams(
        wh->conn,
        "WITH m AS MATERIALIZED (SELECT s.i, w.config_version, w.url, w.secret, "
        " CASE WHEN w.old_secret_until > now() THEN w.old_secret ELSE '' END AS old, e.seq "
        " FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS s(id, after, i) "
        " JOIN webhook_endpoints w ON w.id = s.id AND w.lease_owner = $4 AND w.enabled "
        " LEFT JOIN LATERAL (SELECT pe.seq FROM payment_events pe "
        "  WHERE pe.seq > s.after AND pe.seq <= $3::bigint "
        "  AND paytrackr_webhook_matches(w.events, w.filter, pe.type, pe.payment) "
        "  ORDER BY pe.seq LIMIT $5::int) e ON true), "
        "f AS (SELECT DISTINCT ON (seq) seq, i FROM m WHERE seq IS NOT NULL ORDER BY seq, i) "
        "SELECT m.i, m.config_version, m.url, m.secret, m.old, m.seq, b.type, "
        " to_char(b.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        " b.payment::text, b.actor::text, b.refund::text "
        "FROM m LEFT JOIN f ON f.seq = m.seq AND f.i = m.i "
        "LEFT JOIN payment_events b ON b.seq = f.seq "
        "ORDER BY m.i, m.seq",
        5, NULL, params, NULL, NULL, 0);
    free(ids.s);
    free(afters.s);
    if (!query_ok(res)) {
        query_failed(wh, "reading events", res);
        PQclear(res);
        return;
    }
    bool seen[WH_SLOTS] = {false};
    struct wh_bodies bodies = {.seqs = calloc((size_t) PQntuples(res) + 1, sizeof(int64_t)),
                               .texts = calloc((size_t) PQntuples(res) + 1, sizeof(char *))};
    for (int r = 0; r < PQntuples(res); r++) {
        long k = strtol(PQgetvalue(res, r, 0), NULL, 10) - 1;
        if (k < 0 || k >= n)
            continue;
        int i = idx[k];
        struct wh_slot *s = &wh->slots[i];
        const char *body = bodies_take(&bodies, res, r);
        if (to_i64(PQgetvalue(res, r, 1)) != s->version) {
            seen[i] = false; /* changed under us: start again from the database */
            s->version = -1;
            continue;
        }
        seen[i] = true;
        if (fill_slot(s, res, r, body) < 0)
            seen[i] = false;
    }
    PQclear(res);
    bodies_free(&bodies);
    for (int k = 0; k < n; k++) {
        int i = idx[k];
        struct wh_slot *s = &wh->slots[i];
        if (!seen[i] || s->version < 0) {
            slot_drop(wh, i);
        } else if (s->nev > 0) {
            s->idle_since_us = 0;
            /* Fewer than asked for: that was every matching event up to
             * the stable seq, so no fetch is needed to learn it. */
            if (s->nev < WH_BATCH)
                s->read_upto = wh->stable;
        } else {
            s->read_upto = wh->stable; /* nothing matching up to there */
            if (!s->idle_since_us)
                s->idle_since_us = now_us();
        }
    }
}

/* ---- sending ------------------------------------------------------------ */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void) purpose;
    struct wh_slot *s = clientp;
    if (!s->allow_private && wh_addr_blocked(&a->addr)) {
        s->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    (void) data;
    struct wh_slot *s = userp;
    size_t n = size * nmemb;
    s->resp_len += n;
    /* Stop reading once the answer is longer than we care for: its
     * status is all that counts. */
    return s->resp_len > WH_RESP_MAX ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct wh_slot *s = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name && n < 128 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[128];
        memcpy(v, data + sizeof name - 1, n - (sizeof name - 1));
        v[n - (sizeof name - 1)] = '\0';
        char *p = v, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        long secs = strtol(p, &end, 10);
        if (end != p && secs >= 0) {
            s->retry_after = secs;
        } else {
            time_t when = curl_getdate(p, NULL);
            if (when > 0)
                s->retry_after = when > time(NULL) ? (long) (when - time(NULL)) : 0;
        }
    }
    return n;
}

/* Adds "name: value" to the request's headers. */
static int add_header(struct wh_slot *s, const char *name, const char *value)
{
    char line[256];
    /* "Name:" with no value removes a header curl would add. */
    snprintf(line, sizeof line, value ? "%s: %s" : "%s:", name, value ? value : "");
    struct curl_slist *l = curl_slist_append(s->headers, line);
    if (!l)
        return -1;
    s->headers = l;
    return 0;
}

/* The slot's easy handle with the options all its transfers share; made
 * on the first send, kept until the slot ends (a new handle per event
 * was a tenth of the delivery thread in malloc and free). */
static CURL *slot_easy(struct wh_slot *s)
{
    if (s->easy)
        return s->easy;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, s->allow_private ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never through an environment proxy */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) WH_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, s);
    s->easy = c;
    return c;
}

/* Signs ev[0] and starts its transfer. */
static int slot_send(struct webhooks *wh, int i)
{
    struct wh_slot *s = &wh->slots[i];
    struct wh_event *e = &s->ev[0];
    char id[32], ts[24], sig[WH_SIGNATURE_MAX], old[WH_SIGNATURE_MAX], sigs[2 * WH_SIGNATURE_MAX];
    snprintf(id, sizeof id, "evt_%" PRId64, e->seq);
    snprintf(ts, sizeof ts, "%lld", (long long) time(NULL));
    size_t blen = strlen(e->body);
    if (wh_sign(s->secret, id, ts, e->body, blen, sig) < 0)
        return -1;
    if (s->old_secret[0] && wh_sign(s->old_secret, id, ts, e->body, blen, old) == 0)
        snprintf(sigs, sizeof sigs, "%s %s", sig, old);
    else
        snprintf(sigs, sizeof sigs, "%s", sig);
    s->resp_len = 0;
    s->retry_after = -1;
    s->refused = false;
    s->errbuf[0] = '\0';
    if (add_header(s, "Content-Type", "application/json") < 0 ||
        add_header(s, "webhook-id", id) < 0 || add_header(s, "webhook-timestamp", ts) < 0 ||
        add_header(s, "webhook-signature", sigs) < 0 ||
        add_header(s, "User-Agent", "paytrackr-webhooks/" PAYTRACKR_VERSION) < 0 ||
        add_header(s, "Expect", NULL) < 0)
        return -1;
    CURL *c = slot_easy(s);
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) blen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
    s->t_start_us = now_us();
    if (curl_multi_add_handle(wh->multi, c) != CURLM_OK)
        return -1;
    s->in_flight = true;
    return 0;
}

/* Starts the transfers that may start; returns how many did. */
static int start_transfers(struct webhooks *wh)
{
    int started = 0;
    for (int i = 0; i < WH_SLOTS; i++) {
        struct wh_slot *s = &wh->slots[i];
        /* Each transfer logs one attempt: room for all of them first. */
        if (wh->nattempts > WH_LOG_MAX - WH_SLOTS)
            break;
        if (!s->used || s->nev == 0 || s->in_flight || s->ending)
            continue;
        if (slot_send(wh, i) == 0) {
            started++;
        } else {
            log_msg(wh->log, LOG_WARN, "webhooks: cannot start a delivery to endpoint %s", s->id);
            slot_drop(wh, i);
        }
    }
    return started;
}

/* The delay before retry `n` (1-based), with up to 10 % jitter, or a
 * Retry-After clamped to the schedule's bounds. */
static int64_t retry_delay_ms(const struct wh_config *cfg, int n, long retry_after)
{
    int lo = cfg->schedule[0], hi = cfg->schedule[0];
    for (int i = 1; i < cfg->schedule_len; i++) {
        lo = cfg->schedule[i] < lo ? cfg->schedule[i] : lo;
        hi = cfg->schedule[i] > hi ? cfg->schedule[i] : hi;
    }
    if (retry_after >= 0)
        return (int64_t) (retry_after < lo ? lo : retry_after > hi ? hi : retry_after) * 1000;
    int64_t base = (int64_t) cfg->schedule[n - 1] * 1000;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r)
        r = (uint32_t) now_us();
    return base + (int64_t) ((double) base * 0.1 * ((double) r / 4294967296.0));
}

static enum wh_outcome classify(struct wh_slot *s, CURLcode code, long status, char *error,
                                size_t cap)
{
    bool answered = status > 0 && (code == CURLE_OK || code == CURLE_WRITE_ERROR);
    if (answered && status >= 200 && status < 300) {
        error[0] = '\0';
        return WH_OK;
    }
    if (answered) {
        snprintf(error, cap, "HTTP %ld", status);
        return status == 410 ? WH_GONE : WH_HTTP_ERROR;
    }
    if (s->refused) {
        snprintf(error, cap, "refused: the target address is loopback, private or reserved");
        return WH_REFUSED;
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf(error, cap, "no answer within %d s", WH_TIMEOUT_MS / 1000);
        return WH_TIMEOUT;
    }
    copy_cut(error, cap, s->errbuf[0] ? s->errbuf : curl_easy_strerror(code));
    return WH_NETWORK;
}

/* Logs a finished transfer's attempt. An acknowledged event is done at
 * once (the next one may go out now; the progress is written back with
 * the next record); a failure ends the slot with a result to write. */
static void finish_transfer(struct webhooks *wh, struct wh_slot *s, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    struct wh_attempt *a = &wh->attempts[wh->nattempts++];
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", s->id);
    a->seq = s->ev[0].seq;
    a->attempt_no = s->attempt + 1;
    a->duration_ms = (int) ((now_us() - s->t_start_us) / 1000);
    enum wh_outcome o = classify(s, code, status, a->error, sizeof a->error);
    a->status = o == WH_REFUSED || o == WH_TIMEOUT || o == WH_NETWORK ? 0 : status;
    count_outcome(wh, o);
    slot_end_transfer(wh, s);
    if (o == WH_OK) {
        s->sent = a->seq;
        s->attempt = 0;
        free(s->ev[0].body);
        memmove(&s->ev[0], &s->ev[1], (size_t) (s->nev - 1) * sizeof s->ev[0]);
        s->nev--;
        if (s->nev == 0 && s->read_upto >= wh->stable)
            s->idle_since_us = now_us(); /* caught up: held from now on */
        return;
    }
    struct wh_result *r = &wh->results[wh->nresults++];
    memset(r, 0, sizeof *r);
    r->slot = (int) (s - wh->slots);
    r->new_delivered = s->sent;
    s->ending = true;
    if (o == WH_GONE) {
        snprintf(r->disable_reason, sizeof r->disable_reason,
                 "the endpoint answered 410 Gone (seq %" PRId64 ")", a->seq);
    } else if (a->attempt_no > wh->cfg.schedule_len) {
        char last[64];
        copy_cut(last, sizeof last, a->error);
        snprintf(r->disable_reason, sizeof r->disable_reason,
                 "retry schedule exhausted after %d attempts at seq %" PRId64 ": %s", a->attempt_no,
                 a->seq, last);
    } else {
        r->new_attempt = a->attempt_no;
        r->delay_ms = retry_delay_ms(&wh->cfg, a->attempt_no, s->retry_after);
        r->release = true;
    }
}

static void collect_transfers(struct webhooks *wh)
{
    int queued;
    CURLMsg *m;
    while ((m = curl_multi_info_read(wh->multi, &queued)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct wh_slot *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &s);
        if (s && s->in_flight && s->easy == m->easy_handle)
            finish_transfer(wh, s, m->data.result);
    }
}

/* ---- writing results back ----------------------------------------------- */

/* The columns of a write-back, as PostgreSQL array literals: one row per
 * endpoint whose progress or state changed, one per attempt to log. */
enum {
    COL_ID,
    COL_VERSION,
    COL_PREV,
    COL_DELIVERED,
    COL_ATTEMPT,
    COL_DELAY,
    COL_REASON,
    COL_RELEASE,
    ALOG_ID,
    ALOG_SEQ,
    ALOG_ATTEMPT_NO,
    ALOG_STATUS,
    ALOG_ERROR,
    ALOG_MS,
    COLS
};

/* A slot's row: its result when one ends it, else its acknowledged
 * progress. */
static void columns_add_slot(struct wh_buf *c, const struct wh_slot *s, const struct wh_result *r)
{
    buf_elem(&c[COL_ID], s->id);
    buf_elem_i64(&c[COL_VERSION], s->version);
    buf_elem_i64(&c[COL_PREV], s->delivered);
    buf_elem_i64(&c[COL_DELIVERED], r ? r->new_delivered : s->sent);
    buf_elem_i64(&c[COL_ATTEMPT], r ? r->new_attempt : 0);
    buf_elem_i64(&c[COL_DELAY], r ? r->delay_ms : 0);
    buf_elem(&c[COL_REASON], r && r->disable_reason[0] ? r->disable_reason : NULL);
    buf_elem(&c[COL_RELEASE], r && r->release ? "t" : "f");
}

static void columns_add_attempt(struct wh_buf *c, const struct wh_attempt *a)
{
    char n[24];
    buf_elem(&c[ALOG_ID], a->id);
    buf_elem_i64(&c[ALOG_SEQ], a->seq);
    buf_elem_i64(&c[ALOG_ATTEMPT_NO], a->attempt_no);
    snprintf(n, sizeof n, "%ld", a->status);
    buf_elem(&c[ALOG_STATUS], a->status > 0 ? n : NULL);
    buf_elem(&c[ALOG_ERROR], a->error[0] ? a->error : NULL);
    buf_elem_i64(&c[ALOG_MS], a->duration_ms);
}

/* The slot's result waiting to be written, or NULL. */
static const struct wh_result *slot_result(const struct webhooks *wh, int i)
{
    for (int k = 0; k < wh->nresults; k++)
        if (wh->results[k].slot == i)
            return &wh->results[k];
    return NULL;
}

/* Whether slot `i` has something to write back. */
static bool slot_changed(const struct webhooks *wh, int i)
{
    const struct wh_slot *s = &wh->slots[i];
    return s->used && (s->ending || s->sent != s->delivered);
}

/* Whether a write-back is due: a result ends a slot (written at once, so
 * the endpoint is free for the next claim), or acknowledged progress and
 * attempts have waited WH_RECORD_GAP_US, or the log is nearly full. */
static bool record_due(const struct webhooks *wh)
{
    if (wh->nresults > 0 || wh->nattempts > WH_LOG_MAX - 2 * WH_SLOTS)
        return true;
    if (now_us() < wh->next_record_us)
        return false;
    if (wh->nattempts > 0)
        return true;
    for (int i = 0; i < WH_SLOTS; i++)
        if (slot_changed(wh, i))
            return true;
    return false;
}

/* Applies a written (or refused) row to its slot: progress is now the
 * database's, or the slot ends (the row carried its result, or someone
 * else changed the endpoint). A result that came while the row was in
 * flight is written with the next one. */
static void apply_row(struct webhooks *wh, int i, int64_t new_delivered, bool written, bool ended)
{
    struct wh_slot *s = &wh->slots[i];
    if (!written)
        slot_drop(wh, i); /* someone else changed it: let go */
    else if (ended)
        slot_free(wh, s);
    else
        s->delivered = new_delivered;
}

/* A write-back that failed or was lost: nothing was written, so the
 * leases run out and the attempts in question are made again, by us or
 * another replica. */
static void record_lost(struct webhooks *wh, PGresult *res)
{
    query_failed(wh, "recording deliveries", res);
    for (int k = 0; k < wh->rec_nrows; k++)
        slot_free(wh, &wh->slots[wh->rec_rows[k]]);
    wh->rec_nrows = 0;
}

/* Sends, in one statement, every slot's progress or result and the
 * attempts to log; record_finish() applies the answer. */
static void record_results(struct webhooks *wh)
{
    int *rows = wh->rec_rows, nrows = 0;
    int64_t *wrote = wh->rec_wrote;
    if (wh->rec_in_flight)
        return;
    for (int i = 0; i < WH_SLOTS; i++)
        if (slot_changed(wh, i))
            rows[nrows++] = i;
    wh->rec_nrows = nrows;
    wh->next_record_us = now_us() + WH_RECORD_GAP_US;
    if (nrows == 0 && wh->nattempts == 0)
        return;
    struct wh_buf c[COLS];
    for (int k = 0; k < COLS; k++) {
        c[k] = (struct wh_buf){.ok = true};
        buf_str(&c[k], "{");
    }
    for (int k = 0; k < nrows; k++) {
        const struct wh_result *r = slot_result(wh, rows[k]);
        wrote[k] = r ? r->new_delivered : wh->slots[rows[k]].sent;
        wh->rec_ended[k] = r != NULL;
        columns_add_slot(c, &wh->slots[rows[k]], r);
    }
    for (int k = 0; k < wh->nattempts; k++)
        columns_add_attempt(c, &wh->attempts[k]);
    bool ok = true;
    for (int k = 0; k < COLS; k++) {
        buf_str(&c[k], "}");
        ok = ok && c[k].ok;
    }
    char lease[16];
    snprintf(lease, sizeof lease, "%d", wh->cfg.lease_seconds);
    const char *params[2 + COLS] = {wh->owner, lease};
    for (int k = 0; k < COLS; k++)
        params[2 + k] = c[k].s;
    int sent = 0;
    if (ok)
        sent = PQsendQueryParams(
            wh->conn,
            "WITH r AS (SELECT * FROM unnest($3::uuid[], $4::bigint[], $5::bigint[], "
            " $6::bigint[], $7::int[], $8::bigint[], $9::text[], $10::bool[]) AS r(id, version, "
            " prev, new_delivered, new_attempt, delay_ms, reason, release)), "
            "l AS (SELECT * FROM unnest($11::uuid[], $12::bigint[], $13::int[], $14::int[], "
            " $15::text[], $16::int[]) WITH ORDINALITY AS l(id, seq, attempt_no, status, error, "
            " ms, n)), "
            "ins AS (INSERT INTO webhook_deliveries (endpoint_id, seq, attempt, status_code, "
            " error, duration_ms) SELECT l.id, l.seq, l.attempt_no, l.status, l.error, l.ms "
            " FROM l JOIN webhook_endpoints x ON x.id = l.id ORDER BY l.n) "
            "UPDATE webhook_endpoints w SET delivered_seq = r.new_delivered, "
            " attempt = r.new_attempt, "
            " next_attempt_at = CASE WHEN r.release OR r.reason IS NOT NULL "
            "  THEN now() + r.delay_ms * interval '1 millisecond' ELSE w.next_attempt_at END, "
            " enabled = r.reason IS NULL, disabled_reason = r.reason, "
            " lease_owner = CASE WHEN r.release OR r.reason IS NOT NULL THEN NULL ELSE $1 END, "
            " lease_until = CASE WHEN r.release OR r.reason IS NOT NULL THEN NULL "
            "  ELSE now() + make_interval(secs => $2::int) END "
            "FROM r WHERE w.id = r.id AND w.lease_owner = $1 AND w.config_version = r.version "
            " AND w.delivered_seq = r.prev AND w.enabled "
            "RETURNING w.id::text",
            2 + COLS, NULL, params, NULL, NULL, 0);
    for (int k = 0; k < COLS; k++)
        free(c[k].s);
    wh->nattempts = 0;
    wh->nresults = 0;
    if (!sent)
        record_lost(wh, NULL);
    else
        wh->rec_in_flight = true;
}

/* Applies the answer to the write-back in flight, if any: at once when
 * it has come (or `wait`, then after waiting for it). Returns whether the
 * connection is free for another statement. */
static bool record_finish(struct webhooks *wh, bool wait)
{
    if (!wh->rec_in_flight)
        return true;
    if (!wait && PQconsumeInput(wh->conn) && PQisBusy(wh->conn))
        return false;
    wh->rec_in_flight = false;
    PGresult *res = PQgetResult(wh->conn), *extra;
    while ((extra = PQgetResult(wh->conn)) != NULL)
        PQclear(extra);
    if (!res || !query_ok(res)) {
        record_lost(wh, res);
        PQclear(res);
        return wh->conn != NULL;
    }
    for (int k = 0; k < wh->rec_nrows; k++) {
        int i = wh->rec_rows[k];
        bool written = false;
        for (int row = 0; row < PQntuples(res) && !written; row++)
            written = strcmp(PQgetvalue(res, row, 0), wh->slots[i].id) == 0;
        apply_row(wh, i, wh->rec_wrote[k], written, wh->rec_ended[k]);
    }
    wh->rec_nrows = 0;
    PQclear(res);
    return true;
}

/* ---- periodic work ------------------------------------------------------ */

/* Renews the leases of the endpoints held in a slot, and only those: a
 * lease whose slot was let go without a release (a write-back that was
 * not written) must run out, so that the endpoint is claimed again; renewed
 * with the rest, it would stay with no one working on it. */
static void renew_leases(struct webhooks *wh)
{
    struct wh_buf ids = {.ok = true};
    buf_str(&ids, "{");
    for (int i = 0; i < WH_SLOTS; i++)
        if (wh->slots[i].used)
            buf_elem(&ids, wh->slots[i].id);
    buf_str(&ids, "}");
    if (!ids.ok) {
        free(ids.s);
        return;
    }
    char lease[16];
    snprintf(lease, sizeof lease, "%d", wh->cfg.lease_seconds);
    const char *params[3] = {wh->owner, lease, ids.s};
    PGresult *res = PQexecParams(wh->conn,
                                 "UPDATE webhook_endpoints SET lease_until = now() + "
                                 "make_interval(secs => $2::int) WHERE lease_owner = $1 "
                                 "AND id = ANY ($3::uuid[]) RETURNING id::text",
                                 3, NULL, params, NULL, NULL, 0);
    free(ids.s);
    if (!query_ok(res)) {
        query_failed(wh, "renewing leases", res);
        PQclear(res);
        return;
    }
    for (int i = 0; i < WH_SLOTS; i++) {
        if (!wh->slots[i].used)
            continue;
        bool held = false;
        for (int r = 0; r < PQntuples(res) && !held; r++)
            held = strcmp(PQgetvalue(res, r, 0), wh->slots[i].id) == 0;
        if (!held)
            slot_free(wh, &wh->slots[i]); /* lost: another replica has it now */
    }
    PQclear(res);
}

/* Rebuilds the per-endpoint lag lines for /metrics. */
static void measure_lag(struct webhooks *wh)
{
    char stable[24], limit[16];
    snprintf(stable, sizeof stable, "%" PRId64, wh->stable);
    snprintf(limit, sizeof limit, "%d", WH_LAG_ENDPOINTS);
    const char *params[2] = {stable, limit};
    PGresult *res = PQexecParams(
        wh->conn,
        "SELECT w.id::text, w.enabled, l.pending, "
        "COALESCE(extract(epoch FROM now() - l.oldest), 0)::numeric(12,3)::text "
        "FROM webhook_endpoints w "
        "CROSS JOIN LATERAL paytrackr_webhook_backlog(w.events, w.filter, w.delivered_seq, "
        " $1::bigint) l "
        "ORDER BY w.created_at, w.id LIMIT $2::int",
        2, NULL, params, NULL, NULL, 0);
    if (!query_ok(res)) {
        query_failed(wh, "measuring lag", res);
        PQclear(res);
        return;
    }
    struct wh_buf b = {.ok = true};
    buf_str(&b, "# HELP paytrackr_webhook_lag_events Matching events an endpoint has not "
                "acknowledged yet (counted among the next 10000 events).\n# TYPE "
                "paytrackr_webhook_lag_events gauge\n");
    for (int r = 0; r < PQntuples(res); r++) {
        char line[160];
        snprintf(line, sizeof line,
                 "paytrackr_webhook_lag_events{endpoint=\"%s\",enabled=\"%s\"} %s\n",
                 PQgetvalue(res, r, 0), PQgetvalue(res, r, 1)[0] == 't' ? "true" : "false",
                 PQgetvalue(res, r, 2));
        buf_str(&b, line);
    }
    buf_str(&b, "# HELP paytrackr_webhook_lag_seconds Age of the oldest event an endpoint has "
                "not acknowledged.\n# TYPE paytrackr_webhook_lag_seconds gauge\n");
    for (int r = 0; r < PQntuples(res); r++) {
        char line[160];
        snprintf(line, sizeof line, "paytrackr_webhook_lag_seconds{endpoint=\"%s\"} %s\n",
                 PQgetvalue(res, r, 0), PQgetvalue(res, r, 3));
        buf_str(&b, line);
    }
    PQclear(res);
    if (!b.ok) {
        free(b.s);
        return;
    }
    pthread_mutex_lock(&wh->lock);
    free(wh->lag_text);
    wh->lag_text = b.s;
    pthread_mutex_unlock(&wh->lock);
}

/* The deliveries log keeps 30 days, trimmed every 10 s by up to 10,000 of
 * its oldest rows (up to 86 million a day). The log is written in time
 * order, so the oldest rows by id are the oldest by time: the primary key
 * finds them, and when even the first is younger than 30 days (most of
 * the time) the statement stops there. No index on `at` is needed: a
 * search by `at` without one read the whole log every time. */
static void prune_log(struct webhooks *wh)
{
    PGresult *res = PQexec(wh->conn, "DELETE FROM webhook_deliveries d USING (SELECT id, at FROM "
                                     "webhook_deliveries ORDER BY id LIMIT 10000) o "
                                     "WHERE d.id = o.id AND o.at < now() - interval '30 days' "
                                     "AND (SELECT at FROM webhook_deliveries ORDER BY id LIMIT 1) "
                                     "< now() - interval '30 days'");
    if (!query_ok(res))
        query_failed(wh, "pruning the deliveries log", res);
    PQclear(res);
}

/* ---- the thread ------------------------------------------------------- */

static bool any_idle(const struct webhooks *wh)
{
    for (int i = 0; i < WH_SLOTS; i++)
        if (slot_wants_events(wh, &wh->slots[i]))
            return true;
    return false;
}

/* One round of database work; false when the connection is gone. */
static bool db_round(struct webhooks *wh, bool woken)
{
    int64_t t = now_us();
    bool tick = t >= wh->next_tick_us;
    /* The periodic work comes before the fetch: a round starts with the
     * connection free, and the fetch may send a write-back that holds it. */
    if (t >= wh->next_renew_us) {
        renew_leases(wh);
        wh->next_renew_us = t + (int64_t) wh->cfg.lease_seconds * 1000000 / 3;
        if (!wh->conn)
            return false;
    }
    /* The stable seq is read on a wake-up or a tick only: between them the
     * last one read is still a safe bound to read events up to. */
    if (woken || tick) {
        /* A wake-up's stable seq was read by the listener just before: a
         * tick asks the database itself. */
        int64_t heard = tick ? -1 : heard_stable(wh);
        int64_t s = heard > wh->stable ? heard : read_stable(wh);
        if (!wh->conn)
            return false;
        if (s >= 0) {
            wh->stable = s;
            claim(wh);
        }
        if (tick || free_slots(wh) == 0)
            release_idle(wh);
        if (tick)
            wh->next_tick_us = t + WH_TICK_US;
    }
    if (wh->conn && t >= wh->next_lag_us) {
        measure_lag(wh); /* up to the stable seq just read */
        wh->next_lag_us = t + WH_LAG_EVERY_US;
    }
    if (wh->conn && t >= wh->next_prune_us) {
        prune_log(wh);
        wh->next_prune_us = t + WH_PRUNE_EVERY_US;
    }
    if (wh->conn && any_idle(wh)) {
        fetch_events(wh);
        if (wh->nresults > 0)
            record_results(wh); /* the caught-up ones, with whatever else waits */
    }
    return wh->conn != NULL;
}

/* Whether this round serves a wake-up: one came (now or earlier) and the
 * last one served is WH_WAKE_GAP_US ago; otherwise it stays pending. */
static bool wake_due(struct webhooks *wh)
{
    bool woken = take_wake(wh) || wh->wake_pending;
    int64_t t = now_us();
    wh->wake_pending = woken && t < wh->next_wake_round_us;
    if (!woken || wh->wake_pending)
        return false;
    wh->next_wake_round_us = t + (free_slots(wh) < WH_SLOTS ? WH_WAKE_GAP_BUSY_US : WH_WAKE_GAP_US);
    return true;
}

/* Moves the transfers on: starts what may start, collects what finished,
 * and sends at once the next event of each endpoint that acknowledged.
 * curl_multi_perform() checks every transfer in flight with a poll() of
 * its own, so it runs the second time only for transfers just started. */
static void transfer_round(struct webhooks *wh)
{
    int running = 0;
    start_transfers(wh);
    curl_multi_perform(wh->multi, &running);
    collect_transfers(wh);
    if (start_transfers(wh) > 0)
        curl_multi_perform(wh->multi, &running);
}

static void *thread_main(void *arg)
{
    struct webhooks *wh = arg;
    int64_t backoff_us = 200000;
    while (!should_stop(wh)) {
        if (!wh->conn && connect_db(wh) < 0) {
            curl_multi_poll(wh->multi, NULL, 0, (int) (backoff_us / 1000), NULL);
            backoff_us = backoff_us * 2 > 5000000 ? 5000000 : backoff_us * 2;
            continue;
        }
        backoff_us = 200000;
        /* While a write-back is in flight, transfers go on and the
         * database work (and a wake-up) waits for its answer. */
        bool db_free = record_finish(wh, false);
        if (!wh->conn)
            continue;
        if (db_free && !db_round(wh, wake_due(wh)))
            continue;
        transfer_round(wh);
        if (!wh->rec_in_flight && record_due(wh)) {
            record_results(wh);
            continue;
        }
        if (!wh->rec_in_flight && any_idle(wh))
            continue;
        int64_t until = wh->next_tick_us;
        if (wh->wake_pending && wh->next_wake_round_us < until)
            until = wh->next_wake_round_us;
        if (wh->nattempts > 0 && wh->next_record_us < until)
            until = wh->next_record_us;
        int64_t wait_ms = (until - now_us()) / 1000;
        struct curl_waitfd answer = {.fd = PQsocket(wh->conn), .events = CURL_WAIT_POLLIN};
        curl_multi_poll(wh->multi, &answer, wh->rec_in_flight ? 1 : 0,
                        wait_ms < 1 ? 1 : (int) wait_ms, NULL);
        transfer_round(wh);
    }
    /* Leaving: abandon what is in flight and hand every lease back. */
    if (wh->conn)
        record_finish(wh, true);
    for (int i = 0; i < WH_SLOTS; i++)
        if (wh->slots[i].used)
            slot_free(wh, &wh->slots[i]);
    if (wh->conn) {
        const char *params[1] = {wh->owner};
        PGresult *res = PQexecParams(wh->conn,
                                     "UPDATE webhook_endpoints SET lease_owner = NULL, "
                                     "lease_until = NULL WHERE lease_owner = $1",
                                     1, NULL, params, NULL, NULL, 0);
        PQclear(res);
        PQfinish(wh->conn);
        wh->conn = NULL;
    }
    return NULL;
}

/* ---- lifecycle and the service thread's side ----------------------------- */

struct webhooks *webhook_start(struct server *srv)
{
    struct webhooks *wh = calloc(1, sizeof *wh);
    if (!wh)
        return NULL;
    wh->srv = srv;
    wh->cfg = srv->whcfg;
    wh->log = &srv->log;
    unsigned char r[8] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t) sizeof r)
        memcpy(r, &(int64_t){now_us()}, sizeof r);
    wh->wake_stable = -1;
    snprintf(wh->owner, sizeof wh->owner, "%s-%02x%02x%02x%02x%02x%02x%02x%02x", srv->boot_id, r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    wh->multi = curl_multi_init();
    if (!wh->multi || pthread_mutex_init(&wh->lock, NULL) != 0) {
        if (wh->multi)
            curl_multi_cleanup(wh->multi);
        free(wh);
        return NULL;
    }
    if (pthread_create(&wh->thread, NULL, thread_main, wh) != 0) {
        pthread_mutex_destroy(&wh->lock);
        curl_multi_cleanup(wh->multi);
        free(wh);
        return NULL;
    }
    return wh;
}

void webhook_wake(struct webhooks *wh, int64_t stable)
{
    if (!wh)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->wake = true;
    if (stable > wh->wake_stable)
        wh->wake_stable = stable;
    pthread_mutex_unlock(&wh->lock);
    curl_multi_wakeup(wh->multi);
}

char *webhook_metrics_text(struct webhooks *wh)
{
    struct wh_buf b = {.ok = true};
    buf_str(&b, "# HELP paytrackr_webhook_attempts_total Webhook delivery attempts by "
                "outcome.\n# TYPE paytrackr_webhook_attempts_total counter\n");
    pthread_mutex_lock(&wh->lock);
    for (int o = 0; o < WH_OUTCOMES; o++) {
        char line[128];
        snprintf(line, sizeof line,
                 "paytrackr_webhook_attempts_total{outcome=\"%s\"} %" PRIu64 "\n", outcome_names[o],
                 wh->outcomes[o]);
        buf_str(&b, line);
    }
    if (wh->lag_text)
        buf_str(&b, wh->lag_text);
    pthread_mutex_unlock(&wh->lock);
    if (!b.ok) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

void webhook_stop(struct webhooks *wh)
{
    if (!wh)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->stop = true;
    pthread_mutex_unlock(&wh->lock);
    curl_multi_wakeup(wh->multi);
    pthread_join(wh->thread, NULL);
    curl_multi_cleanup(wh->multi);
    pthread_mutex_destroy(&wh->lock);
    free(wh->lag_text);
    free(wh);
}
