/*
 * keys.c - what each key does, mode by mode (the contract's "TUI keys").
 *
 * Table: j/k or arrows move, PgUp/PgDn page, g/G top/bottom, Enter opens
 * the detail pane, / filters, o toggles the order, < and > pick the sort
 * column, n opens the form, s changes status, d deletes after y, R
 * refunds, e exports the filter to a CSV file, p pauses, r reloads, ?
 * helps, q quits. Write keys in read-only mode say why they do nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>

#include "currency.h"
#include "pjson.h"
#include "tui.h"

#define KEY_ESC      27
#define KEY_TAB      9
#define KEY_ENTER_LF 10
#define KEY_ENTER_CR 13

static bool is_enter(int is_key, unsigned ch)
{
    return (is_key && ch == KEY_ENTER) || (!is_key && (ch == KEY_ENTER_LF || ch == KEY_ENTER_CR));
}

static bool is_esc(int is_key, unsigned ch)
{
    return !is_key && ch == KEY_ESC;
}

/* True (and says why) when writing is not possible now. */
static bool refuse_write(const char *what)
{
    if (tui.read_only) {
        app_message(true, "read-only: %s is not allowed with %s", what,
                    tui.read_only_seen ? "this viewer token (the server answered 403)"
                                       : "--read-only");
        return true;
    }
    if (conn_state() != CONN_LIVE) {
        app_message(true, "%s needs the server: %s", what, conn_state_name(conn_state()));
        return true;
    }
    return false;
}

/* ---- filter ------------------------------------------------------------ */

static void filter_open(void)
{
    const struct filter *f = &tui.model.filter;
    char buf[256];
    size_t off = 0;

    buf[0] = '\0';
    if (f->text[0])
        off += (size_t) snprintf(buf + off, sizeof buf - off, "%s", f->text);
    if (f->status >= 0 && off < sizeof buf)
        off += (size_t) snprintf(buf + off, sizeof buf - off, "%sstatus:%s", off ? " " : "",
                                 pt_status_name((pt_status) f->status));
    if (f->currency[0] && off < sizeof buf)
        snprintf(buf + off, sizeof buf - off, "%scurrency:%s", off ? " " : "", f->currency);
    line_set(&tui.filter_line, buf, false);
    tui.filter_err[0] = '\0';
    tui.mode = MODE_FILTER;
}

/* Parses "text words status:NAME currency:CODE" into *f; 0 or -1 with
 * tui.filter_err set. */
static int filter_parse(const char *text, struct filter *f)
{
    char buf[FORM_TEXT_MAX], *save = NULL, *tok;
    size_t off = 0;

    memset(f, 0, sizeof *f);
    f->status = -1;
    snprintf(buf, sizeof buf, "%s", text);
    for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (strncmp(tok, "status:", 7) == 0 || strncmp(tok, "s:", 2) == 0) {
            const char *v = strchr(tok, ':') + 1;
            pt_status s;

            if (!pt_status_parse(v, &s)) {
                snprintf(tui.filter_err, sizeof tui.filter_err,
                         "unknown status %.40s (pending, settled, failed, cancelled, refunded)", v);
                return -1;
            }
            f->status = (int) s;
        } else if (strncmp(tok, "currency:", 9) == 0 || strncmp(tok, "c:", 2) == 0) {
            char code[8];
            const char *v = strchr(tok, ':') + 1;

            snprintf(code, sizeof code, "%s", v);
            for (char *p = code; *p; p++)
                *p = (char) toupper((unsigned char) *p);
            if (strlen(v) != 3 || pt_currency_find(code) == NULL) {
                snprintf(tui.filter_err, sizeof tui.filter_err, "unknown currency %.20s", v);
                return -1;
            }
            memcpy(f->currency, code, 4);
        } else {
            size_t n = strlen(tok);

            if (off + n + 2 >= sizeof f->text) {
                snprintf(tui.filter_err, sizeof tui.filter_err, "the text is too long");
                return -1;
            }
            if (off)
                f->text[off++] = ' ';
            memcpy(f->text + off, tok, n + 1);
            off += n;
        }
    }
    return 0;
}

static void keys_filter(int is_key, unsigned ch)
{
    struct filter f;

    if (is_esc(is_key, ch)) {
        tui.mode = MODE_TABLE;
        return;
    }
    if (is_enter(is_key, ch)) {
        if (filter_parse(tui.filter_line.buf, &f) != 0)
            return;
        tui.mode = MODE_TABLE;
        model_set_filter(&tui.model, &f);
        totals_refresh(true);
        return;
    }
    if (line_key(&tui.filter_line, is_key, ch))
        tui.filter_err[0] = '\0';
}

/* ---- form -------------------------------------------------------------- */

/* Sends a dialog's message `msg` (consumed; NULL when it could not be
 * built); false with `banner` (TUI_ERROR_MAX bytes) saying why it did not
 * go. */
static bool send_dialog(const char *what, const char *type, cJSON *msg, enum req_kind kind,
                        uint64_t *tag, char *banner)
{
    if (refuse_write(what)) {
        util_copy(banner, TUI_ERROR_MAX, tui.message);
        cJSON_Delete(msg);
        return false;
    }
    if (msg == NULL) {
        snprintf(banner, TUI_ERROR_MAX, "cannot build the request");
        return false;
    }
    *tag = ++tui.next_tag;
    if (conn_request(type, msg, kind, *tag) != 0) {
        snprintf(banner, TUI_ERROR_MAX, "cannot send: the connection is not ready");
        return false;
    }
    return true;
}

static void form_submit(void)
{
    struct form *fm = &tui.form;
    int bad;

    if (fm->busy)
        return;
    fm->banner[0] = '\0';
    bad = form_check_all(fm);
    if (bad >= 0) {
        fm->cur = bad;
        return;
    }
    fm->busy = send_dialog("recording a payment", "create", form_build(fm), REQ_CREATE, &fm->tag,
                           fm->banner);
}

static void keys_form(int is_key, unsigned ch)
{
    struct form *fm = &tui.form;
    int prev = fm->cur;

    if (is_esc(is_key, ch)) {
        tui.mode = MODE_TABLE;
        if (fm->busy)
            app_message(false, "the form was closed; the payment may still be recorded");
        return;
    }
    if (fm->busy)
        return;
    if (is_enter(is_key, ch)) {
        form_submit();
        return;
    }
    if ((!is_key && ch == KEY_TAB) || (is_key && ch == KEY_DOWN)) {
        fm->cur = (fm->cur + 1) % FF_COUNT;
    } else if (is_key && (ch == KEY_BTAB || ch == KEY_UP)) {
        fm->cur = (fm->cur + FF_COUNT - 1) % FF_COUNT;
    } else if (line_key(&fm->f[fm->cur], is_key, ch)) {
        fm->banner[0] = '\0';
        if (fm->touched[fm->cur] || fm->err[fm->cur][0])
            form_check(fm, fm->cur);
        /* the amount's rules depend on the currency */
        if (fm->cur == FF_CURRENCY && fm->touched[FF_AMOUNT])
            form_check(fm, FF_AMOUNT);
        return;
    } else {
        return;
    }
    /* left a field: judge it */
    fm->touched[prev] = true;
    form_check(fm, prev);
    if (prev == FF_CURRENCY && fm->touched[FF_AMOUNT])
        form_check(fm, FF_AMOUNT);
}

/* ---- status picker ----------------------------------------------------- */

static void status_open(void)
{
    struct row *r = model_selected(&tui.model);

    if (r == NULL)
        return;
    if (refuse_write("changing status"))
        return;
    tui.status_n = pt_status_next(r->p.status, tui.status_choices);
    if (tui.status_n == 0) {
        app_message(true, "%s is final: no status change is allowed", pt_status_name(r->p.status));
        return;
    }
    tui.status_cur = 0;
    snprintf(tui.target_id, sizeof tui.target_id, "%s", r->p.id);
    tui.target_version = r->p.version;
    tui.mode = MODE_STATUS;
}

static void status_apply(pt_status to)
{
    cJSON *msg = cJSON_CreateObject(), *changes;

    tui.mode = MODE_TABLE;
    if (msg == NULL)
        return;
    cJSON_AddStringToObject(msg, "id", tui.target_id);
    cJSON_AddItemToObject(msg, "if_version", pt_json_int64(tui.target_version));
    changes = cJSON_AddObjectToObject(msg, "changes");
    cJSON_AddStringToObject(changes, "status", pt_status_name(to));
    if (conn_request("update", msg, REQ_UPDATE, ++tui.next_tag) != 0)
        app_message(true, "cannot send the status change: not connected");
    else
        app_message(false, "changing status to %s...", pt_status_name(to));
}

static void keys_status(int is_key, unsigned ch)
{
    if (is_esc(is_key, ch) || (!is_key && ch == 'q')) {
        tui.mode = MODE_TABLE;
        return;
    }
    if ((is_key && ch == KEY_DOWN) || (!is_key && ch == 'j')) {
        if (tui.status_cur + 1 < tui.status_n)
            tui.status_cur++;
        return;
    }
    if ((is_key && ch == KEY_UP) || (!is_key && ch == 'k')) {
        if (tui.status_cur > 0)
            tui.status_cur--;
        return;
    }
    if (is_enter(is_key, ch)) {
        status_apply(tui.status_choices[tui.status_cur]);
        return;
    }
    if (!is_key) {
        for (int i = 0; i < tui.status_n; i++) {
            if ((unsigned) pt_status_name(tui.status_choices[i])[0] == ch) {
                status_apply(tui.status_choices[i]);
                return;
            }
        }
    }
}

/* ---- delete ------------------------------------------------------------ */

static void delete_open(void)
{
    struct row *r = model_selected(&tui.model);

    if (r == NULL)
        return;
    if (refuse_write("deleting"))
        return;
    snprintf(tui.target_id, sizeof tui.target_id, "%s", r->p.id);
    tui.mode = MODE_CONFIRM_DELETE;
}

static void keys_delete(int is_key, unsigned ch)
{
    char path[128];
    struct row *r = model_selected(&tui.model);

    tui.mode = MODE_TABLE;
    if (is_key || (ch != 'y' && ch != 'Y')) {
        app_message(false, "not deleted");
        return;
    }
    if (r == NULL || strcmp(r->p.id, tui.target_id) != 0) {
        app_message(true, "not deleted: the selection changed");
        return;
    }
    snprintf(path, sizeof path, "/v1/payments/%s", tui.target_id);
    if (http_request("DELETE", path, REQ_DELETE, ++tui.next_tag) != 0)
        app_message(true, "cannot start the delete request");
    else
        app_message(false, "deleting...");
}

/* ---- refund ------------------------------------------------------------ */

/* The loaded row of payment `id`, or NULL. */
static struct row *row_by_id(const char *id)
{
    struct model *m = &tui.model;

    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->rows[i]->p.id, id) == 0)
            return m->rows[i];
    return NULL;
}

static void refund_start(struct row *r, bool from_detail)
{
    char why[TUI_ERROR_MAX];

    if (r == NULL)
        return;
    if (refuse_write("refunding"))
        return;
    if (refund_open(&tui.refund, &r->p, why, sizeof why) != 0) {
        app_message(true, "%s", why);
        return;
    }
    tui.refund.from_detail = from_detail;
    tui.mode = MODE_REFUND;
}

static void refund_submit(void)
{
    struct refund_dlg *d = &tui.refund;
    int bad;

    if (d->busy)
        return;
    d->banner[0] = '\0';
    bad = refund_check_all(d);
    if (bad >= 0) {
        d->cur = bad;
        return;
    }
    d->busy = send_dialog("refunding", "refund", refund_build(d), REQ_REFUND, &d->tag, d->banner);
}

static void keys_refund(int is_key, unsigned ch)
{
    struct refund_dlg *d = &tui.refund;

    if (is_esc(is_key, ch)) {
        tui.mode = d->from_detail ? MODE_DETAIL : MODE_TABLE;
        if (d->busy)
            app_message(false, "the dialog was closed; the refund may still be recorded");
        return;
    }
    if (d->busy)
        return;
    if (is_enter(is_key, ch)) {
        refund_submit();
        return;
    }
    if ((!is_key && ch == KEY_TAB) || (is_key && ch == KEY_DOWN)) {
        d->cur = (d->cur + 1) % RF_COUNT;
        return;
    }
    if (is_key && (ch == KEY_BTAB || ch == KEY_UP)) {
        d->cur = (d->cur + RF_COUNT - 1) % RF_COUNT;
        return;
    }
    if (d->cur == RF_REASON) {
        int step = (is_key && ch == KEY_LEFT)                 ? -1
                   : (is_key && ch == KEY_RIGHT) || ch == ' ' ? 1
                                                              : 0;

        if ((step != 0 || !is_key) && refund_reason_key(d, ch, step))
            d->banner[0] = '\0';
        return;
    }
    /* amount and note are judged on every key, not only on leaving */
    if (line_key(&d->f[d->cur], is_key, ch)) {
        d->banner[0] = '\0';
        refund_check(d, d->cur);
    }
}

/* ---- export ------------------------------------------------------------ */

static void export_begin(void)
{
    if (!tui.export.running)
        export_open(&tui.export);
    tui.mode = MODE_EXPORT;
}

static void keys_export(int is_key, unsigned ch)
{
    struct export_job *x = &tui.export;
    if (is_esc(is_key, ch)) {
        tui.mode = MODE_TABLE;
        return;
    }
    if (x->running) {
        if (!is_key && ch == 'x') {
            export_cancel(x);
            tui.mode = MODE_TABLE;
        }
        return;
    }
    if (is_enter(is_key, ch)) {
        const struct totals *t = totals_get();
        char query[1024];

        if (model_filter_query(&tui.model, true, query, sizeof query) != 0) {
            snprintf(x->err, sizeof x->err, "the filter is too long");
            return;
        }
        if (export_start(x, query, t->known ? t->count : -1) == 0)
            tui.mode = MODE_TABLE;
        return;
    }
    if (line_key(&x->path, is_key, ch)) {
        x->err[0] = '\0';
        x->confirm_replace = false;
    }
}

/* ---- detail pane ------------------------------------------------------- */

static void detail_open(void)
{
    struct row *r = model_selected(&tui.model);
    char path[128];

    if (r == NULL)
        return;
    snprintf(tui.target_id, sizeof tui.target_id, "%s", r->p.id);
    tui.detail_scroll = 0;
    tui.mode = MODE_DETAIL;
    snprintf(path, sizeof path, "/v1/payments/%s/events", r->p.id);
    app_pane_load(&tui.audit, path, REQ_AUDIT, "the audit trail");
    snprintf(path, sizeof path, "/v1/payments/%s/refunds", r->p.id);
    app_pane_load(&tui.refunds, path, REQ_REFUNDS, "the refunds");
}

static void keys_detail(int is_key, unsigned ch)
{
    if (is_esc(is_key, ch) || is_enter(is_key, ch) || (!is_key && ch == 'q')) {
        tui.mode = MODE_TABLE;
        return;
    }
    if ((is_key && ch == KEY_DOWN) || (!is_key && ch == 'j'))
        tui.detail_scroll++;
    else if (((is_key && ch == KEY_UP) || (!is_key && ch == 'k')) && tui.detail_scroll > 0)
        tui.detail_scroll--;
    else if (!is_key && ch == 's')
        status_open();
    else if (!is_key && ch == 'd')
        delete_open();
    else if (!is_key && ch == 'R')
        refund_start(row_by_id(tui.target_id), true);
}

/* ---- table ------------------------------------------------------------- */

static void keys_table(int is_key, unsigned ch)
{
    struct model *m = &tui.model;
    long page = m->page_h > 1 ? m->page_h - 1 : 1;

    if (is_key) {
        switch (ch) {
        case KEY_DOWN:
            model_move(m, 1);
            break;
        case KEY_UP:
            model_move(m, -1);
            break;
        case KEY_NPAGE:
            model_move(m, page);
            break;
        case KEY_PPAGE:
            model_move(m, -page);
            break;
        case KEY_HOME:
            model_home(m);
            break;
        case KEY_END:
            model_end(m);
            break;
        case KEY_ENTER:
            detail_open();
            break;
        default:
            break;
        }
        return;
    }
    switch (ch) {
    case 'j':
        model_move(m, 1);
        break;
    case 'k':
        model_move(m, -1);
        break;
    case 6: /* ^F */
    case ' ':
        model_move(m, page);
        break;
    case 2: /* ^B */
        model_move(m, -page);
        break;
    case 'g':
        model_home(m);
        break;
    case 'G':
        model_end(m);
        break;
    case KEY_ENTER_LF:
    case KEY_ENTER_CR:
        detail_open();
        break;
    case '/':
        filter_open();
        break;
    case 'o':
        model_set_sort(m, m->sort, !m->desc);
        app_message(false, "order: %s %s", model_sort_name(m->sort),
                    m->desc ? "descending" : "ascending");
        break;
    case '<':
    case '>': {
        enum sort_col c =
            (enum sort_col)(((int) m->sort + (ch == '>' ? 1 : SORT_COUNT - 1)) % SORT_COUNT);

        /* htop's habit: names ascending, time and amounts largest first */
        model_set_sort(m, c, c == SORT_TIME || c == SORT_AMOUNT);
        if (c == SORT_TIME)
            app_message(false, "sorted by time (server order)");
        else
            app_message(false, "sorted by %s: the first %d matching payments, sorted here",
                        model_sort_name(c), MODEL_LOCAL_MAX);
        break;
    }
    case 'n':
        if (refuse_write("recording a payment"))
            break;
        form_open(&tui.form, tui.last_currency);
        tui.mode = MODE_FORM;
        break;
    case 's':
        status_open();
        break;
    case 'd':
        delete_open();
        break;
    case 'R':
        refund_start(model_selected(m), false);
        break;
    case 'e':
        export_begin();
        break;
    case 'p':
        model_toggle_pause(m);
        if (m->paused)
            app_message(false, "paused: changes are counted and applied when you press p again");
        break;
    case 'r':
        model_reload(m, false);
        totals_refresh(false);
        break;
    case '?':
        tui.mode = MODE_HELP;
        break;
    case 'W':
        webhooks_open();
        break;
    case 'q':
        app_quit();
        break;
    case 12: /* ^L */
        clearok(curscr, TRUE);
        break;
    case KEY_ESC:
        tui.message[0] = '\0';
        break;
    default:
        break;
    }
}

void keys_handle(int is_key, unsigned int ch)
{
    int rows, cols;

    getmaxyx(stdscr, rows, cols);
    if (is_key && ch == KEY_RESIZE)
        return;
    if (cols < TUI_MIN_COLS || rows < TUI_MIN_LINES) {
        /* too small to show anything: only quitting makes sense */
        if (!is_key && ch == 'q')
            app_quit();
        return;
    }
    switch (tui.mode) {
    case MODE_TABLE:
        keys_table(is_key, ch);
        break;
    case MODE_FILTER:
        keys_filter(is_key, ch);
        break;
    case MODE_FORM:
        keys_form(is_key, ch);
        break;
    case MODE_STATUS:
        keys_status(is_key, ch);
        break;
    case MODE_CONFIRM_DELETE:
        keys_delete(is_key, ch);
        break;
    case MODE_DETAIL:
        keys_detail(is_key, ch);
        break;
    case MODE_HELP:
        tui.mode = MODE_TABLE;
        break;
    case MODE_REFUND:
        keys_refund(is_key, ch);
        break;
    case MODE_EXPORT:
        keys_export(is_key, ch);
        break;
    case MODE_WEBHOOKS:
        webhooks_keys(is_key, ch);
        break;
    }
    app_dirty();
}
