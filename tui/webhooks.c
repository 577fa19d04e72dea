/*
 * webhooks.c - the `W` view: webhook endpoints with their state and lag.
 *
 * Owns: the list loaded by GET /v1/webhook_endpoints (at most
 * WH_VIEW_MAX rows, copied out of the answer) and drawing it in an
 * overlay. `r` reloads, j/k scroll, Esc, q or W close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ncursesw/curses.h>

#include "tui.h"

#define WH_VIEW_MAX 200
#define KEY_ESC     27

struct wh_row {
    bool enabled;
    long long pending;
    bool pending_capped; /* more events follow than the server counted */
    long long delivered;
    char url[160];
    char reason[120];
};

/* The view's state: one view per TUI process. */
static struct {
    struct wh_row rows[WH_VIEW_MAX];
    int n;
    int total;
    int scroll;
    bool loading;
    char err[TUI_ERROR_MAX];
    uint64_t tag;
} wv;

static void reload(void)
{
    wv.loading = true;
    wv.err[0] = '\0';
    wv.tag = ++tui.next_tag;
    if (http_request("GET", "/v1/webhook_endpoints", REQ_WEBHOOKS, wv.tag) != 0) {
        wv.loading = false;
        snprintf(wv.err, sizeof wv.err, "cannot send the request");
    }
}

void webhooks_open(void)
{
    tui.mode = MODE_WEBHOOKS;
    wv.scroll = 0;
    reload();
}

static void copy_text(char *dst, size_t cap, const cJSON *item)
{
    snprintf(dst, cap, "%s", cJSON_IsString(item) ? item->valuestring : "");
}

static long long number(const cJSON *item)
{
    return cJSON_IsNumber(item) ? (long long) item->valuedouble : 0;
}

void webhooks_on_result(uint64_t tag, int status, const cJSON *body)
{
    if (tag != wv.tag)
        return; /* an older reload */
    wv.loading = false;
    const cJSON *data = body ? cJSON_GetObjectItemCaseSensitive(body, "data") : NULL;
    if (status != 200 || !cJSON_IsArray(data)) {
        app_error_text(body, status, wv.err, sizeof wv.err);
        return;
    }
    wv.n = 0;
    wv.total = cJSON_GetArraySize(data);
    const cJSON *ep;
    cJSON_ArrayForEach(ep, data)
    {
        if (wv.n == WH_VIEW_MAX)
            break;
        struct wh_row *r = &wv.rows[wv.n++];
        r->enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ep, "enabled"));
        r->pending = number(cJSON_GetObjectItemCaseSensitive(ep, "pending"));
        r->pending_capped = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ep, "pending_capped"));
        r->delivered = number(cJSON_GetObjectItemCaseSensitive(ep, "delivered_seq"));
        copy_text(r->url, sizeof r->url, cJSON_GetObjectItemCaseSensitive(ep, "url"));
        copy_text(r->reason, sizeof r->reason,
                  cJSON_GetObjectItemCaseSensitive(ep, "disabled_reason"));
    }
    if (wv.scroll >= wv.n)
        wv.scroll = wv.n > 0 ? wv.n - 1 : 0;
}

void webhooks_keys(int is_key, unsigned int ch)
{
    if ((!is_key && (ch == KEY_ESC || ch == 'q' || ch == 'W'))) {
        tui.mode = MODE_TABLE;
    } else if (!is_key && ch == 'r') {
        reload();
    } else if ((is_key && ch == KEY_DOWN) || (!is_key && ch == 'j')) {
        if (wv.scroll + 1 < wv.n)
            wv.scroll++;
    } else if ((is_key && ch == KEY_UP) || (!is_key && ch == 'k')) {
        if (wv.scroll > 0)
            wv.scroll--;
    }
}

void webhooks_draw(void)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    int h = rows - 4, w = cols - 4;
    if (h < 6 || w < 40)
        return;
    WINDOW *win = newwin(h, w, 2, 2);
    if (!win)
        return;
    werase(win);
    box(win, 0, 0);
    wattrset(win, A_BOLD);
    mvwprintw(win, 0, 2, " Webhook endpoints (%d) ", wv.total);
    mvwprintw(win, 1, 2, "%-8s %9s %12s  %s", "STATE", "LAG", "DELIVERED", "URL / WHY DISABLED");
    wattrset(win, A_NORMAL);
    int y = 2;
    if (wv.loading && wv.n == 0)
        mvwaddstr(win, y, 2, "loading...");
    else if (wv.err[0])
        mvwaddnstr(win, y++, 2, wv.err, w - 4);
    else if (wv.n == 0)
        mvwaddstr(win, y, 2, "no webhook endpoints");
    for (int i = wv.scroll; i < wv.n && y < h - 2; i++) {
        const struct wh_row *r = &wv.rows[i];
        wattrset(win, r->enabled ? A_NORMAL : A_BOLD);
        char pending[24];
        snprintf(pending, sizeof pending, "%lld%s", r->pending, r->pending_capped ? "+" : "");
        mvwprintw(win, y, 2, "%-8s %9s %12lld  ", r->enabled ? "LIVE" : "DISABLED", pending,
                  r->delivered);
        waddnstr(win, r->url, w - 38 > 0 ? w - 38 : 0);
        y++;
        if (!r->enabled && r->reason[0] && y < h - 2) {
            wattrset(win, A_DIM);
            mvwaddnstr(win, y++, 35, r->reason, w - 38 > 0 ? w - 38 : 0);
        }
    }
    wattrset(win, A_DIM);
    mvwaddstr(win, h - 2, 2, "LAG = events waiting.  r reload  j/k scroll  Esc close");
    wattrset(win, A_NORMAL);
    wnoutrefresh(win);
    delwin(win);
}
