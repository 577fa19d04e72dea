/*
 * listener.c - the LISTEN connection and the fetch loop that feeds the
 * WebSocket stream.
 */
#include "listener.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgloop.h"
#include "server.h"
#include "store.h"
#include "stream.h"

/* Safety tick: a fetch at least this often, whatever the notifications. */
#define LISTENER_TICK_US (1 * LWS_US_PER_SEC)
/* While a writer with a lower seq is still committing, look again this
 * soon: its notification wakes us too, but one that rolls back sends none. */
#define LISTENER_INFLIGHT_US (2 * LWS_US_PER_SEC / 1000)
/* After a failed query (not a lost connection), try again this soon. */
#define LISTENER_RETRY_FETCH_US (200 * LWS_US_PER_SEC / 1000)
/* A query running longer than this means the connection is dead (the
 * stable-seq wait gives up after 5 s; statement_timeout is 15 s). */
#define LISTENER_QUERY_DEADLINE_US (20 * LWS_US_PER_SEC)
/* Events read per query of a fetch: at most this, and at most a quarter
 * of a subscriber's queue, since a page is queued on every subscriber in
 * one go; the loop takes a turn between pages so queues drain. */
#define LISTENER_PAGE_MAX 1000

enum listener_query {
    Q_NONE,   /* idle */
    Q_LISTEN, /* LISTEN paytrackr_events */
    Q_STABLE, /* the bounds alone: learning the head the first time */
    Q_EVENTS, /* the bounds and a page of events up to the stable one */
    Q_PAUSED, /* between two pages: nothing on the wire, fetch going on */
};

struct listener {
    struct server *srv;

    /* the connection, once handed over by the helper */
    PGconn *conn;
    struct lws *wsi; /* the adopted dup() of PQsocket() */
    struct pgloop_connector connector;
    bool listening; /* LISTEN done on this connection */
    bool stopped;

    enum listener_query query;
    int64_t query_started_us;
    bool query_failed;   /* the current query returned an error */
    char query_state[6]; /* its SQLSTATE */
    bool again;          /* a wake-up arrived during a fetch */

    int64_t delivered; /* highest seq broadcast; -1 until known */
    int64_t stable;    /* the bound of the fetch in progress; -1: NULL */
    int64_t high;      /* the sequence's high-water mark with it */
    bool page_full;    /* the last page of events was full: read on */
    int page;          /* events per page */

    bool logged_down;  /* "listener down" said once per outage */
    bool fetch_failed; /* the last fetch failed (not ready) */

    lws_sorted_usec_list_t sul_tick;
    lws_sorted_usec_list_t sul_reconnect;
    lws_sorted_usec_list_t sul_page;
    lws_sorted_usec_list_t sul_inflight;
};

static void lost(struct listener *l, const char *why);
static void tick_cb(lws_sorted_usec_list_t *sul);

static int64_t now_us(void)
{
    return server_now_us();
}

/* The first line of libpq's last error, for the log. */
static void pq_error(PGconn *conn, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    buf[strcspn(buf, "\n")] = '\0';
}

/* ---- connecting ------------------------------------------------------------ */

static void schedule_reconnect(struct listener *l);

/* Starts a connect helper (service thread). */
static void start_connect(struct listener *l)
{
    if (l->stopped || l->connector.connecting || l->conn)
        return;
    char *conninfo = db_pool_conninfo(l->srv->pool);
    if (!conninfo) {
        /* No connection string yet (Key Vault not read): the pool's
         * workers keep asking; try again later. */
        schedule_reconnect(l);
        return;
    }
    if (pgloop_connect(&l->connector, conninfo, l->srv->cfg.db_sslrootcert) < 0) {
        log_msg(&l->srv->log, LOG_ERROR, "listener: cannot start the connect thread");
        schedule_reconnect(l);
    }
}

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
    struct listener *l = lws_container_of(sul, struct listener, sul_reconnect);
    start_connect(l);
}

static void schedule_reconnect(struct listener *l)
{
    if (l->stopped)
        return;
    lws_sul_schedule(l->srv->context, 0, &l->sul_reconnect, reconnect_cb,
                     pgloop_backoff_us(&l->connector));
}

/* Sends `sql` (with optional text params) and asks for POLLOUT when libpq
 * could not write it all at once. Returns 0 or -1 (connection unusable). */
static int send_query(struct listener *l, enum listener_query q, const char *sql, int nparams,
                      const char *const *params)
{
    int ok = nparams ? PQsendQueryParams(l->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                     : PQsendQuery(l->conn, sql);
    if (!ok)
        return -1;
    l->query = q;
    l->query_started_us = now_us();
    l->query_failed = false;
    l->query_state[0] = '\0';
    int f = PQflush(l->conn);
    if (f < 0)
        return -1;
    if (f == 1 && l->wsi)
        lws_callback_on_writable(l->wsi);
    return 0;
}

/* Takes over a connection the helper made (service thread). */
static void connect_finished(struct listener *l)
{
    PGconn *conn;
    if (!pgloop_take(&l->connector, &conn))
        return;
    if (l->stopped) {
        PQfinish(conn);
        return;
    }
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        char msg[256];
        pq_error(conn, msg, sizeof msg);
        PQfinish(conn);
        if (!l->logged_down)
            log_msg(&l->srv->log, LOG_WARN, "listener: cannot connect: %s", msg);
        l->logged_down = true;
        schedule_reconnect(l);
        return;
    }
    l->conn = conn;
    PQsetNoticeProcessor(conn, db_ignore_notice, NULL);
    if (PQsetnonblocking(conn, 1) != 0 ||
        !(l->wsi = pgloop_adopt(l->srv->public_vhost, conn, LISTENER_PROTOCOL_NAME, l))) {
        lost(l, "cannot watch the connection's socket");
        return;
    }
    if (send_query(l, Q_LISTEN, "LISTEN " STORE_NOTIFY_CHANNEL, 0, NULL) < 0)
        lost(l, "LISTEN could not be sent");
}

/* ---- losing the connection ----------------------------------------------- */

/* Drops the connection (service thread) and schedules a reconnect. The
 * adopted wsi is closed asynchronously; its close callback finds it no
 * longer ours. */
static void lost(struct listener *l, const char *why)
{
    bool was_up = l->srv->listener_up;
    if (l->wsi) {
        struct lws *wsi = l->wsi;
        l->wsi = NULL;
        pgloop_release(wsi);
    }
    if (l->conn) {
        char msg[256];
        pq_error(l->conn, msg, sizeof msg);
        if (!l->logged_down)
            log_msg(&l->srv->log, LOG_WARN, "listener: connection lost (%s%s%s); reconnecting", why,
                    msg[0] ? ": " : "", msg);
        PQfinish(l->conn);
        l->conn = NULL;
    }
    l->logged_down = true;
    l->listening = false;
    l->query = Q_NONE;
    lws_sul_cancel(&l->sul_page);
    l->again = false;
    l->srv->listener_up = false;
    if (was_up)
        log_msg(&l->srv->log, LOG_WARN, "listener down: not ready");
    schedule_reconnect(l);
}

static void set_up(struct listener *l)
{
    if (l->srv->listener_up)
        return;
    l->srv->listener_up = true;
    pgloop_connected(&l->connector);
    l->logged_down = false;
    char head[32];
    snprintf(head, sizeof head, "%" PRId64, l->delivered);
    struct log_field fields[] = {{"head", head, 1}, {NULL, NULL, 0}};
    log_fields(&l->srv->log, LOG_INFO, "listener up", fields);
}

/* ---- fetching ------------------------------------------------------------- */

/* Sends the query for the next step of a fetch: the bounds alone the
 * first time (nothing is broadcast then), else a page of events with the
 * bounds, in one round trip (paytrackr_stream_fetch, migration 0003). */
static void send_fetch(struct listener *l)
{
    if (l->delivered < 0) {
        if (send_query(l, Q_STABLE, "SELECT stable, high FROM paytrackr_stream_bounds()", 0, NULL) <
            0)
            lost(l, "query could not be sent");
        return;
    }
    char after[32], limit[16];
    snprintf(after, sizeof after, "%" PRId64, l->delivered);
    snprintf(limit, sizeof limit, "%d", l->page);
    const char *params[2] = {after, limit};
    if (send_query(l, Q_EVENTS,
                   "SELECT ev_seq, ev_type, ev_at, ev_payment, ev_status, ev_currency, "
                   "ev_payer, ev_payee, stable, high, ev_actor, ev_refund "
                   "FROM paytrackr_stream_fetch($1::bigint, $2::int)",
                   2, params) < 0)
        lost(l, "query could not be sent");
}

/* Asks for a fetch: starts one now, or after the one in progress. */
static void start_fetch(struct listener *l)
{
    if (!l->conn || !l->listening || l->stopped)
        return;
    if (l->query != Q_NONE) {
        l->again = true;
        return;
    }
    l->again = false;
    send_fetch(l);
}

static void inflight_cb(lws_sorted_usec_list_t *sul)
{
    struct listener *l = lws_container_of(sul, struct listener, sul_inflight);
    start_fetch(l);
}

static void next_page_cb(lws_sorted_usec_list_t *sul)
{
    struct listener *l = lws_container_of(sul, struct listener, sul_page);
    if (l->query == Q_PAUSED && l->conn)
        send_fetch(l);
}

/* The fetch is over: run the next one if a wake-up came meanwhile. */
static void fetch_finished(struct listener *l)
{
    l->query = Q_NONE;
    if (l->again)
        start_fetch(l);
}

static int64_t parse_seq(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    return (int64_t) v;
}

/* Reads the bounds in columns `col` and `col + 1` of row 0 (NULL: a writer
 * that does not announce its seq ran longer than the function waits).
 * Returns 0 or -1. */
static int read_bounds(struct listener *l, PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQnfields(res) < col + 2)
        return -1;
    if (PQgetisnull(res, 0, col) || PQgetisnull(res, 0, col + 1)) {
        l->stable = l->high = -1;
        return 0;
    }
    l->stable = parse_seq(PQgetvalue(res, 0, col));
    l->high = parse_seq(PQgetvalue(res, 0, col + 1));
    return l->stable >= 0 && l->high >= l->stable ? 0 : -1;
}

/* Broadcasts a page of events, in seq order. Returns 0 or -1 (a row that
 * does not parse: the fetch fails and is retried). */
static int broadcast_rows(struct listener *l, PGresult *res)
{
    if (read_bounds(l, res, 8) < 0)
        return -1;
    int rows = PQntuples(res), events = 0;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 0))
            continue; /* the bounds-only row */
        struct stream_event ev;
        ev.seq = parse_seq(PQgetvalue(res, i, 0));
        if (ev.seq <= l->delivered || (l->stable >= 0 && ev.seq > l->stable))
            return -1; /* outside (delivered, stable]: not our function */
        ev.type = PQgetvalue(res, i, 1);
        ev.at = PQgetvalue(res, i, 2);
        ev.payment = PQgetvalue(res, i, 3);
        ev.payment_len = (size_t) PQgetlength(res, i, 3);
        ev.status = PQgetvalue(res, i, 4);
        ev.currency = PQgetvalue(res, i, 5);
        ev.payer = PQgetvalue(res, i, 6);
        ev.payee = PQgetvalue(res, i, 7);
        ev.actor = PQgetisnull(res, i, 10) ? NULL : PQgetvalue(res, i, 10);
        ev.refund = PQgetisnull(res, i, 11) ? NULL : PQgetvalue(res, i, 11);
        stream_broadcast(l->srv, &ev);
        l->delivered = ev.seq;
        events++;
    }
    l->page_full = events == l->page;
    if (events > 0)
        webhook_wake(l->srv->webhooks, l->stable); /* new events: deliver them now */
    return 0;
}

/* One result of the current query. A failure is remembered and acted on
 * when the query completes. */
static void handle_result(struct listener *l, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    bool ok = false;
    if (l->query_failed)
        return; /* the rest of a failed query */
    switch (l->query) {
    case Q_LISTEN:
        ok = st == PGRES_COMMAND_OK;
        break;
    case Q_STABLE:
        ok = st == PGRES_TUPLES_OK && PQntuples(res) == 1 && read_bounds(l, res, 0) == 0;
        break;
    case Q_EVENTS:
        ok = st == PGRES_TUPLES_OK && broadcast_rows(l, res) == 0;
        break;
    case Q_PAUSED:
    case Q_NONE:
        break;
    }
    if (!ok) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        l->query_failed = true;
        snprintf(l->query_state, sizeof l->query_state, "%s", state ? state : "");
    }
}

/* A query failed on a connection that still works (the schema is not
 * migrated yet, say): not ready, and the tick retries soon. */
static void fetch_failed(struct listener *l)
{
    char msg[256];
    pq_error(l->conn, msg, sizeof msg);
    /* On a fresh database the listener usually asks before the pool has
     * migrated it: expected, so not a warning. */
    bool schema_missing =
        strcmp(l->query_state, "42883") == 0 || strcmp(l->query_state, "42P01") == 0;
    if (!l->fetch_failed && schema_missing && db_pool_migrating(l->srv->pool))
        log_msg(&l->srv->log, LOG_INFO, "listener: waiting for the migrations; retrying");
    else if (!l->fetch_failed)
        log_msg(&l->srv->log, LOG_WARN, "listener: fetch failed (%s): %s; retrying",
                l->query_state[0] ? l->query_state : "no sqlstate", msg);
    l->fetch_failed = true;
    if (l->srv->listener_up)
        log_msg(&l->srv->log, LOG_WARN, "listener down: not ready");
    l->srv->listener_up = false;
    l->query = Q_NONE;
    l->again = false;
    lws_sul_schedule(l->srv->context, 0, &l->sul_tick, tick_cb, LISTENER_RETRY_FETCH_US);
}

/* The current query has returned all its results: take the next step. */
static void query_complete(struct listener *l)
{
    if (l->query_failed) {
        if (l->query == Q_LISTEN)
            lost(l, "LISTEN failed");
        else
            fetch_failed(l);
        return;
    }
    if (l->query == Q_LISTEN) {
        l->query = Q_NONE;
        l->listening = true;
        /* Catch up from `delivered`, or learn the head the first time. */
        start_fetch(l);
        return;
    }
    if (l->query != Q_STABLE && l->query != Q_EVENTS)
        return;
    l->fetch_failed = false;
    if (l->stable < 0) {
        /* A writer that does not announce ran long: just ask again. */
        l->again = true;
        fetch_finished(l);
        return;
    }
    if (l->high > l->stable) /* a lower seq is still committing */
        lws_sul_schedule(l->srv->context, 0, &l->sul_inflight, inflight_cb, LISTENER_INFLIGHT_US);
    if (l->query == Q_STABLE) {
        /* First contact: subscribers with after=null start here. */
        l->delivered = l->stable;
        set_up(l);
        stream_head_known(l->srv);
        fetch_finished(l);
        return;
    }
    set_up(l);
    if (l->page_full) {
        /* More to read: let the subscribers' writable callbacks run
         * first, then the next page from the new `delivered`. */
        l->query = Q_PAUSED;
        lws_sul_schedule(l->srv->context, 0, &l->sul_page, next_page_cb, 1);
        return;
    }
    /* Every seq up to the bound is now delivered or will never exist
     * (rolled back): the cursor may pass the gaps. */
    if (l->stable > l->delivered)
        l->delivered = l->stable;
    fetch_finished(l);
}

/* Reads what the server sent: query results and notifications. Returns
 * 0, or -1 when the connection is gone (already handled by lost()). */
static int service(struct listener *l)
{
    if (!l->conn)
        return -1;
    if (!PQconsumeInput(l->conn)) {
        lost(l, "read failed");
        return -1;
    }
    while (l->conn && l->query != Q_NONE && l->query != Q_PAUSED && !PQisBusy(l->conn)) {
        PGresult *res = PQgetResult(l->conn);
        if (!res) {
            query_complete(l);
            continue;
        }
        handle_result(l, res);
        PQclear(res);
    }
    if (!l->conn)
        return -1;
    bool woken = false;
    PGnotify *n;
    while ((n = PQnotifies(l->conn)) != NULL) {
        woken = true;
        PQfreemem(n);
    }
    if (PQstatus(l->conn) != CONNECTION_OK) {
        lost(l, "connection closed");
        return -1;
    }
    if (woken)
        start_fetch(l);
    return 0;
}

/* ---- timers, lws glue --------------------------------------------------- */

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct listener *l = lws_container_of(sul, struct listener, sul_tick);
    if (l->stopped)
        return;
    if (l->conn && l->query != Q_NONE &&
        now_us() - l->query_started_us > LISTENER_QUERY_DEADLINE_US)
        lost(l, "query timed out");
    else
        start_fetch(l);
    lws_sul_schedule(l->srv->context, 0, &l->sul_tick, tick_cb,
                     l->fetch_failed ? LISTENER_RETRY_FETCH_US : LISTENER_TICK_US);
}

int listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    (void) user;
    (void) in;
    (void) len;
    struct server *srv = lws_context_user(lws_get_context(wsi));
    struct listener *l = srv ? srv->listener : NULL;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Maybe the connect helper finished. */
        if (l)
            connect_finished(l);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!l || wsi != l->wsi)
            return -1; /* a socket we already gave up */
        return service(l) < 0 ? -1 : 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!l || wsi != l->wsi)
            return -1;
        switch (PQflush(l->conn)) {
        case 0:
            return 0;
        case 1: /* still more to write */
            lws_callback_on_writable(wsi);
            return 0;
        default:
            lost(l, "write failed");
            return -1;
        }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws closed our socket (hang-up, or the context is going). */
        if (l && wsi == l->wsi) {
            l->wsi = NULL;
            if (!l->stopped)
                lost(l, "socket closed");
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1; /* not a WebSocket subprotocol anyone may ask for */
    default:
        break;
    }
    return 0;
}

int listener_start(struct server *srv)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->srv = srv;
    l->delivered = -1;
    l->page = srv->cfg.ws_queue_max / 4;
    if (l->page > LISTENER_PAGE_MAX)
        l->page = LISTENER_PAGE_MAX;
    if (l->page < 1)
        l->page = 1;
    pgloop_init(&l->connector, srv->context, "paytrackr-listener");
    srv->listener = l;
    srv->listener_up = false;
    start_connect(l);
    lws_sul_schedule(srv->context, 0, &l->sul_tick, tick_cb, LISTENER_TICK_US);
    return 0;
}

void listener_stop(struct server *srv)
{
    struct listener *l = srv->listener;
    if (!l)
        return;
    l->stopped = true;
    lws_sul_cancel(&l->sul_tick);
    lws_sul_cancel(&l->sul_reconnect);
    lws_sul_cancel(&l->sul_page);
    lws_sul_cancel(&l->sul_inflight);
    pgloop_finish(&l->connector);
    if (l->wsi)
        pgloop_release(l->wsi);
    PQfinish(l->conn);
    srv->listener = NULL;
    srv->listener_up = false;
    free(l);
}

int64_t listener_head(const struct server *srv)
{
    return srv->listener ? srv->listener->delivered : -1;
}
