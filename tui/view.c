/*
 * view.c - drawing the dashboard with ncursesw.
 *
 * The screen, top to bottom: a title line (filter, sort, clock), the
 * totals per currency of every payment matching the filter (the server's
 * figures, totals.c; the loaded rows' only while those are unknown), a
 * meter line in the manner of htop (payments per minute over the last
 * hour as a sparkline, the share of each status), the column header, the
 * rows, a message line (or an export's progress) and the status bar
 * (server, LIVE/CONNECTING/OFFLINE, the exact count of matching payments,
 * last error). Overlays (detail pane, form, refund and export dialogs,
 * status picker, help) are drawn on top. Text is measured in terminal columns, code point by code point, so
 * wide characters line up; colours fall back to attributes on monochrome
 * terminals.
 */
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>

#include "currency.h"
#include "money.h"
#include "tui.h"
#include "utf8.h"

enum {
    CP_TITLE = 1,
    CP_BAR,
    CP_PENDING,
    CP_SETTLED,
    CP_FAILED,
    CP_CANCELLED,
    CP_REFUNDED,
    CP_NEW,
    CP_CHANGED,
    CP_ERROR,
    CP_LIVE,
    CP_CONNECTING,
    CP_OFFLINE,
    CP_DIM,
    CP_SPARK,
    CP_BOX,
};

static bool unicode;

bool view_unicode(void)
{
    return unicode;
}

void view_init(void)
{
    const char *cs = nl_langinfo(CODESET);

    unicode = cs != NULL && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
    tui.have_colors = has_colors();
    if (!tui.have_colors)
        return;
    start_color();
    use_default_colors();
    init_pair(CP_TITLE, COLOR_BLACK, COLOR_CYAN);
    init_pair(CP_BAR, COLOR_BLACK, COLOR_WHITE);
    init_pair(CP_PENDING, COLOR_YELLOW, -1);
    init_pair(CP_SETTLED, COLOR_GREEN, -1);
    init_pair(CP_FAILED, COLOR_RED, -1);
    init_pair(CP_CANCELLED, COLOR_MAGENTA, -1);
    init_pair(CP_REFUNDED, COLOR_CYAN, -1);
    init_pair(CP_NEW, COLOR_BLACK, COLOR_GREEN);
    init_pair(CP_CHANGED, COLOR_BLACK, COLOR_YELLOW);
    init_pair(CP_ERROR, COLOR_RED, -1);
    init_pair(CP_LIVE, COLOR_BLACK, COLOR_GREEN);
    init_pair(CP_CONNECTING, COLOR_BLACK, COLOR_YELLOW);
    init_pair(CP_OFFLINE, COLOR_WHITE, COLOR_RED);
    init_pair(CP_DIM, COLOR_BLUE, -1);
    init_pair(CP_SPARK, COLOR_GREEN, -1);
    init_pair(CP_BOX, COLOR_CYAN, -1);
}

/* A colour pair when the terminal has colours, else `mono`. */
static attr_t attr(int pair, attr_t with_color, attr_t mono)
{
    if (tui.have_colors)
        return (attr_t) COLOR_PAIR(pair) | with_color;
    return mono;
}

static attr_t status_attr(pt_status s)
{
    switch (s) {
    case PT_STATUS_PENDING:
        return attr(CP_PENDING, A_BOLD, A_BOLD);
    case PT_STATUS_SETTLED:
        return attr(CP_SETTLED, 0, A_NORMAL);
    case PT_STATUS_FAILED:
        return attr(CP_FAILED, A_BOLD, A_BOLD | A_UNDERLINE);
    case PT_STATUS_CANCELLED:
        return attr(CP_CANCELLED, 0, A_DIM);
    case PT_STATUS_REFUNDED:
        return attr(CP_REFUNDED, 0, A_UNDERLINE);
    default:
        return A_NORMAL;
    }
}

/* Writes `s` at the cursor within `width` columns: wide characters count
 * two, control characters show as '?', text that does not fit ends in an
 * ellipsis. `align` < 0 left, > 0 right. Pads with spaces. Returns the
 * columns used (== width). */
static int put_text(WINDOW *w, const char *s, int width, int align)
{
    const char *ell = unicode ? "\xe2\x80\xa6" : "~";
    size_t len = s ? strlen(s) : 0;
    int total = 0, used = 0, pad;
    size_t i = 0, cut = len;
    bool trunc = false;

    if (width <= 0)
        return 0;
    /* Measure, finding where the text must be cut. */
    while (i < len) {
        uint32_t cp;
        size_t n = pt_utf8_decode(s + i, len - i, &cp);
        int cw;

        if (n == 0) {
            n = 1;
            cw = 1;
        } else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            cw = 1;
        } else if (!unicode && cp >= 0x80) {
            cw = 1;
        } else {
            cw = wcwidth((wchar_t) cp);
            if (cw < 0)
                cw = 1;
        }
        if (total + cw > width) {
            trunc = true;
            break;
        }
        total += cw;
        i += n;
    }
    if (trunc) {
        /* Cut again leaving a column for the ellipsis. */
        int acc = 0;

        i = 0;
        cut = 0;
        while (i < len) {
            uint32_t cp;
            size_t n = pt_utf8_decode(s + i, len - i, &cp);
            int cw = 1;

            if (n == 0)
                n = 1;
            else if (unicode && cp >= 0xa0) {
                cw = wcwidth((wchar_t) cp);
                if (cw < 0)
                    cw = 1;
            }
            if (acc + cw > width - 1)
                break;
            acc += cw;
            i += n;
        }
        cut = i;
        total = acc + 1;
    }
    pad = width - total;
    if (align > 0)
        for (int k = 0; k < pad; k++)
            waddch(w, ' ');
    i = 0;
    while (i < cut) {
        uint32_t cp;
        size_t n = pt_utf8_decode(s + i, cut - i, &cp);

        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (!unicode && cp >= 0x80)) {
            waddch(w, '?');
            i += n ? n : 1;
            continue;
        }
        if (unicode && cp >= 0xa0 && wcwidth((wchar_t) cp) < 0) {
            waddch(w, '?');
        } else {
            waddnstr(w, s + i, (int) n);
        }
        i += n;
    }
    if (trunc)
        waddstr(w, ell);
    used = total;
    if (align <= 0)
        for (int k = 0; k < pad; k++)
            waddch(w, ' ');
    return used + (pad > 0 ? pad : 0);
}

/* Fills the rest of line y from column x with the current attributes. */
static void fill_line(int y, int x, int cols)
{
    move(y, x);
    for (int i = x; i < cols; i++)
        addch(' ');
}

/* Minor units of `currency` as major-unit text, grouped when it fits in
 * `width` columns (0: any width). */
static void format_minor(int64_t minor, const char *currency, char *buf, size_t cap, int width)
{
    const pt_currency *c = pt_currency_find(currency);
    int exp = c ? c->exponent : 0;

    if (pt_money_format(minor, exp, 1, buf, cap) < 0 || (width > 0 && (int) strlen(buf) > width))
        pt_money_format(minor, exp, 0, buf, cap);
}

static void format_amount(const pt_payment *p, char *buf, size_t cap, int width)
{
    format_minor(p->amount, p->currency, buf, cap, width);
}

/* "12,345" */
static void format_count(size_t n, char *buf, size_t cap)
{
    pt_money_format((int64_t) n, 0, 1, buf, cap);
}

/* ---- column layout ----------------------------------------------------- */

struct layout {
    int time_w, payer_w, payee_w, amount_w, cur_w, status_w, refunded_w, ref_w;
};

static void layout_for(int cols, struct layout *l)
{
    int flex;

    l->time_w = cols >= 140 ? 19 : 14;
    l->amount_w = cols >= 140 ? 18 : cols >= 100 ? 15 : 13;
    l->cur_w = 3;
    l->status_w = 9;
    /* narrower terminals show a refund in the reference column instead */
    l->refunded_w = cols >= 140 ? 14 : cols >= 100 ? 12 : 0;
    flex = cols - (1 + l->time_w + l->amount_w + l->cur_w + l->status_w + 6 +
                   (l->refunded_w ? l->refunded_w + 1 : 0));
    if (flex < 9)
        flex = 9;
    l->payer_w = flex * 3 / 8;
    l->payee_w = flex * 3 / 8;
    l->ref_w = flex - l->payer_w - l->payee_w;
}

static void draw_header_row(int y, int cols, const struct layout *l)
{
    struct model *m = &tui.model;
    const char *arrow =
        m->desc ? (unicode ? "\xe2\x86\x93" : "v") : (unicode ? "\xe2\x86\x91" : "^");
    char name[32];

    attrset(A_BOLD | A_UNDERLINE);
    move(y, 0);
    addch(' ');
#define COL(label, col, w, al)                                 \
    do {                                                       \
        if (m->sort == (col)) {                                \
            snprintf(name, sizeof name, "%s%s", label, arrow); \
            put_text(stdscr, name, (w), (al));                 \
        } else {                                               \
            put_text(stdscr, label, (w), (al));                \
        }                                                      \
        addch(' ');                                            \
    } while (0)
    COL("TIME", SORT_TIME, l->time_w, -1);
    COL("PAYER", SORT_PAYER, l->payer_w, -1);
    COL("PAYEE", SORT_PAYEE, l->payee_w, -1);
    COL("AMOUNT", SORT_AMOUNT, l->amount_w, 1);
    COL("CUR", SORT_CURRENCY, l->cur_w, -1);
    COL("STATUS", SORT_STATUS, l->status_w, -1);
#undef COL
    if (l->refunded_w > 0) {
        put_text(stdscr, "REFUNDED", l->refunded_w, 1);
        addch(' ');
    }
    if (m->sort == SORT_REFERENCE) {
        snprintf(name, sizeof name, "REFERENCE%s", arrow);
        put_text(stdscr, name, cols - getcurx(stdscr), -1);
    } else {
        put_text(stdscr, "REFERENCE", cols - getcurx(stdscr), -1);
    }
    attrset(A_NORMAL);
}

static void draw_row(int y, int cols, const struct layout *l, const struct row *r, bool selected,
                     int64_t now)
{
    char t[32], amount[40], refunded[40];
    attr_t base = A_NORMAL;
    bool hl = r->hl_until > now;

    if (hl) {
        bool fading = r->hl_until - now < 900;

        if (fading)
            base = A_BOLD;
        else
            base = r->hl_new ? attr(CP_NEW, A_BOLD, A_BOLD | A_STANDOUT)
                             : attr(CP_CHANGED, 0, A_BOLD | A_STANDOUT);
    }
    if (selected)
        base = A_REVERSE | (hl ? A_BOLD : 0);
    attrset(base);
    move(y, 0);
    addch(selected ? '>' : ' ');
    util_display_time(r->created_ms, l->time_w >= 19, t, sizeof t);
    put_text(stdscr, t, l->time_w, -1);
    addch(' ');
    put_text(stdscr, r->p.payer, l->payer_w, -1);
    addch(' ');
    put_text(stdscr, r->p.payee, l->payee_w, -1);
    addch(' ');
    format_amount(&r->p, amount, sizeof amount, l->amount_w);
    put_text(stdscr, amount, l->amount_w, 1);
    addch(' ');
    put_text(stdscr, r->p.currency, l->cur_w, -1);
    addch(' ');
    if (!selected && !(hl && base != A_BOLD))
        attrset(status_attr(r->p.status));
    put_text(stdscr, pt_status_name(r->p.status), l->status_w, -1);
    attrset(base);
    addch(' ');
    refunded[0] = '\0';
    if (r->p.amount_refunded != 0)
        format_minor(r->p.amount_refunded, r->p.currency, refunded, sizeof refunded, l->refunded_w);
    if (l->refunded_w > 0) {
        put_text(stdscr, refunded, l->refunded_w, 1);
        addch(' ');
        put_text(stdscr, r->p.reference ? r->p.reference : "", cols - getcurx(stdscr), -1);
    } else {
        char ref[400];

        /* "<-10.00 INV-1": what went back, before the reference */
        snprintf(ref, sizeof ref, "%s%s%s%.300s",
                 refunded[0] ? (unicode ? "\xe2\x86\xa9" : "-") : "", refunded,
                 refunded[0] ? " " : "", r->p.reference ? r->p.reference : "");
        put_text(stdscr, ref, cols - getcurx(stdscr), -1);
    }
    attrset(A_NORMAL);
}

/* ---- header lines ------------------------------------------------------ */

static void draw_title(int cols)
{
    struct model *m = &tui.model;
    char buf[512], clock[16];
    int64_t now = util_wall_ms();
    size_t off = 0;

    attrset(attr(CP_TITLE, A_BOLD, A_REVERSE | A_BOLD));
    fill_line(0, 0, cols);
    move(0, 0);
    off += (size_t) snprintf(buf + off, sizeof buf - off, " paytrackr ");
    if (m->filter.text[0] || m->filter.status >= 0 || m->filter.currency[0]) {
        off += (size_t) snprintf(buf + off, sizeof buf - off, " filter:");
        if (m->filter.text[0])
            off += (size_t) snprintf(buf + off, sizeof buf - off, " \"%s\"", m->filter.text);
        if (m->filter.status >= 0)
            off += (size_t) snprintf(buf + off, sizeof buf - off, " status:%s",
                                     pt_status_name((pt_status) m->filter.status));
        if (m->filter.currency[0] && off < sizeof buf)
            off +=
                (size_t) snprintf(buf + off, sizeof buf - off, " currency:%s", m->filter.currency);
    } else {
        off += (size_t) snprintf(buf + off, sizeof buf - off, " all payments");
    }
    if (off < sizeof buf)
        off += (size_t) snprintf(buf + off, sizeof buf - off, "  sort: %s %s",
                                 model_sort_name(m->sort), m->desc ? "desc" : "asc");
    if (off < sizeof buf && m->paused)
        off += (size_t) snprintf(buf + off, sizeof buf - off, "  PAUSED (%zu waiting)",
                                 m->pause_count);
    if (off < sizeof buf && tui.read_only)
        off += (size_t) snprintf(buf + off, sizeof buf - off, "  read-only");
    if (off < sizeof buf && tui.me[0])
        snprintf(buf + off, sizeof buf - off, "  as %s", tui.me);
    util_display_time(now, false, clock, sizeof clock);
    put_text(stdscr, buf, cols - 10, -1);
    put_text(stdscr, clock + 6, 10, 1);
    attrset(A_NORMAL);
}

struct total {
    char cur[4];
    int64_t sum;
    bool overflow;
    size_t count;
};

/* The header's totals while the server's are unknown (a v1 server, or
 * before the first answer): sums of the loaded rows, and says so. */
static void loaded_totals(char *buf, size_t cap)
{
    struct model *m = &tui.model;
    struct total tot[16];
    int nt = 0, more = 0;
    char amount[48];
    size_t off = 0;

    for (size_t i = 0; i < m->n; i++) {
        const pt_payment *p = &m->rows[i]->p;
        int k;

        for (k = 0; k < nt; k++)
            if (strcmp(tot[k].cur, p->currency) == 0)
                break;
        if (k == nt) {
            if (nt == (int) (sizeof tot / sizeof tot[0])) {
                more++;
                continue;
            }
            memset(&tot[nt], 0, sizeof tot[nt]);
            memcpy(tot[nt].cur, p->currency, sizeof tot[nt].cur);
            nt++;
        }
        if (__builtin_add_overflow(tot[k].sum, p->amount, &tot[k].sum))
            tot[k].overflow = true;
        tot[k].count++;
    }
    buf[0] = '\0';
    if (nt == 0)
        snprintf(buf, cap, "%s", m->loaded ? "none" : "");
    for (int k = 0; k < nt && off < cap; k++) {
        if (tot[k].overflow)
            snprintf(amount, sizeof amount, "overflow");
        else
            format_minor(tot[k].sum, tot[k].cur, amount, sizeof amount, 0);
        off += (size_t) snprintf(buf + off, cap - off, "%s%s %s (%zu)", k ? " | " : "", tot[k].cur,
                                 amount, tot[k].count);
    }
    if (more && off < cap)
        snprintf(buf + off, cap - off, " | +%d more", more);
}

/* "EUR 1,250.00 (12), refunded 25.00 | JPY ..." from the server's totals. */
static void filter_totals(const struct totals *t, char *buf, size_t cap)
{
    char amount[48], back[48];
    size_t off = 0;

    buf[0] = '\0';
    if (t->ncur == 0)
        snprintf(buf, cap, "none");
    for (int k = 0; k < t->ncur && off < cap; k++) {
        const struct totals_cur *c = &t->cur[k];

        format_minor(c->amount, c->cur, amount, sizeof amount, 0);
        format_minor(c->refunded, c->cur, back, sizeof back, 0);
        off += (size_t) snprintf(buf + off, cap - off, "%s%s %s (%lld)%s%s", k ? " | " : "", c->cur,
                                 c->overflow ? "overflow" : amount, (long long) c->count,
                                 c->refunded ? ", refunded " : "", c->refunded ? back : "");
    }
    if (t->more && off < cap)
        snprintf(buf + off, cap - off, " | +%d more", t->more);
}

static void draw_totals(int y, int cols)
{
    struct model *m = &tui.model;
    const struct totals *t = totals_get();
    char buf[1024];

    move(y, 0);
    attrset(A_BOLD);
    if (t->known) {
        addstr(" Totals ");
        attrset(A_NORMAL);
        filter_totals(t, buf, sizeof buf);
    } else {
        addstr(m->at_top && m->at_bottom ? " Totals " : " Totals (loaded rows) ");
        attrset(A_NORMAL);
        loaded_totals(buf, sizeof buf);
    }
    put_text(stdscr, buf, cols - getcurx(stdscr), -1);
}

static void draw_meter(int y, int cols)
{
    static const char *const blocks[] = {
        " ",
        "\xe2\x96\x81",
        "\xe2\x96\x82",
        "\xe2\x96\x83",
        "\xe2\x96\x84",
        "\xe2\x96\x85",
        "\xe2\x96\x86",
        "\xe2\x96\x87",
        "\xe2\x96\x88",
    };
    static const char ascii[] = " .:-=+*#%@";
    struct model *m = &tui.model;
    int buckets[MODEL_METER_MIN], spark_w, group, maxv = 0, last = 0;
    size_t share[PT_STATUS_COUNT] = {0};
    size_t total = 0;
    char buf[64];
    int bar_w, x;

    model_meter(m, buckets);
    spark_w = cols >= 140 ? 60 : (cols >= 100 ? 30 : 20);
    group = MODEL_METER_MIN / spark_w;
    move(y, 0);
    attrset(A_BOLD);
    addstr(" 1h ");
    attrset(attr(CP_SPARK, 0, A_NORMAL));
    addch('[');
    for (int k = 0; k < spark_w; k++) {
        int v = 0;

        for (int g = 0; g < group; g++)
            v += buckets[k * group + g];
        if (v > maxv)
            maxv = v;
    }
    for (int k = 0; k < spark_w; k++) {
        int v = 0, level;

        for (int g = 0; g < group; g++)
            v += buckets[k * group + g];
        level = maxv ? (v * 8 + maxv - 1) / maxv : 0;
        if (unicode)
            addstr(blocks[level]);
        else
            addch((chtype) ascii[level > 9 ? 9 : level]);
    }
    addch(']');
    attrset(A_NORMAL);
    last = buckets[MODEL_METER_MIN - 1];
    maxv = 0;
    for (int k = 0; k < MODEL_METER_MIN; k++)
        if (buckets[k] > maxv)
            maxv = buckets[k];
    snprintf(buf, sizeof buf, " %d/min, peak %d ", last, maxv);
    addstr(buf);
    if (totals_get()->known) {
        /* the shares of every matching payment, not only the loaded ones */
        for (int k = 0; k < PT_STATUS_COUNT; k++) {
            share[k] = (size_t) totals_get()->by_status[k];
            total += share[k];
        }
    } else {
        for (size_t i = 0; i < m->n; i++) {
            share[m->rows[i]->p.status]++;
            total++;
        }
    }
    x = getcurx(stdscr);
    bar_w = cols - x - 2 - (cols >= 120 ? 52 : 18);
    if (bar_w < 10 || total == 0)
        return;
    addch('[');
    for (int s = 0, drawn = 0; s < PT_STATUS_COUNT; s++) {
        int w = (int) ((size_t) share[s] * (size_t) bar_w / total);

        if (s == PT_STATUS_COUNT - 1)
            w = bar_w - drawn;
        if (tui.have_colors)
            attrset(status_attr((pt_status) s) | A_REVERSE);
        else
            attrset(A_NORMAL);
        for (int k = 0; k < w; k++)
            addch(tui.have_colors ? ' ' : (chtype) "PSFCR"[s]);
        drawn += w;
    }
    attrset(A_NORMAL);
    addch(']');
    for (int s = 0; s < PT_STATUS_COUNT; s++) {
        int pct = (int) ((size_t) share[s] * 100 / total);

        if (share[s] == 0)
            continue;
        if (cols >= 120)
            snprintf(buf, sizeof buf, " %s %d%%", pt_status_name((pt_status) s), pct);
        else
            snprintf(buf, sizeof buf, " %c%d%%", pt_status_name((pt_status) s)[0] - 32, pct);
        if (getcurx(stdscr) + (int) strlen(buf) >= cols)
            break;
        attrset(status_attr((pt_status) s));
        addstr(buf);
    }
    attrset(A_NORMAL);
}

/* ---- bottom lines ------------------------------------------------------ */

/* " exporting to PATH: 1,234 of 5,000 rows (24%), 2.1 MB ..." */
static void export_progress(char *buf, size_t cap)
{
    const struct export_job *x = &tui.export;
    char rows[32], total[32] = "", pct[16] = "";
    int64_t done = export_rows(x);

    format_count((size_t) done, rows, sizeof rows);
    if (x->expected > 0) {
        format_count((size_t) x->expected, total + 4, sizeof total - 4);
        memcpy(total, " of ", 4);
        if (done <= x->expected)
            snprintf(pct, sizeof pct, " (%lld%%)", (long long) (done * 100 / x->expected));
    }
    snprintf(buf, cap, " exporting to %s: %s%s rows%s, %lld.%lld MB  (e then x cancels)", x->final,
             rows, total, pct, (long long) (x->bytes / 1000000),
             (long long) (x->bytes / 100000 % 10));
}

static void draw_status_bar(int y, int cols)
{
    struct model *m = &tui.model;
    const struct totals *t = totals_get();
    enum conn_state s = conn_state();
    char buf[600], count[32];
    int pair = s == CONN_LIVE ? CP_LIVE : s == CONN_CONNECTING ? CP_CONNECTING : CP_OFFLINE;
    int64_t retry = conn_retry_in_ms();

    attrset(attr(CP_BAR, 0, A_REVERSE));
    fill_line(y, 0, cols);
    move(y, 0);
    snprintf(buf, sizeof buf, " %s ", tui.args.url);
    {
        int w = pt_utf8_width(buf);

        put_text(stdscr, buf, w < cols / 4 ? w : cols / 4, -1);
    }
    attrset(attr(pair, A_BOLD, A_BOLD));
    snprintf(buf, sizeof buf, " %s ", conn_state_name(s));
    addstr(buf);
    attrset(attr(CP_BAR, 0, A_REVERSE));
    if (t->known) {
        /* the server's exact count for the filter, whatever is loaded */
        format_count((size_t) t->count, count, sizeof count);
        snprintf(buf, sizeof buf, " %s payment%s", count, t->count == 1 ? "" : "s");
    } else if (!m->loaded) {
        snprintf(buf, sizeof buf, " no rows yet");
    } else {
        format_count(m->n, count, sizeof count);
        snprintf(buf, sizeof buf, " %s%s payment%s", count, (m->at_top && m->at_bottom) ? "" : "+",
                 m->n == 1 ? "" : "s");
    }
    if (m->n > 0 && m->at_top) {
        size_t off = strlen(buf);

        snprintf(buf + off, sizeof buf - off, " (row %zu)", m->sel + 1);
    }
    if (s == CONN_OFFLINE && retry >= 0) {
        size_t off = strlen(buf);

        snprintf(buf + off, sizeof buf - off, " | retry in %.1fs", (double) retry / 1000.0);
    }
    if (tui.last_error[0]) {
        size_t off = strlen(buf);

        snprintf(buf + off, sizeof buf - off, " | last error: %s", tui.last_error);
    }
    put_text(stdscr, buf, cols - getcurx(stdscr) - 7, -1);
    put_text(stdscr, "? help", 7, 1);
    attrset(A_NORMAL);
}

static void draw_message(int y, int cols)
{
    move(y, 0);
    if (tui.mode == MODE_FILTER) {
        attrset(A_BOLD);
        addstr(" / ");
        attrset(A_NORMAL);
        {
            int x = getcurx(stdscr), w = cols - x - 1;
            const struct line *l = &tui.filter_line;
            /* show the tail when the text is longer than the field */
            size_t start = 0;

            while (start < l->pos && pt_utf8_width(l->buf + start) > w - 1) {
                size_t n = pt_utf8_decode(l->buf + start, l->len - start, NULL);

                start += n ? n : 1;
            }
            put_text(stdscr, l->buf + start, w, -1);
            if (tui.filter_err[0]) {
                attrset(attr(CP_ERROR, A_BOLD, A_BOLD));
                move(y, cols / 2);
                put_text(stdscr, tui.filter_err, cols - cols / 2, -1);
                attrset(A_NORMAL);
            }
            {
                char before[FORM_TEXT_MAX];

                memcpy(before, l->buf + start, l->pos - start);
                before[l->pos - start] = '\0';
                move(y, x + pt_utf8_width(before));
            }
        }
        return;
    }
    if (tui.mode == MODE_CONFIRM_DELETE) {
        struct row *r = model_selected(&tui.model);
        char buf[600];

        attrset(attr(CP_ERROR, A_BOLD, A_BOLD | A_REVERSE));
        if (r != NULL) {
            char amount[48];

            format_amount(&r->p, amount, sizeof amount, 0);
            snprintf(buf, sizeof buf, " Delete %s -> %s %s %s? y deletes, any other key keeps it ",
                     r->p.payer, r->p.payee, amount, r->p.currency);
        } else {
            snprintf(buf, sizeof buf, " Delete? y deletes, any other key keeps it ");
        }
        put_text(stdscr, buf, cols, -1);
        attrset(A_NORMAL);
        return;
    }
    if (tui.message[0] && (tui.message_until == 0 || tui.message_until > util_mono_ms())) {
        attrset(tui.message_is_error ? attr(CP_ERROR, A_BOLD, A_BOLD) : A_BOLD);
        addch(' ');
        put_text(stdscr, tui.message, cols - 1, -1);
        attrset(A_NORMAL);
    } else {
        struct model *m = &tui.model;
        char hint[1400];

        if (tui.export.running) {
            export_progress(hint, sizeof hint);
            attrset(A_BOLD);
            put_text(stdscr, hint, cols, -1);
            attrset(A_NORMAL);
            return;
        }
        attrset(attr(CP_DIM, 0, A_DIM));
        if (m->above_new > 0)
            snprintf(hint, sizeof hint, " %d new above the loaded rows: g to go to the top",
                     m->above_new);
        else if (m->busy_reload || m->busy_down || m->busy_up)
            snprintf(hint, sizeof hint, " loading...");
        else
            snprintf(hint, sizeof hint, " %s",
                     tui.read_only ? "read-only: j/k move  Enter details  / filter  o order  "
                                     "< > sort column  e export  p pause  ? help  q quit"
                                   : "n new  s status  R refund  d delete  Enter details  / "
                                     "filter  e export  o order  p pause  ? help  q quit");
        put_text(stdscr, hint, cols, -1);
        attrset(A_NORMAL);
    }
}

/* ---- overlays ---------------------------------------------------------- */

static WINDOW *box_win(int h, int w, const char *title)
{
    int rows, cols;
    WINDOW *win;

    getmaxyx(stdscr, rows, cols);
    if (h > rows - 2)
        h = rows - 2;
    if (w > cols - 2)
        w = cols - 2;
    win = newwin(h, w, (rows - h) / 2, (cols - w) / 2);
    if (win == NULL)
        return NULL;
    werase(win);
    wattrset(win, attr(CP_BOX, 0, A_NORMAL));
    box(win, 0, 0);
    wattrset(win, A_BOLD);
    mvwaddstr(win, 0, 2, " ");
    waddstr(win, title);
    waddstr(win, " ");
    wattrset(win, A_NORMAL);
    return win;
}

static void help_line(WINDOW *w, int y, const char *keys, const char *what)
{
    wattrset(w, A_BOLD);
    wmove(w, y, 2);
    put_text(w, keys, 16, -1);
    wattrset(w, A_NORMAL);
    put_text(w, what, getmaxx(w) - 20, -1);
}

static void draw_help(void)
{
    static const char *const lines[][2] = {
        {"j/k, arrows", "move"},
        {"PgUp/PgDn", "page"},
        {"g / G", "top / bottom"},
        {"Enter", "details, refunds, audit trail with actors"},
        {"/", "filter: text status:NAME currency:CODE"},
        {"o", "toggle sort order"},
        {"< / >", "sort column left / right"},
        {"n", "new payment (Tab moves, Enter saves, Esc)"},
        {"s", "change status"},
        {"d", "delete (y confirms)"},
        {"R", "refund: amount (default what is left), reason"},
        {"e", "export the filter to a CSV file"},
        {"p", "pause / resume live updates"},
        {"r", "reload"},
        {"W", "webhook endpoints: state and lag"},
        {"?", "this help"},
        {"q", "quit"},
    };
    int n = (int) (sizeof lines / sizeof lines[0]);
    WINDOW *w = box_win(n + 5, 64, "Help: keys");

    if (w == NULL)
        return;
    for (int i = 0; i < n && i + 1 < getmaxy(w) - 3; i++)
        help_line(w, i + 1, lines[i][0], lines[i][1]);
    wattrset(w, A_DIM);
    mvwaddstr(w, getmaxy(w) - 2, 2, "Any key closes this help.");
    if (tui.read_only) {
        wattrset(w, attr(CP_ERROR, 0, A_BOLD));
        mvwaddstr(w, getmaxy(w) - 3, 2, "Read-only: n, s, R and d are not available.");
    }
    wattrset(w, A_NORMAL);
    wnoutrefresh(w);
    delwin(w);
}

/* Appends a labelled field line to the detail text. */
static void detail_field(WINDOW *w, int *y, int skip, const char *label, const char *value,
                         attr_t a)
{
    int width = getmaxx(w) - 4;

    if (*y - skip >= 1 && *y - skip < getmaxy(w) - 2) {
        wmove(w, *y - skip, 2);
        wattrset(w, A_BOLD);
        put_text(w, label, 13, -1);
        wattrset(w, a);
        put_text(w, value ? value : "-", width - 13, -1);
        wattrset(w, A_NORMAL);
    }
    (*y)++;
}

/* A titled list of the detail pane: loading, its error, or its lines. */
static void pane_list(WINDOW *w, int *y, int skip, const char *title, const struct pane_list *l,
                      const char *none)
{
    detail_field(w, y, skip, title, "", A_NORMAL);
    if (l->loading)
        detail_field(w, y, skip, "", "loading...", A_DIM);
    else if (l->err[0])
        detail_field(w, y, skip, "", l->err, attr(CP_ERROR, 0, A_BOLD));
    else if (l->n == 0)
        detail_field(w, y, skip, "", none, A_DIM);
    for (int i = 0; i < l->n; i++)
        detail_field(w, y, skip, "", l->lines[i].text,
                     l->lines[i].status >= 0 ? status_attr((pt_status) l->lines[i].status)
                                             : A_NORMAL);
}

static void draw_detail(void)
{
    struct model *m = &tui.model;
    struct row *r = NULL;
    int rows, cols, y = 1, skip = tui.detail_scroll;
    WINDOW *w;

    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->rows[i]->p.id, tui.target_id) == 0)
            r = m->rows[i];
    getmaxyx(stdscr, rows, cols);
    w = box_win(rows - 2, cols > 144 ? 140 : cols - 4, "Payment");
    if (w == NULL)
        return;
    if (r == NULL) {
        detail_field(w, &y, skip, "id", tui.target_id, A_NORMAL);
        detail_field(w, &y, skip, "",
                     "this payment is no longer in the view (deleted or "
                     "filtered out)",
                     A_BOLD);
    } else {
        const pt_payment *p = &r->p;
        char buf[512], amount[48];

        detail_field(w, &y, skip, "id", p->id, A_NORMAL);
        format_amount(p, amount, sizeof amount, 0);
        snprintf(buf, sizeof buf, "%s %s", amount, p->currency);
        detail_field(w, &y, skip, "amount", buf, A_BOLD);
        {
            char back[48], left[48];

            format_minor(p->amount_refunded, p->currency, back, sizeof back, 0);
            format_minor(p->amount - p->amount_refunded, p->currency, left, sizeof left, 0);
            snprintf(buf, sizeof buf, "%s %s (%s left)", back, p->currency, left);
            detail_field(w, &y, skip, "refunded", buf,
                         p->amount_refunded ? status_attr(PT_STATUS_REFUNDED) : A_NORMAL);
        }
        detail_field(w, &y, skip, "payer", p->payer, A_NORMAL);
        detail_field(w, &y, skip, "payee", p->payee, A_NORMAL);
        detail_field(w, &y, skip, "status", pt_status_name(p->status), status_attr(p->status));
        detail_field(w, &y, skip, "method", pt_method_name(p->method), A_NORMAL);
        detail_field(w, &y, skip, "reference", p->reference, A_NORMAL);
        if (p->description != NULL) {
            /* wrap long descriptions over several lines */
            size_t len = strlen(p->description), off = 0;
            int width = getmaxx(w) - 4 - 13;
            bool first = true;

            while (off < len) {
                size_t take = 0, i = off;
                int cw = 0;

                while (i < len) {
                    uint32_t cp;
                    size_t n = pt_utf8_decode(p->description + i, len - i, &cp);
                    int ww;

                    if (n == 0)
                        n = 1;
                    ww = (n > 1 && unicode) ? wcwidth((wchar_t) cp) : 1;
                    if (ww < 0)
                        ww = 1;
                    if (cw + ww > width)
                        break;
                    cw += ww;
                    i += n;
                }
                take = i - off;
                if (take == 0)
                    break;
                snprintf(buf, sizeof buf, "%.*s",
                         (int) (take < sizeof buf - 1 ? take : sizeof buf - 1),
                         p->description + off);
                detail_field(w, &y, skip, first ? "description" : "", buf, A_NORMAL);
                first = false;
                off += take;
            }
        } else {
            detail_field(w, &y, skip, "description", NULL, A_NORMAL);
        }
        for (int i = 0; i < p->metadata_count; i++) {
            snprintf(buf, sizeof buf, "%s = %s", p->metadata[i].key, p->metadata[i].value);
            detail_field(w, &y, skip, i == 0 ? "metadata" : "", buf, A_NORMAL);
        }
        snprintf(buf, sizeof buf, "%lld", (long long) p->version);
        detail_field(w, &y, skip, "version", buf, A_NORMAL);
        detail_field(w, &y, skip, "created_at", p->created_at, A_NORMAL);
        detail_field(w, &y, skip, "updated_at", p->updated_at, A_NORMAL);
    }
    y++;
    pane_list(w, &y, skip, "Refunds", &tui.refunds, "no refunds");
    y++;
    pane_list(w, &y, skip, "Audit trail", &tui.audit, "no events");
    wattrset(w, A_DIM);
    mvwaddstr(w, getmaxy(w) - 1, 2,
              tui.read_only ? " j/k scroll  Esc closes "
                            : " j/k scroll  s status  R refund  d delete  Esc closes ");
    wattrset(w, A_NORMAL);
    if (skip > 0 && y - skip < 2)
        tui.detail_scroll = y > 2 ? y - 2 : 0;
    wnoutrefresh(w);
    delwin(w);
}

static void draw_status_picker(void)
{
    struct row *r = model_selected(&tui.model);
    WINDOW *w = box_win(tui.status_n + 5, 50, "Change status");
    char buf[200];

    if (w == NULL)
        return;
    if (r != NULL) {
        snprintf(buf, sizeof buf, "from %s to:", pt_status_name(r->p.status));
        wmove(w, 1, 2);
        put_text(w, buf, getmaxx(w) - 4, -1);
    }
    for (int i = 0; i < tui.status_n; i++) {
        attr_t a = status_attr(tui.status_choices[i]);

        if (i == tui.status_cur)
            a |= A_REVERSE;
        wattrset(w, a);
        snprintf(buf, sizeof buf, " %c  %s ", pt_status_name(tui.status_choices[i])[0],
                 pt_status_name(tui.status_choices[i]));
        wmove(w, 2 + i, 4);
        put_text(w, buf, getmaxx(w) - 8, -1);
    }
    wattrset(w, A_DIM);
    mvwaddstr(w, getmaxy(w) - 2, 2, "Enter or letter applies, Esc cancels");
    wattrset(w, A_NORMAL);
    wnoutrefresh(w);
    delwin(w);
}

/* One labelled input line of a dialog at row y; returns the cursor column
 * (for the focused line). */
static int dialog_line(WINDOW *w, int y, const char *label, const struct line *l, bool focused,
                       const char *err, const char *hint)
{
    int width = getmaxx(w) - 18, cur_x;
    size_t start = 0;
    char before[FORM_TEXT_MAX];

    wmove(w, y, 2);
    wattrset(w, focused ? A_BOLD : A_NORMAL);
    put_text(w, label, 13, -1);
    /* show the tail when the text is longer than the field */
    while (start < l->pos) {
        size_t n;

        memcpy(before, l->buf + start, l->pos - start);
        before[l->pos - start] = '\0';
        if (pt_utf8_width(before) < width - 1)
            break;
        n = pt_utf8_decode(l->buf + start, l->len - start, NULL);
        start += n ? n : 1;
    }
    wattrset(w, focused ? A_UNDERLINE | A_BOLD : A_UNDERLINE);
    if (l->fresh)
        wattron(w, A_DIM);
    wmove(w, y, 16);
    put_text(w, l->buf + start, width, -1);
    memcpy(before, l->buf + start, l->pos - start);
    before[l->pos - start] = '\0';
    cur_x = 16 + pt_utf8_width(before);
    wmove(w, y + 1, 16);
    if (err != NULL && err[0]) {
        wattrset(w, attr(CP_ERROR, A_BOLD, A_BOLD));
        put_text(w, err, width, -1);
    } else if (hint != NULL) {
        wattrset(w, A_DIM);
        put_text(w, hint, width, -1);
    }
    wattrset(w, A_NORMAL);
    return cur_x;
}

/* A dialog's last lines (its banner, or `busy` while waiting; the keys)
 * and the cursor at (cur_y, cur_x) when cur_y >= 0; then shows and frees
 * the window. */
static void dialog_end(WINDOW *w, const char *banner, const char *busy, const char *keys, int cur_y,
                       int cur_x)
{
    wmove(w, getmaxy(w) - 3, 2);
    if (banner[0]) {
        wattrset(w, attr(CP_ERROR, A_BOLD, A_BOLD));
        put_text(w, banner, getmaxx(w) - 4, -1);
    } else if (busy != NULL) {
        wattrset(w, A_BOLD);
        put_text(w, busy, getmaxx(w) - 4, -1);
    }
    wattrset(w, A_DIM);
    mvwaddstr(w, getmaxy(w) - 2, 2, keys);
    wattrset(w, A_NORMAL);
    if (cur_y >= 0)
        wmove(w, cur_y, cur_x);
    wnoutrefresh(w);
    delwin(w);
}

static void draw_form(void)
{
    struct form *fm = &tui.form;
    int h = 4 + FF_COUNT * 2 + 2, cur_y = -1, cur_x = -1;
    WINDOW *w = box_win(h, 76, "New payment");

    if (w == NULL)
        return;
    for (int i = 0; i < FF_COUNT; i++) {
        int y = 1 + i * 2, x;

        if (y >= getmaxy(w) - 3)
            break;
        x = dialog_line(w, y, form_label(i), &fm->f[i], i == fm->cur, fm->err[i],
                        i == FF_METHOD && i == fm->cur ? "card, bank_transfer, cash, wallet, other"
                                                       : NULL);
        if (i == fm->cur) {
            cur_y = y;
            cur_x = x;
        }
    }
    dialog_end(w, fm->banner, fm->busy ? "saving..." : NULL,
               "Tab/Shift-Tab move   Enter saves   Esc cancels", cur_y, cur_x);
}

static void draw_refund(void)
{
    struct refund_dlg *d = &tui.refund;
    WINDOW *w = box_win(13, 76, "Refund");
    char buf[400], total[48], left[48];
    int cur_x = -1, cur_y = -1, x;

    if (w == NULL)
        return;
    refund_format(d, d->amount, true, total, sizeof total);
    refund_format(d, d->left, true, left, sizeof left);
    snprintf(buf, sizeof buf, "%s: %s %s, %s %s left to refund", d->who, total, d->currency, left,
             d->currency);
    wmove(w, 1, 2);
    put_text(w, buf, getmaxx(w) - 4, -1);
    snprintf(buf, sizeof buf, "in %s, e.g. %s", d->currency, left);
    x = dialog_line(w, 3, refund_label(RF_AMOUNT), &d->f[RF_AMOUNT], d->cur == RF_AMOUNT,
                    d->err[RF_AMOUNT], d->cur == RF_AMOUNT ? buf : NULL);
    if (d->cur == RF_AMOUNT) {
        cur_x = x;
        cur_y = 3;
    }
    wmove(w, 5, 2);
    wattrset(w, d->cur == RF_REASON ? A_BOLD : A_NORMAL);
    put_text(w, refund_label(RF_REASON), 13, -1);
    wmove(w, 5, 16);
    snprintf(buf, sizeof buf, "< %s >", refund_reason_name(d->reason));
    wattrset(w, d->cur == RF_REASON ? A_REVERSE : A_UNDERLINE);
    put_text(w, buf, (int) strlen(buf), -1);
    wattrset(w, A_DIM);
    if (d->cur == RF_REASON) {
        wmove(w, 6, 16);
        put_text(w, "Left/Right or first letter: r d f o", getmaxx(w) - 18, -1);
    }
    wattrset(w, A_NORMAL);
    x = dialog_line(w, 7, refund_label(RF_NOTE), &d->f[RF_NOTE], d->cur == RF_NOTE, d->err[RF_NOTE],
                    d->cur == RF_NOTE ? "optional, at most 500 characters" : NULL);
    if (d->cur == RF_NOTE) {
        cur_x = x;
        cur_y = 7;
    }
    curs_set(cur_y >= 0 ? 1 : 0);
    dialog_end(w, d->banner, d->busy ? "refunding..." : NULL,
               "Tab moves   Enter refunds   Esc cancels", cur_y, cur_x);
}

static void draw_export(void)
{
    struct export_job *x = &tui.export;
    WINDOW *w = box_win(9, 76, "Export to CSV");
    int cur_x;

    if (w == NULL)
        return;
    if (x->running) {
        char buf[1400];

        export_progress(buf, sizeof buf);
        wmove(w, 2, 2);
        put_text(w, buf + 1, getmaxx(w) - 4, -1);
        curs_set(0);
        dialog_end(w, "", NULL, "x cancels the export   Esc closes this", -1, 0);
        return;
    }
    wmove(w, 1, 2);
    put_text(w, "Every payment matching the filter, in the table's order.", getmaxx(w) - 4, -1);
    cur_x = dialog_line(w, 3, "File", &x->path, true, x->err, "a path; ~/ is your home");
    curs_set(1);
    dialog_end(w, "", NULL, "Enter exports   Esc cancels", 3, cur_x);
}

/* ---- the whole screen -------------------------------------------------- */

void view_draw(void)
{
    struct model *m = &tui.model;
    int rows, cols, page_h, y;
    struct layout l;
    int64_t now = util_mono_ms();
    bool rows_shown = false;

    getmaxyx(stdscr, rows, cols);
    erase();
    if (cols < TUI_MIN_COLS || rows < TUI_MIN_LINES) {
        char buf[160];

        snprintf(buf, sizeof buf, "Terminal too small: %dx%d. paytrackr-tui needs at least %dx%d.",
                 cols, rows, TUI_MIN_COLS, TUI_MIN_LINES);
        attrset(A_BOLD);
        move(rows / 2, 0);
        put_text(stdscr, buf, cols, -1);
        if (rows / 2 + 1 < rows) {
            move(rows / 2 + 1, 0);
            attrset(A_NORMAL);
            put_text(stdscr, "Enlarge the window, or press q to quit.", cols, -1);
        }
        attrset(A_NORMAL);
        curs_set(0);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    page_h = rows - 6;
    model_set_page(m, page_h);
    layout_for(cols, &l);
    draw_title(cols);
    draw_totals(1, cols);
    draw_meter(2, cols);
    draw_header_row(3, cols, &l);
    for (y = 0; y < page_h && m->top + (size_t) y < m->n; y++) {
        size_t i = m->top + (size_t) y;

        draw_row(4 + y, cols, &l, m->rows[i], i == m->sel, now);
        rows_shown = true;
    }
    if (m->n == 0) {
        const char *what =
            !m->loaded || m->busy_reload
                ? (conn_state() == CONN_LIVE ? "loading..." : "waiting for the server...")
                : "no payments match";

        attrset(A_DIM);
        mvaddstr(4 + page_h / 2, (cols - (int) strlen(what)) / 2, what);
        attrset(A_NORMAL);
    }
    draw_message(rows - 2, cols);
    draw_status_bar(rows - 1, cols);
    curs_set(tui.mode == MODE_FILTER || tui.mode == MODE_FORM ? 1 : 0);
    if (tui.mode == MODE_FILTER) {
        /* leave the cursor in the filter line */
        draw_message(rows - 2, cols);
    }
    wnoutrefresh(stdscr);
    switch (tui.mode) {
    case MODE_HELP:
        draw_help();
        break;
    case MODE_DETAIL:
        draw_detail();
        break;
    case MODE_STATUS:
        draw_status_picker();
        break;
    case MODE_FORM:
        draw_form();
        break;
    case MODE_REFUND:
        draw_refund();
        break;
    case MODE_EXPORT:
        draw_export();
        break;
    case MODE_WEBHOOKS:
        webhooks_draw();
        break;
    default:
        break;
    }
    doupdate();
    if (rows_shown)
        app_first_rows_drawn();
}
