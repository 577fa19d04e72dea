/*
 * main.c - paytrackr-tui: the loop, the terminal, and the application's
 * answers to what the connection reports.
 *
 * One thread, one lws client context. stdin is adopted into the lws loop
 * as a raw file descriptor, so keys, the WebSocket, HTTP requests and the
 * timers share one poll() and nothing blocks. The screen is redrawn when
 * something changed (at most every DRAW_MIN_MS) and on a timer for the
 * clock, the highlight fade and the sparkline. SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT set a flag and wake the loop; the terminal is restored on every
 * way out (atexit guard too).
 */
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>

#include <libwebsockets.h>

#include "currency.h"
#include "money.h"
#include "pjson.h"
#include "tui.h"

#define TICK_MS     250
#define DRAW_MIN_MS 16
#define MESSAGE_MS  6000

struct tui tui;

static struct lws_context *context;
static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_winch;
static bool curses_up;
static lws_sorted_usec_list_t sul_tick, sul_draw;
static int64_t last_draw;
static struct timespec start_ts;
static FILE *log_file;

/* ---- terminal ---------------------------------------------------------- */

static void restore_terminal(void)
{
    if (curses_up && !isendwin()) {
        curs_set(1);
        endwin();
    }
    curses_up = false;
}

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        got_winch = 1;
    else
        got_signal = sig;
    if (context != NULL)
        lws_cancel_service(context);
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void handle_resize(void)
{
    struct winsize ws;

    got_winch = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resize_term(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
    app_dirty();
}

/* ---- stdin as a raw file descriptor ------------------------------------ */

static void read_keys(void)
{
    wint_t wc;
    int rc;

    while ((rc = wget_wch(stdscr, &wc)) != ERR) {
        if (rc == KEY_CODE_YES && wc == KEY_RESIZE) {
            app_dirty();
            continue;
        }
        keys_handle(rc == KEY_CODE_YES, (unsigned int) wc);
        if (tui.quit)
            break;
    }
}

static int stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    (void) wsi;
    (void) user;
    (void) in;
    (void) len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        read_keys();
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* the terminal went away */
        app_quit();
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols stdin_protocol = {
    "pt-stdin", stdin_callback, 0, 0, 0, NULL, 0,
};

/* ---- timers ------------------------------------------------------------ */

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    static int64_t last_second;
    int64_t now = util_mono_ms(), sec = util_wall_ms() / 1000;
    struct model *m = &tui.model;

    (void) sul;
    if (sec != last_second || conn_state() == CONN_OFFLINE) {
        last_second = sec;
        app_dirty();
    }
    for (size_t i = m->top; i < m->n && i < m->top + (size_t) m->page_h; i++) {
        if (m->rows[i]->hl_until + TICK_MS > now) {
            app_dirty();
            break;
        }
    }
    if (tui.message_until != 0 && tui.message_until + TICK_MS > now)
        app_dirty();
    lws_sul_schedule(context, 0, &sul_tick, tick_cb, TICK_MS * LWS_US_PER_MS);
}

static void draw_cb(lws_sorted_usec_list_t *sul)
{
    (void) sul; /* only wakes the loop; it draws */
}

/* ---- application callbacks --------------------------------------------- */

void app_dirty(void)
{
    tui.dirty = true;
}

void app_quit(void)
{
    tui.quit = true;
    if (context != NULL)
        lws_cancel_service(context);
}

void app_message(bool is_error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tui.message, sizeof tui.message, fmt, ap);
    va_end(ap);
    tui.message_is_error = is_error;
    tui.message_until = util_mono_ms() + MESSAGE_MS;
    if (is_error)
        snprintf(tui.last_error, sizeof tui.last_error, "%s", tui.message);
    app_dirty();
}

void app_error_text(const cJSON *body, int status, char *buf, size_t cap)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");

    if (status == 0) {
        snprintf(buf, cap, "the connection dropped before the answer");
        return;
    }
    if (cJSON_IsString(msg) && cJSON_IsString(code))
        snprintf(buf, cap, "%s (%d %s)", msg->valuestring, status, code->valuestring);
    else
        snprintf(buf, cap, "the server answered %d", status);
}

void app_on_state(enum conn_state s, const char *why)
{
    if (s == CONN_OFFLINE && why != NULL)
        snprintf(tui.last_error, sizeof tui.last_error, "%s", why);
    app_dirty();
}

int64_t app_resume_after(void)
{
    return tui.model.last_seq;
}

static void become_read_only(void)
{
    if (!tui.read_only_seen) {
        tui.read_only = true;
        tui.read_only_seen = true;
    }
}

/* Sends the harmless probe that tells a viewer's token from an
 * operator's: an update of a payment that cannot exist. A viewer gets 403
 * forbidden, an operator 404 (or 412); nothing changes either way. */
static void probe_role(void)
{
    static bool probed;
    cJSON *msg;

    if (probed || tui.read_only)
        return;
    msg = cJSON_CreateObject();
    if (msg == NULL)
        return;
    cJSON_AddStringToObject(msg, "id", "00000000-0000-4000-8000-000000000000");
    cJSON_AddItemToObject(msg, "if_version", pt_json_int64(1));
    cJSON_AddObjectToObject(msg, "changes");
    if (conn_request("update", msg, REQ_PROBE, 0) == 0)
        probed = true;
}

/* Asks the server who the token acts as (GET /v1/me, v1.1), once; a v1
 * server does not know, and then the probe tells. */
static void ask_me(void)
{
    static bool asked;

    if (asked)
        return;
    asked = http_request("GET", "/v1/me", REQ_ME, 0) == 0;
    if (!asked)
        probe_role();
}

static void on_me_result(int status, const cJSON *body)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "name"));
    const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "role"));

    if (status != 200 || name == NULL || role == NULL) {
        probe_role();
        return;
    }
    snprintf(tui.me, sizeof tui.me, "%.64s (%.10s)", name, role);
    if (strcmp(role, "operator") != 0 && !tui.read_only) {
        become_read_only();
        app_message(false, "read-only: this token is a viewer's; n, s, R and d are disabled");
    }
}

void app_on_subscribed(int64_t head)
{
    struct model *m = &tui.model;

    if (m->last_seq < 0 && head >= 0)
        m->last_seq = head;
    if (!m->loaded && !m->busy_reload)
        model_reload(m, false);
    else
        model_maybe_fetch(m);
    model_meter_start(m);
    totals_refresh(false);
    ask_me();
    app_dirty();
}

/* "by alice" for an event's or a refund's actor (its role too when it is
 * not the operator every writer is); "by -" for the events written
 * before v1.1 (actor null). */
static void actor_text(const cJSON *obj, char *buf, size_t cap)
{
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(obj, "actor");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(actor, "name"));
    const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(actor, "role"));

    if (name == NULL)
        snprintf(buf, cap, "by -");
    else if (role != NULL && strcmp(role, "operator") == 0)
        snprintf(buf, cap, "by %.64s", name);
    else
        snprintf(buf, cap, "by %.64s (%.10s)", name, role ? role : "?");
}

/* Minor units of `currency` as grouped major-unit text. */
static void money_text(int64_t minor, const char *currency, char *buf, size_t cap)
{
    const pt_currency *c = pt_currency_find(currency ? currency : "");

    if (pt_money_format(minor, c ? c->exponent : 0, 1, buf, cap) < 0)
        snprintf(buf, cap, "?");
}

/* Appends a line to a pane list of at most 10,000; NULL when full. */
static struct audit_line *add_line(struct pane_list *l)
{
    struct audit_line *nl;

    if (l->n >= 10000)
        return NULL;
    nl = realloc(l->lines, (size_t) (l->n + 1) * sizeof *nl);
    if (nl == NULL)
        return NULL;
    l->lines = nl;
    memset(&nl[l->n], 0, sizeof nl[l->n]);
    nl[l->n].status = -1;
    return &nl[l->n++];
}

static void pane_clear(struct pane_list *l)
{
    free(l->lines);
    l->lines = NULL;
    l->n = 0;
    l->err[0] = '\0';
}

void app_pane_load(struct pane_list *l, const char *path, enum req_kind kind, const char *what)
{
    pane_clear(l);
    l->loading = true;
    l->tag = ++tui.next_tag;
    if (http_request("GET", path, kind, l->tag) != 0) {
        l->loading = false;
        snprintf(l->err, sizeof l->err, "cannot request %s", what);
    }
}

/* The answer for a pane list: its "data" array to add from, or NULL (a
 * stale answer, or an error now shown in the pane). */
static const cJSON *pane_answer(struct pane_list *l, uint64_t tag, int status, const cJSON *body)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");

    if (tag != l->tag)
        return NULL;
    l->loading = false;
    pane_clear(l);
    if (status != 200 || !cJSON_IsArray(data)) {
        app_error_text(body, status, l->err, sizeof l->err);
        return NULL;
    }
    return data;
}

/* Adds the event of the payment shown in the detail pane to its trail. */
static void audit_add(const cJSON *ev, const char *type_member)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, type_member);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(ev, "at");
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(ev, "payment");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(pj, "status");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(pj, "version");
    const cJSON *refund = cJSON_GetObjectItemCaseSensitive(ev, "refund");
    struct audit_line *nl = add_line(&tui.audit);
    int64_t seq = 0, version = 0, ms, amount;
    pt_status s;
    char when[40] = "", by[100], what[80] = "";

    if (nl == NULL)
        return;
    pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(ev, "seq"), &seq);
    pt_json_get_int64(ver, &version);
    if (cJSON_IsString(at) && util_parse_time(at->valuestring, &ms) == 0)
        util_display_time(ms, true, when, sizeof when);
    actor_text(ev, by, sizeof by);
    if (pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(refund, "amount"), &amount)) {
        char money[48];

        money_text(amount, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pj, "currency")),
                   money, sizeof money);
        snprintf(what, sizeof what, "  refund %s", money);
    }
    snprintf(nl->text, sizeof nl->text, "#%lld  %s  %s  v%lld  %s  %s%s", (long long) seq, when,
             cJSON_IsString(type) ? type->valuestring : "?", (long long) version,
             cJSON_IsString(st) ? st->valuestring : "", by, what);
    nl->status = cJSON_IsString(st) && pt_status_parse(st->valuestring, &s) ? (int) s : -1;
}

/* Adds a refund to the detail pane's list. */
static void refund_add(const cJSON *rf)
{
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rf, "created_at"));
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rf, "reason"));
    const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rf, "note"));
    const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rf, "currency"));
    struct audit_line *nl;
    int64_t amount = 0, ms;
    char when[40] = "", by[100], money[48];

    if (!pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(rf, "amount"), &amount))
        return;
    nl = add_line(&tui.refunds);
    if (nl == NULL)
        return;
    if (at != NULL && util_parse_time(at, &ms) == 0)
        util_display_time(ms, true, when, sizeof when);
    actor_text(rf, by, sizeof by);
    money_text(amount, cur, money, sizeof money);
    snprintf(nl->text, sizeof nl->text, "%s  %s %.3s  %.24s  %s%s%.80s", when, money,
             cur ? cur : "", reason ? reason : "?", by, note ? "  note: " : "", note ? note : "");
    nl->status = PT_STATUS_REFUNDED;
}

void app_on_event(const cJSON *msg)
{
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(msg, "payment");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(pj, "id");
    int64_t seq = -1;

    pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(msg, "seq"), &seq);
    if (tui.mode == MODE_DETAIL && cJSON_IsString(id) &&
        strcmp(id->valuestring, tui.target_id) == 0 && seq > tui.model.last_seq) {
        const cJSON *rf = cJSON_GetObjectItemCaseSensitive(msg, "refund");

        if (!tui.audit.loading)
            audit_add(msg, "event");
        if (!tui.refunds.loading && cJSON_IsObject(rf))
            refund_add(rf);
    }
    if (seq < 0 || seq > tui.model.last_seq)
        totals_on_event();
    model_on_event(&tui.model, msg);
}

void app_on_server_error(const char *code, const char *message)
{
    app_message(true, "server: %s%s%s", code, message[0] ? ": " : "", message);
}

static void on_create_result(uint64_t tag, int status, const cJSON *body)
{
    struct form *fm = &tui.form;
    bool was_open = tui.mode == MODE_FORM && fm->busy && fm->tag == tag;
    pt_payment p;
    char text[TUI_ERROR_MAX];

    if (was_open)
        fm->busy = false;
    if ((status == 201 || status == 200) && pt_payment_from_json(body, &p) == 0) {
        model_apply_payment(&tui.model, &p, true);
        snprintf(tui.last_currency, sizeof tui.last_currency, "%s", p.currency);
        app_message(false, "recorded: %s -> %s", p.payer, p.payee);
        pt_payment_clear(&p);
        if (was_open)
            tui.mode = MODE_TABLE;
        return;
    }
    if (status == 403)
        become_read_only();
    app_error_text(body, status, text, sizeof text);
    if (!was_open) {
        app_message(true, "the payment was not recorded: %s", text);
        return;
    }
    if (status == 0) {
        snprintf(fm->banner, sizeof fm->banner,
                 "connection lost: Enter retries safely (same idempotency key)");
        return;
    }
    {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
        const cJSON *field = cJSON_GetObjectItemCaseSensitive(err, "field");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");

        if (cJSON_IsString(field)) {
            for (int i = 0; i < FF_COUNT; i++) {
                char lower[32];

                snprintf(lower, sizeof lower, "%s", form_label(i));
                lower[0] = (char) (lower[0] | 0x20);
                if (strcmp(lower, field->valuestring) == 0) {
                    snprintf(fm->err[i], sizeof fm->err[i], "%s",
                             cJSON_IsString(msg) ? msg->valuestring : text);
                    fm->cur = i;
                }
            }
        }
    }
    snprintf(fm->banner, sizeof fm->banner, "not recorded: %.180s", text);
    util_copy(tui.last_error, sizeof tui.last_error, fm->banner);
}

static void on_update_result(int status, const cJSON *body)
{
    pt_payment p;
    char text[TUI_ERROR_MAX];

    if (status == 200 && pt_payment_from_json(body, &p) == 0) {
        model_apply_payment(&tui.model, &p, true);
        app_message(false, "status is now %s", pt_status_name(p.status));
        pt_payment_clear(&p);
        return;
    }
    if (status == 403)
        become_read_only();
    app_error_text(body, status, text, sizeof text);
    if (status == 412)
        app_message(true, "not changed: someone changed the payment first; look again and retry");
    else
        app_message(true, "status not changed: %s", text);
}

static void on_refund_result(uint64_t tag, int status, const cJSON *body)
{
    struct refund_dlg *d = &tui.refund;
    bool was_open = tui.mode == MODE_REFUND && d->busy && d->tag == tag;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "field"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
    char text[TUI_ERROR_MAX];

    if (was_open)
        d->busy = false;
    if (status == 201 || status == 200) {
        char money[48];
        int64_t amount = 0;

        pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(body, "amount"), &amount);
        money_text(amount, d->currency, money, sizeof money);
        app_message(false, "refunded %s %s of %s's payment", money, d->currency, d->who);
        if (was_open)
            tui.mode = d->from_detail ? MODE_DETAIL : MODE_TABLE;
        return;
    }
    if (status == 403)
        become_read_only();
    app_error_text(body, status, text, sizeof text);
    if (!was_open) {
        app_message(true, "the refund was not recorded: %s", text);
        return;
    }
    if (status == 0)
        snprintf(d->banner, sizeof d->banner,
                 "connection lost: Enter retries safely (same idempotency key)");
    else if (status == 412)
        snprintf(d->banner, sizeof d->banner,
                 "someone changed the payment first: Esc, look again and retry");
    else
        snprintf(d->banner, sizeof d->banner, "not refunded: %.180s", text);
    if (field != NULL && msg != NULL &&
        (strcmp(field, "amount") == 0 || strcmp(field, "note") == 0)) {
        int f = field[0] == 'a' ? RF_AMOUNT : RF_NOTE;

        util_copy(d->err[f], sizeof d->err[f], msg);
        d->cur = f;
    }
    util_copy(tui.last_error, sizeof tui.last_error, d->banner);
}

static void on_refunds_result(uint64_t tag, int status, const cJSON *body)
{
    const cJSON *data = pane_answer(&tui.refunds, tag, status, body), *rf;

    cJSON_ArrayForEach(rf, data)
    {
        refund_add(rf);
    }
}

static void on_audit_result(uint64_t tag, int status, const cJSON *body)
{
    const cJSON *data = pane_answer(&tui.audit, tag, status, body), *ev;

    cJSON_ArrayForEach(ev, data)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");

        audit_add(ev, cJSON_IsString(type) ? "type" : "event");
    }
}

void app_on_result(enum req_kind kind, uint64_t tag, int status, const cJSON *body)
{
    switch (kind) {
    case REQ_LIST_RELOAD:
    case REQ_LIST_DOWN:
    case REQ_LIST_UP:
    case REQ_METER:
        model_on_list(&tui.model, kind, tag, status, body);
        break;
    case REQ_CREATE:
        on_create_result(tag, status, body);
        break;
    case REQ_UPDATE:
        on_update_result(status, body);
        break;
    case REQ_ME:
        on_me_result(status, body);
        break;
    case REQ_PROBE:
        if (status == 403) {
            become_read_only();
            app_message(false, "read-only: this token is a viewer's; n, s, R and d are disabled");
        }
        break;
    case REQ_DELETE:
        if (status == 204 || status == 200 || status == 404) {
            model_remove_id(&tui.model, tui.target_id);
            app_message(false, status == 404 ? "already deleted" : "deleted");
        } else {
            char text[TUI_ERROR_MAX];

            if (status == 403)
                become_read_only();
            app_error_text(body, status, text, sizeof text);
            app_message(true, "not deleted: %s", text);
        }
        break;
    case REQ_AUDIT:
        on_audit_result(tag, status, body);
        break;
    case REQ_REFUND:
        on_refund_result(tag, status, body);
        break;
    case REQ_REFUNDS:
        on_refunds_result(tag, status, body);
        break;
    case REQ_STATS:
        totals_on_result(tag, status, body);
        break;
    case REQ_EXPORT:
        export_on_result(&tui.export, tag, status, body);
        break;
    case REQ_WEBHOOKS:
        webhooks_on_result(tag, status, body);
        break;
    }
    app_dirty();
}

void app_first_rows_drawn(void)
{
    const char *path;
    struct timespec now;
    double ms;
    FILE *f;

    if (tui.timing_written)
        return;
    tui.timing_written = true;
    path = getenv("PAYTRACKR_TUI_TIMING_FILE");
    if (path == NULL || path[0] == '\0')
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double) (now.tv_sec - start_ts.tv_sec) * 1000.0 +
         (double) (now.tv_nsec - start_ts.tv_nsec) / 1e6;
    f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "%.1f\n", ms);
    fclose(f);
}

/* ---- lws logging -------------------------------------------------------- */

static void log_emit(int level, const char *line)
{
    (void) level;
    if (log_file != NULL) {
        fputs(line, log_file);
        fflush(log_file);
    }
}

static void setup_logging(void)
{
    const char *path = getenv("PAYTRACKR_TUI_LOG");

    if (path != NULL && path[0] != '\0')
        log_file = fopen(path, "a");
    /* lws must never write to the terminal we draw on */
    lws_set_log_level(log_file ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : 0, log_emit);
}

/* ---- main --------------------------------------------------------------- */

static struct lws_protocols protocols[4];

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    lws_sock_file_fd_type fd;
    char *cause = NULL;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &start_ts);
    setlocale(LC_ALL, "");
    rc = args_parse(argc, argv, &tui.args, &cause);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, TUI_PROGRAM ": %s\n", cause ? cause : "bad arguments");
        free(cause);
        args_free(&tui.args);
        return rc < 0 ? 2 : 0;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, TUI_PROGRAM ": needs a terminal on stdin and stdout\n");
        args_free(&tui.args);
        return 2;
    }
    tui.read_only = tui.args.read_only;
    snprintf(tui.last_currency, sizeof tui.last_currency, "EUR");
    model_init(&tui.model);
    setup_logging();
    srand((unsigned) (util_wall_ms() ^ getpid()));

    protocols[0] = conn_protocol;
    protocols[1] = http_protocol;
    protocols[2] = stdin_protocol;
    memset(&protocols[3], 0, sizeof protocols[3]);
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = tui.args.ca_file;
    info.gid = -1;
    info.uid = -1;
    context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, TUI_PROGRAM ": cannot start the network layer%s\n",
                tui.args.ca_file ? " (is --ca-file a readable PEM file?)" : "");
        model_free(&tui.model);
        args_free(&tui.args);
        return 1;
    }
    install_signals();
    atexit(restore_terminal);
    if (initscr() == NULL) {
        fprintf(stderr, TUI_PROGRAM ": cannot initialise the terminal\n");
        lws_context_destroy(context);
        return 1;
    }
    curses_up = true;
    install_signals(); /* ours, not the ones initscr installed */
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    view_init();

    conn_init(context, &tui.args);
    http_init(context, &tui.args);
    totals_init(context);
    tui.export.fd = -1;
    memset(&fd, 0, sizeof fd);
    fd.filefd = STDIN_FILENO;
    if (lws_adopt_descriptor_vhost(lws_get_vhost_by_name(context, "default"),
                                   LWS_ADOPT_RAW_FILE_DESC, fd, stdin_protocol.name,
                                   NULL) == NULL) {
        restore_terminal();
        fprintf(stderr, TUI_PROGRAM ": cannot watch the keyboard\n");
        lws_context_destroy(context);
        return 1;
    }
    conn_start();
    lws_sul_schedule(context, 0, &sul_tick, tick_cb, TICK_MS * LWS_US_PER_MS);
    tui.dirty = true;

    while (!tui.quit && !got_signal) {
        if (got_winch)
            handle_resize();
        if (tui.dirty) {
            int64_t now = util_mono_ms();

            if (now - last_draw >= DRAW_MIN_MS) {
                tui.dirty = false;
                last_draw = now;
                view_draw();
            } else {
                lws_sul_schedule(context, 0, &sul_draw, draw_cb,
                                 (lws_usec_t) (DRAW_MIN_MS - (now - last_draw)) * LWS_US_PER_MS);
            }
        }
        if (lws_service(context, 0) < 0)
            break;
    }

    restore_terminal();
    lws_sul_cancel(&sul_tick);
    lws_sul_cancel(&sul_draw);
    totals_shutdown();
    conn_shutdown();
    {
        struct lws_context *c = context;

        context = NULL; /* callbacks during destruction must not wake it */
        lws_context_destroy(c);
    }
    export_shutdown(&tui.export);
    model_free(&tui.model);
    pane_clear(&tui.audit);
    pane_clear(&tui.refunds);
    args_free(&tui.args);
    if (log_file != NULL)
        fclose(log_file);
    if (got_signal != 0 && got_signal != SIGINT && got_signal != SIGTERM)
        return 128 + got_signal;
    return 0;
}
