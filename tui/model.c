/*
 * model.c - the window of loaded payments: paging, events, selection.
 *
 * In time order (the server's own order) the model holds a contiguous
 * window of at most MODEL_WINDOW_MAX rows of the filtered list and fetches
 * pages as the cursor nears either end: downwards with the list's
 * next_cursor, upwards with the opposite order. Each page's next_cursor
 * also marks the row it points at with that row's exact key (created_at to
 * the microsecond, id), and the window is only ever trimmed so that it ends
 * on such a row: paging then resumes from there with a cursor made for it
 * (common/cursor.h), exact even when thousands of payments share one
 * millisecond. So browsing 100,000 payments never loads them all and
 * memory stays bounded. Sorting by another column has no server
 * support: the model then loads up to MODEL_LOCAL_MAX rows and sorts them
 * itself, and says so.
 *
 * Events are applied to the window when they fall inside it (by version:
 * an older version never overwrites a newer one), the cursor stays on its
 * payment when rows arrive or leave above it, and while paused they are
 * held (bounded) and applied on resume. Every list answer carries the
 * window generation it was asked for; answers for an older window are
 * dropped. A list answer is a snapshot from when the server ran the
 * query, so the events that arrived while it was in flight are applied
 * again over it (from a bounded ring of recent events; applying is
 * idempotent by version); without that, a payment created while the
 * first page was loading would never show.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "pjson.h"
#include "proto.h"
#include "tui.h"

#define PREFETCH_MIN     100
#define LOCAL_PAGE       500
#define METER_PAGE       500
#define METER_MAX_PAGES  20
#define HIGHLIGHT_MS     2500
#define PENDING_MOVE_MAX 100000

struct model_priv {
    char reselect[PT_ID_LEN + 1];
    bool stale; /* a reload could not be sent or failed: redo when possible */
};

/* The model has one instance; its private part lives here. */
static struct model_priv priv;

static const char *const sort_names[SORT_COUNT] = {
    "time", "payer", "payee", "amount", "currency", "status", "reference",
};

const char *model_sort_name(enum sort_col c)
{
    return (c >= 0 && c < SORT_COUNT) ? sort_names[c] : "?";
}

void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    memset(&priv, 0, sizeof priv);
    m->filter.status = -1;
    m->sort = SORT_TIME;
    m->desc = true;
    m->last_seq = -1;
    m->page_h = 20;
    priv.stale = true;
}

static void row_free(struct row *r)
{
    if (r == NULL)
        return;
    pt_payment_clear(&r->p);
    free(r);
}

static void clear_pq(struct model *m)
{
    for (size_t i = 0; i < m->pq_n; i++)
        pt_payment_clear(&m->pq[i].p);
    free(m->pq);
    m->pq = NULL;
    m->pq_n = m->pq_cap = 0;
    m->pq_overflow = false;
}

static void clear_recent(struct model *m)
{
    /* The ring is calloc'ed: slots never used hold empty payments. */
    if (m->recent != NULL)
        for (size_t i = 0; i < MODEL_RECENT_MAX; i++)
            pt_payment_clear(&m->recent[i].p);
    free(m->recent);
    m->recent = NULL;
    m->recent_total = 0;
    memset(m->list_sent_at, 0, sizeof m->list_sent_at);
    m->pause_from = 0;
}

static void clear_rows(struct model *m)
{
    for (size_t i = 0; i < m->n; i++)
        row_free(m->rows[i]);
    m->n = 0;
    m->sel = 0;
    m->top = 0;
}

void model_clear(struct model *m)
{
    clear_rows(m);
    m->loaded = false;
    m->at_top = m->at_bottom = false;
    free(m->down_cursor);
    free(m->up_cursor);
    m->down_cursor = m->up_cursor = NULL;
    m->above_new = 0;
}

void model_free(struct model *m)
{
    model_clear(m);
    free(m->rows);
    m->rows = NULL;
    m->cap = 0;
    clear_pq(m);
    clear_recent(m);
}

static int cmp64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

/* strcmp that puts NULL (absent) last in ascending order. */
static int cmp_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a == NULL) - (b == NULL);
    return strcmp(a, b);
}

/* Compares amounts in major units (1.00 EUR equals 100 JPY here), exactly:
 * a.amount * 10^exp(b) against b.amount * 10^exp(a) in 128 bits. */
static int cmp_major(const pt_payment *a, const pt_payment *b)
{
    const pt_currency *ca = pt_currency_find(a->currency);
    const pt_currency *cb = pt_currency_find(b->currency);
    __int128 x = a->amount, y = b->amount;

    for (int i = 0; cb && i < cb->exponent; i++)
        x *= 10;
    for (int i = 0; ca && i < ca->exponent; i++)
        y *= 10;
    return x < y ? -1 : x > y;
}

/* Row order for the current sort column and direction. */
static int cmp_rows(const struct model *m, const struct row *a, const struct row *b)
{
    int r = 0;

    switch (m->sort) {
    case SORT_PAYER:
        r = cmp_text(a->p.payer, b->p.payer);
        break;
    case SORT_PAYEE:
        r = cmp_text(a->p.payee, b->p.payee);
        break;
    case SORT_AMOUNT:
        r = cmp_major(&a->p, &b->p);
        break;
    case SORT_CURRENCY:
        r = strcmp(a->p.currency, b->p.currency);
        if (r == 0)
            r = cmp64(a->p.amount, b->p.amount);
        break;
    case SORT_STATUS:
        r = cmp64(a->p.status, b->p.status);
        break;
    case SORT_REFERENCE:
        r = cmp_text(a->p.reference, b->p.reference);
        break;
    case SORT_TIME:
    default:
        break;
    }
    if (r == 0)
        r = cmp64(a->created_ms, b->created_ms);
    if (r == 0)
        r = strcmp(a->p.id, b->p.id);
    return m->desc ? -r : r;
}

static long find_id(const struct model *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->rows[i]->p.id, id) == 0)
            return (long) i;
    return -1;
}

/* Where `r` belongs in the sorted window (first index not before it). */
static size_t lower_bound(const struct model *m, const struct row *r)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cmp_rows(m, m->rows[mid], r) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int reserve(struct model *m, size_t want)
{
    struct row **nr;
    size_t cap;

    if (want <= m->cap)
        return 0;
    cap = m->cap ? m->cap : 256;
    while (cap < want)
        cap *= 2;
    nr = realloc(m->rows, cap * sizeof *nr);
    if (nr == NULL)
        return -1;
    m->rows = nr;
    m->cap = cap;
    return 0;
}

static void keep_visible(struct model *m)
{
    size_t h = m->page_h > 0 ? (size_t) m->page_h : 1;

    if (m->n == 0) {
        m->sel = m->top = 0;
        return;
    }
    if (m->sel >= m->n)
        m->sel = m->n - 1;
    if (m->sel < m->top)
        m->top = m->sel;
    if (m->sel >= m->top + h)
        m->top = m->sel - h + 1;
    if (m->top + h > m->n)
        m->top = m->n > h ? m->n - h : 0;
}

/* Inserts `r` at `i`, keeping the cursor on its payment; -1 on ENOMEM. */
static int insert_at(struct model *m, size_t i, struct row *r)
{
    bool was_empty = m->n == 0;

    if (reserve(m, m->n + 1) != 0)
        return -1;
    memmove(m->rows + i + 1, m->rows + i, (m->n - i) * sizeof *m->rows);
    m->rows[i] = r;
    m->n++;
    if (was_empty) {
        m->sel = m->top = 0;
        return 0;
    }
    if (i <= m->sel)
        m->sel++;
    if (i < m->top)
        m->top++;
    keep_visible(m);
    return 0;
}

/* Detaches row i and returns it, keeping the cursor sensible. */
static struct row *take_at(struct model *m, size_t i)
{
    struct row *r = m->rows[i];

    memmove(m->rows + i, m->rows + i + 1, (m->n - i - 1) * sizeof *m->rows);
    m->n--;
    if (i < m->sel)
        m->sel--;
    if (i < m->top)
        m->top--;
    keep_visible(m);
    return r;
}

bool model_matches(const struct model *m, const pt_payment *p)
{
    const struct filter *f = &m->filter;

    if (f->status >= 0 && (int) p->status != f->status)
        return false;
    if (f->currency[0] != '\0' && strcmp(f->currency, p->currency) != 0)
        return false;
    /* the server's rule for q, so live rows agree with a reload */
    if (f->text[0] != '\0' && !pt_q_match(f->text, p->payer, p->payee, p->reference))
        return false;
    return true;
}

/* A new row owning a copy of the payment (moved when `steal`). */
static struct row *row_from(pt_payment *p, bool steal)
{
    struct row *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    if (steal) {
        r->p = *p;
        memset(p, 0, sizeof *p);
    } else if (pt_payment_copy(&r->p, p) != 0) {
        free(r);
        return NULL;
    }
    if (util_parse_time(r->p.created_at, &r->created_ms) != 0)
        r->created_ms = 0;
    return r;
}

/* ---- requests ---------------------------------------------------------- */

static bool local_mode(const struct model *m)
{
    return m->sort != SORT_TIME;
}

/* The server order for the window (time mode), flipped when `reverse`. */
static const char *order_name(const struct model *m, bool reverse)
{
    bool desc = local_mode(m) ? true : m->desc;

    if (reverse)
        desc = !desc;
    return desc ? "created_at.desc" : "created_at.asc";
}

/* {"query":{...filters...}} for a list message. */
static cJSON *list_msg(const struct model *m, bool reverse, int limit, cJSON **query_out)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON *q = msg ? cJSON_AddObjectToObject(msg, "query") : NULL;

    if (q == NULL) {
        cJSON_Delete(msg);
        return NULL;
    }
    cJSON_AddStringToObject(q, "order", order_name(m, reverse));
    cJSON_AddNumberToObject(q, "limit", limit);
    if (m->filter.text[0] != '\0')
        cJSON_AddStringToObject(q, "q", m->filter.text);
    if (m->filter.status >= 0)
        cJSON_AddStringToObject(q, "status", pt_status_name((pt_status) m->filter.status));
    if (m->filter.currency[0] != '\0')
        cJSON_AddStringToObject(q, "currency", m->filter.currency);
    *query_out = q;
    return msg;
}

void model_reload(struct model *m, bool bottom)
{
    cJSON *msg, *q;
    struct row *cur = model_selected(m);

    if (cur != NULL)
        snprintf(priv.reselect, sizeof priv.reselect, "%s", cur->p.id);
    m->gen++;
    m->pending_move = 0;
    m->busy_reload = true;
    m->busy_down = m->busy_up = false;
    m->want_bottom = bottom && !local_mode(m);
    priv.stale = false;
    msg = list_msg(m, m->want_bottom, local_mode(m) ? LOCAL_PAGE : MODEL_PAGE, &q);
    m->list_sent_at[REQ_LIST_RELOAD] = m->recent_total;
    if (msg == NULL || conn_request("list", msg, REQ_LIST_RELOAD, m->gen) != 0) {
        m->busy_reload = false;
        priv.stale = true;
    }
    app_dirty();
}

static void fetch_down(struct model *m)
{
    cJSON *msg, *q;

    if (m->busy_down || m->busy_reload || m->at_bottom || m->n == 0)
        return;
    if (m->down_cursor == NULL) {
        m->at_bottom = true; /* nothing to continue from (local mode's last page) */
        return;
    }
    msg = list_msg(m, false, local_mode(m) ? LOCAL_PAGE : MODEL_PAGE, &q);
    if (msg == NULL)
        return;
    cJSON_AddStringToObject(q, "cursor", m->down_cursor);
    m->list_sent_at[REQ_LIST_DOWN] = m->recent_total;
    if (conn_request("list", msg, REQ_LIST_DOWN, m->gen) == 0)
        m->busy_down = true;
}

static void fetch_up(struct model *m)
{
    cJSON *msg, *q;

    if (local_mode(m) || m->busy_up || m->busy_reload || m->at_top || m->n == 0)
        return;
    if (m->up_cursor == NULL) {
        m->at_top = true; /* cannot happen: trimming leaves a cursor */
        return;
    }
    msg = list_msg(m, true, MODEL_PAGE, &q);
    if (msg == NULL)
        return;
    cJSON_AddStringToObject(q, "cursor", m->up_cursor);
    m->list_sent_at[REQ_LIST_UP] = m->recent_total;
    if (conn_request("list", msg, REQ_LIST_UP, m->gen) == 0)
        m->busy_up = true;
}

void model_maybe_fetch(struct model *m)
{
    size_t ahead = (size_t) (m->page_h * 2 > PREFETCH_MIN ? m->page_h * 2 : PREFETCH_MIN);

    if (conn_state() != CONN_LIVE)
        return;
    if (priv.stale && !m->busy_reload) {
        model_reload(m, m->want_bottom);
        return;
    }
    if (!m->loaded || m->busy_reload)
        return;
    if (local_mode(m)) {
        if (!m->at_bottom && m->n < MODEL_LOCAL_MAX)
            fetch_down(m);
        return;
    }
    if (m->sel + ahead >= m->n)
        fetch_down(m);
    if (m->sel < ahead)
        fetch_up(m);
}

/* ---- list answers ------------------------------------------------------ */

/* Decodes a page body; NULL data when it is not one. */
static const cJSON *page_parts(const cJSON *body, bool *has_more, const char **next)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
    const cJSON *more = cJSON_GetObjectItemCaseSensitive(body, "has_more");
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(body, "next_cursor");

    *has_more = cJSON_IsTrue(more);
    *next = cJSON_IsString(nc) ? nc->valuestring : NULL;
    return cJSON_IsArray(data) ? data : NULL;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = util_strdup(src);
}

/* Marks the row `next` (a page's next_cursor) points at with its exact
 * key, so that paging can later resume from it. */
static void remember_key(struct model *m, const char *next)
{
    char time[PT_CURSOR_TIME_MAX], id[PT_CURSOR_ID_MAX];
    bool asc;
    long idx;

    if (next == NULL || local_mode(m) || pt_cursor_decode(next, &asc, time, id) != 0)
        return;
    idx = find_id(m, id);
    if (idx >= 0)
        memcpy(m->rows[idx]->key_time, time, sizeof time);
}

/* Sets *cursor to "after row i" in the given order; false when row i has
 * no key (or the cursor cannot be made). */
static bool cursor_after(const struct model *m, size_t i, bool asc, char **cursor)
{
    char text[PT_CURSOR_MAX + 1];
    const struct row *r = m->rows[i];

    if (r->key_time[0] == '\0' ||
        pt_cursor_encode(asc, r->key_time, r->p.id, text, sizeof text) != 0)
        return false;
    set_str(cursor, text);
    return *cursor != NULL;
}

/* Drops rows far above the cursor when the window grew past its cap. The
 * window then starts on a row with a key, the next page upwards starts
 * right after it; without one near enough the window stays larger. */
static void trim_top(struct model *m)
{
    size_t excess, keep_above, k;

    if (local_mode(m) || m->n <= MODEL_WINDOW_MAX)
        return;
    excess = m->n - MODEL_WINDOW_MAX;
    keep_above = (size_t) m->page_h + PREFETCH_MIN;
    k = m->sel > keep_above ? m->sel - keep_above : 0;
    if (k > excess)
        k = excess;
    /* upwards is the opposite order: ascending when the view is newest first */
    while (k > 0 && !cursor_after(m, k, m->desc, &m->up_cursor))
        k--;
    if (k == 0)
        return;
    for (size_t i = 0; i < k; i++)
        row_free(m->rows[i]);
    memmove(m->rows, m->rows + k, (m->n - k) * sizeof *m->rows);
    m->n -= k;
    m->sel -= k;
    m->top = m->top >= k ? m->top - k : 0;
    m->at_top = false;
    keep_visible(m);
}

/* Drops rows far below the cursor when the window grew past its cap; the
 * window then ends on a row with a key (see trim_top). */
static void trim_bottom(struct model *m)
{
    size_t floor_n, keep;

    if (local_mode(m) || m->n <= MODEL_WINDOW_MAX)
        return;
    floor_n = m->sel + (size_t) m->page_h + PREFETCH_MIN;
    if (floor_n < MODEL_WINDOW_MAX)
        floor_n = MODEL_WINDOW_MAX;
    for (keep = floor_n; keep < m->n; keep++)
        if (cursor_after(m, keep - 1, !m->desc, &m->down_cursor))
            break;
    if (keep >= m->n)
        return;
    while (m->n > keep)
        row_free(m->rows[--m->n]);
    m->at_bottom = false;
    keep_visible(m);
}

/* Decodes each payment of `data` not already in the window into rows[]
 * (caller frees the array); returns how many, in page order. */
static size_t decode_new(struct model *m, const cJSON *data, struct row ***out)
{
    size_t cap = (size_t) cJSON_GetArraySize(data), k = 0;
    struct row **rs = calloc(cap ? cap : 1, sizeof *rs);
    const cJSON *item;

    *out = rs;
    if (rs == NULL)
        return 0;
    cJSON_ArrayForEach(item, data)
    {
        pt_payment p;
        struct row *r;

        if (pt_payment_from_json(item, &p) != 0)
            continue;
        if (find_id(m, p.id) >= 0) {
            pt_payment_clear(&p);
            continue;
        }
        r = row_from(&p, true);
        if (r == NULL) {
            pt_payment_clear(&p);
            continue;
        }
        rs[k++] = r;
    }
    return k;
}

static void on_reload(struct model *m, const cJSON *data, bool has_more, const char *next)
{
    struct row **rs;
    size_t k;
    long idx;

    clear_rows(m);
    free(m->down_cursor);
    free(m->up_cursor);
    m->down_cursor = m->up_cursor = NULL;
    m->above_new = 0;
    k = decode_new(m, data, &rs);
    if (reserve(m, k) == 0) {
        for (size_t i = 0; i < k; i++) {
            if (local_mode(m)) {
                insert_at(m, lower_bound(m, rs[i]), rs[i]);
            } else if (m->want_bottom) {
                m->rows[m->n++] = rs[k - 1 - i];
            } else {
                m->rows[m->n++] = rs[i];
            }
        }
    } else {
        for (size_t i = 0; i < k; i++)
            row_free(rs[i]);
    }
    free(rs);
    if (m->want_bottom) {
        m->at_bottom = true;
        m->at_top = !has_more;
        set_str(&m->up_cursor, next);
        m->sel = m->n ? m->n - 1 : 0;
    } else {
        m->at_top = true;
        m->at_bottom = !has_more;
        set_str(&m->down_cursor, next);
        m->sel = 0;
    }
    remember_key(m, next);
    m->top = 0;
    idx = priv.reselect[0] ? find_id(m, priv.reselect) : -1;
    if (idx >= 0)
        m->sel = (size_t) idx;
    priv.reselect[0] = '\0';
    m->loaded = true;
    m->want_bottom = false;
    keep_visible(m);
}

static void on_down(struct model *m, const cJSON *data, bool has_more, const char *next)
{
    struct row **rs;
    size_t k = decode_new(m, data, &rs);

    if (reserve(m, m->n + k) == 0) {
        for (size_t i = 0; i < k; i++) {
            if (local_mode(m))
                insert_at(m, lower_bound(m, rs[i]), rs[i]);
            else
                m->rows[m->n++] = rs[i];
        }
    } else {
        for (size_t i = 0; i < k; i++)
            row_free(rs[i]);
        k = 0;
    }
    free(rs);
    m->at_bottom = !has_more;
    set_str(&m->down_cursor, next);
    remember_key(m, next);
    if (m->pending_move > 0 && k > 0) {
        long pm = m->pending_move;

        m->pending_move = 0;
        model_move(m, pm);
    } else if (m->at_bottom && m->pending_move > 0) {
        m->pending_move = 0;
    }
    trim_top(m);
    keep_visible(m);
    if (k == 0 && has_more && next != NULL)
        fetch_down(m); /* only rows we had: keep walking */
}

static void on_up(struct model *m, const cJSON *data, bool has_more, const char *next)
{
    struct row **rs;
    size_t k = decode_new(m, data, &rs);

    if (reserve(m, m->n + k) == 0) {
        /* The page walks away from the window: its first row is nearest. */
        memmove(m->rows + k, m->rows, m->n * sizeof *m->rows);
        for (size_t i = 0; i < k; i++)
            m->rows[k - 1 - i] = rs[i];
        m->n += k;
        if (m->n > k) {
            m->sel += k;
            m->top += k;
        }
    } else {
        for (size_t i = 0; i < k; i++)
            row_free(rs[i]);
        k = 0;
    }
    free(rs);
    m->at_top = !has_more;
    if (m->at_top)
        m->above_new = 0;
    set_str(&m->up_cursor, next);
    remember_key(m, next);
    if (m->pending_move < 0 && k > 0) {
        long pm = m->pending_move;

        m->pending_move = 0;
        model_move(m, pm);
    } else if (m->at_top && m->pending_move < 0) {
        m->pending_move = 0;
    }
    trim_bottom(m);
    keep_visible(m);
    if (k == 0 && has_more && next != NULL)
        fetch_up(m);
}

/* Counts a payment created at `created_ms` in the meter. */
static void meter_add(struct model *m, int64_t created_ms)
{
    int64_t minute = created_ms / 60000;
    int idx = (int) (minute % MODEL_METER_MIN);

    if (created_ms <= 0)
        return;
    if (m->meter_min[idx] != minute) {
        m->meter_min[idx] = minute;
        m->meter_cnt[idx] = 0;
    }
    m->meter_cnt[idx]++;
}

static int send_meter_page(struct model *m, const char *cursor)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON *q = msg ? cJSON_AddObjectToObject(msg, "query") : NULL;
    char t[40];

    if (q == NULL) {
        cJSON_Delete(msg);
        return -1;
    }
    cJSON_AddStringToObject(q, "order", "created_at.desc");
    cJSON_AddNumberToObject(q, "limit", METER_PAGE);
    util_format_time(m->meter_t0 - 3600 * 1000, t, sizeof t);
    cJSON_AddStringToObject(q, "created_gte", t);
    util_format_time(m->meter_t0, t, sizeof t);
    cJSON_AddStringToObject(q, "created_lt", t);
    if (cursor != NULL)
        cJSON_AddStringToObject(q, "cursor", cursor);
    return conn_request("list", msg, REQ_METER, m->meter_gen);
}

void model_meter_start(struct model *m)
{
    if (m->meter_ready || m->meter_pages > 0)
        return;
    m->meter_gen++;
    m->meter_t0 = util_wall_ms();
    memset(m->meter_min, 0, sizeof m->meter_min);
    memset(m->meter_cnt, 0, sizeof m->meter_cnt);
    if (send_meter_page(m, NULL) == 0)
        m->meter_pages = 1;
}

static void on_meter(struct model *m, int status, const cJSON *body)
{
    bool has_more;
    const char *next;
    const cJSON *data, *item;

    if (status != 200) {
        /* Count live events anyway; the past hour stays unknown. */
        m->meter_pages = 0;
        m->meter_ready = true;
        return;
    }
    data = page_parts(body, &has_more, &next);
    cJSON_ArrayForEach(item, data)
    {
        const cJSON *ca = cJSON_GetObjectItemCaseSensitive(item, "created_at");
        int64_t ms;

        if (cJSON_IsString(ca) && util_parse_time(ca->valuestring, &ms) == 0)
            meter_add(m, ms);
    }
    if (has_more && next != NULL && m->meter_pages < METER_MAX_PAGES &&
        send_meter_page(m, next) == 0) {
        m->meter_pages++;
        return;
    }
    m->meter_pages = 0;
    m->meter_ready = true;
}

void model_meter(const struct model *m, int *buckets)
{
    int64_t now_min = util_wall_ms() / 60000;

    for (int k = 0; k < MODEL_METER_MIN; k++) {
        int64_t minute = now_min - (MODEL_METER_MIN - 1) + k;
        int idx = (int) (minute % MODEL_METER_MIN);

        buckets[k] = m->meter_min[idx] == minute ? m->meter_cnt[idx] : 0;
    }
}

static void apply(struct model *m, int type, pt_payment *p, bool highlight, bool replay);

/* Applies again, over a list answer for `kind`, the events that arrived
 * since it was asked for, except those a pause holds (resuming applies
 * them). When the ring no longer holds them all, the window is reloaded. */
static void replay_since_request(struct model *m, enum req_kind kind)
{
    uint64_t from = m->list_sent_at[kind];
    uint64_t to = m->paused && m->pause_from > from ? m->pause_from : m->recent_total;

    if (m->paused && m->pause_from <= from)
        return;
    if (m->recent_total - from > MODEL_RECENT_MAX) {
        priv.stale = true; /* too much happened meanwhile: ask again */
        return;
    }
    for (uint64_t i = from; i < to; i++) {
        const struct pending_event *ev = &m->recent[i % MODEL_RECENT_MAX];
        pt_payment copy;

        if (pt_payment_copy(&copy, &ev->p) != 0)
            continue;
        apply(m, ev->type, &copy, true, true);
        pt_payment_clear(&copy);
    }
}

void model_on_list(struct model *m, enum req_kind kind, uint64_t tag, int status, const cJSON *body)
{
    bool has_more;
    const char *next;
    const cJSON *data;

    if (kind == REQ_METER) {
        if (tag == m->meter_gen)
            on_meter(m, status, body);
        return;
    }
    if (tag != m->gen)
        return; /* an answer for a window that is gone */
    if (kind == REQ_LIST_RELOAD)
        m->busy_reload = false;
    else if (kind == REQ_LIST_DOWN)
        m->busy_down = false;
    else
        m->busy_up = false;
    if (status == 0) {
        if (kind == REQ_LIST_RELOAD)
            priv.stale = true; /* redo after reconnecting */
        return;
    }
    data = status == 200 ? page_parts(body, &has_more, &next) : NULL;
    if (data == NULL) {
        char text[TUI_ERROR_MAX];

        app_error_text(body, status, text, sizeof text);
        app_message(true, "list failed: %s", text);
        if (kind == REQ_LIST_RELOAD) {
            /* Show what the server refused rather than stale rows. */
            m->loaded = true;
        }
        return;
    }
    if (kind == REQ_LIST_RELOAD)
        on_reload(m, data, has_more, next);
    else if (kind == REQ_LIST_DOWN)
        on_down(m, data, has_more, next);
    else
        on_up(m, data, has_more, next);
    replay_since_request(m, kind);
    model_maybe_fetch(m);
    app_dirty();
}

/* ---- events ------------------------------------------------------------ */

/* Keeps a copy of an event in the ring of recent ones (best effort: an
 * event that cannot be copied is only missing from replays). */
static void remember(struct model *m, int type, int64_t seq, const pt_payment *p)
{
    struct pending_event *slot;

    if (m->recent == NULL) {
        m->recent = calloc(MODEL_RECENT_MAX, sizeof *m->recent);
        if (m->recent == NULL)
            return;
    }
    slot = &m->recent[m->recent_total % MODEL_RECENT_MAX];
    if (m->recent_total >= MODEL_RECENT_MAX)
        pt_payment_clear(&slot->p);
    memset(slot, 0, sizeof *slot);
    (void) pt_payment_copy(&slot->p, p); /* zeroed when it fails */
    slot->type = type;
    slot->seq = seq;
    m->recent_total++;
}

/* The event's type as pending_event.type counts it (pt_event_type's
 * order), or -1. */
static int event_type(const char *name)
{
    pt_event_type t;

    return pt_event_parse(name, &t) ? (int) t : -1;
}

void model_remove_id(struct model *m, const char *id)
{
    long idx = find_id(m, id);

    if (idx >= 0)
        row_free(take_at(m, (size_t) idx));
}

/* Applies one change to the window; `replay` when it was applied once
 * already (over an older window), so it is not counted twice. */
static void apply(struct model *m, int type, pt_payment *p, bool highlight, bool replay)
{
    long idx;
    struct row *r;
    size_t pos;

    if (type == 2) {
        model_remove_id(m, p->id);
        return;
    }
    idx = find_id(m, p->id);
    if (idx >= 0) {
        bool was_sel = (size_t) idx == m->sel;

        r = m->rows[idx];
        if (r->p.version >= p->version)
            return; /* we already show this version or a newer one */
        if (!model_matches(m, p)) {
            row_free(take_at(m, (size_t) idx));
            return;
        }
        take_at(m, (size_t) idx);
        pt_payment_clear(&r->p);
        r->p = *p;
        memset(p, 0, sizeof *p);
        if (util_parse_time(r->p.created_at, &r->created_ms) != 0)
            r->created_ms = 0;
        if (highlight) {
            r->hl_until = util_mono_ms() + HIGHLIGHT_MS;
            r->hl_new = false;
        }
        pos = lower_bound(m, r);
        if (insert_at(m, pos, r) != 0) {
            row_free(r);
            return;
        }
        if (was_sel) {
            m->sel = pos;
            keep_visible(m);
        }
        return;
    }
    if (!model_matches(m, p) || !m->loaded)
        return;
    r = row_from(p, true);
    if (r == NULL)
        return;
    pos = lower_bound(m, r);
    if (!local_mode(m) && m->n > 0) {
        if (pos == 0 && !m->at_top) {
            if (!replay)
                m->above_new++;
            row_free(r);
            return;
        }
        if (pos == m->n && !m->at_bottom) {
            row_free(r);
            return;
        }
    }
    if (highlight) {
        r->hl_until = util_mono_ms() + HIGHLIGHT_MS;
        r->hl_new = true;
    }
    if (insert_at(m, pos, r) != 0) {
        row_free(r);
        return;
    }
    /* Keep the window bounded away from the cursor. */
    if (!local_mode(m) && m->n > MODEL_WINDOW_MAX + MODEL_PAGE) {
        if (m->sel > m->n / 2)
            trim_top(m);
        else
            trim_bottom(m);
    } else if (local_mode(m) && m->n > MODEL_LOCAL_MAX) {
        size_t last = m->n - 1;

        if (last != m->sel)
            row_free(take_at(m, last));
    }
}

void model_apply_payment(struct model *m, const pt_payment *p, bool highlight)
{
    pt_payment copy;

    if (pt_payment_copy(&copy, p) != 0)
        return;
    apply(m, 1, &copy, highlight, false);
    pt_payment_clear(&copy);
    app_dirty();
}

void model_on_event(struct model *m, const cJSON *msg)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(msg, "event");
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(msg, "payment");
    int64_t seq = -1, created_ms;
    int type;
    pt_payment p;

    if (!cJSON_IsString(ev) || (type = event_type(ev->valuestring)) < 0)
        return;
    if (!pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(msg, "seq"), &seq))
        seq = -1;
    if (seq >= 0 && seq <= m->last_seq)
        return; /* seen already */
    if (pt_payment_from_json(pj, &p) != 0) {
        /* A deleted event may carry less; all we need is the id. */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(pj, "id");

        if (type != 2 || !cJSON_IsString(id))
            goto seen;
        memset(&p, 0, sizeof p);
        util_copy(p.id, sizeof p.id, id->valuestring);
    }
    remember(m, type, seq, &p);
    if (type == 0 && m->meter_t0 > 0 && util_parse_time(p.created_at, &created_ms) == 0 &&
        created_ms >= m->meter_t0)
        meter_add(m, created_ms);
    if (m->paused) {
        if (m->pq_n >= MODEL_PAUSE_MAX) {
            m->pq_overflow = true;
            pt_payment_clear(&p);
        } else {
            if (m->pq_n == m->pq_cap) {
                size_t cap = m->pq_cap ? m->pq_cap * 2 : 64;
                struct pending_event *nq = realloc(m->pq, cap * sizeof *nq);

                if (nq == NULL) {
                    m->pq_overflow = true;
                    pt_payment_clear(&p);
                    goto seen;
                }
                m->pq = nq;
                m->pq_cap = cap;
            }
            m->pq[m->pq_n].type = type;
            m->pq[m->pq_n].seq = seq;
            m->pq[m->pq_n].p = p;
            m->pq_n++;
        }
        m->pause_count++;
    } else {
        apply(m, type, &p, true, false);
        pt_payment_clear(&p);
    }
seen:
    if (seq > m->last_seq)
        m->last_seq = seq;
    app_dirty();
}

void model_toggle_pause(struct model *m)
{
    if (!m->paused) {
        m->paused = true;
        m->pause_count = 0;
        m->pause_from = m->recent_total;
        return;
    }
    m->paused = false;
    if (m->pq_overflow) {
        clear_pq(m);
        app_message(false, "resumed: too many changes while paused, reloading");
        model_reload(m, false);
    } else {
        size_t n = m->pq_n;

        for (size_t i = 0; i < m->pq_n; i++) {
            apply(m, m->pq[i].type, &m->pq[i].p, true, false);
            pt_payment_clear(&m->pq[i].p);
        }
        m->pq_n = 0;
        clear_pq(m);
        app_message(false, "resumed: applied %zu change%s", n, n == 1 ? "" : "s");
    }
    m->pause_count = 0;
    model_maybe_fetch(m);
}

/* ---- cursor ------------------------------------------------------------ */

void model_set_page(struct model *m, int page_h)
{
    m->page_h = page_h > 0 ? page_h : 1;
    keep_visible(m);
}

void model_move(struct model *m, long delta)
{
    if (m->n == 0)
        return;
    if (delta < 0 && (size_t) -delta > m->sel) {
        /* remember what went past the loaded rows while more can come */
        if (!local_mode(m) && !m->at_top && m->pending_move > -PENDING_MOVE_MAX)
            m->pending_move += delta + (long) m->sel;
        m->sel = 0;
    } else if (delta > 0 && m->sel + (size_t) delta >= m->n) {
        if (!m->at_bottom && m->pending_move < PENDING_MOVE_MAX)
            m->pending_move += delta - (long) (m->n - 1 - m->sel);
        m->sel = m->n - 1;
    } else {
        m->sel = (size_t) ((long) m->sel + delta);
    }
    keep_visible(m);
    model_maybe_fetch(m);
}

void model_home(struct model *m)
{
    if (!local_mode(m) && !m->at_top) {
        model_clear(m);
        priv.reselect[0] = '\0';
        model_reload(m, false);
        return;
    }
    m->sel = 0;
    keep_visible(m);
    model_maybe_fetch(m);
}

void model_end(struct model *m)
{
    if (!local_mode(m) && !m->at_bottom) {
        model_clear(m);
        priv.reselect[0] = '\0';
        model_reload(m, true);
        return;
    }
    m->sel = m->n ? m->n - 1 : 0;
    keep_visible(m);
    model_maybe_fetch(m);
}

struct row *model_selected(struct model *m)
{
    return m->sel < m->n ? m->rows[m->sel] : NULL;
}

static struct model *sort_model; /* qsort has no context argument */

static int qsort_cmp(const void *a, const void *b)
{
    return cmp_rows(sort_model, *(struct row *const *) a, *(struct row *const *) b);
}

void model_set_sort(struct model *m, enum sort_col col, bool desc)
{
    bool was_local = local_mode(m);
    struct row *cur = model_selected(m);
    char keep[PT_ID_LEN + 1] = "";

    if (cur != NULL)
        snprintf(keep, sizeof keep, "%s", cur->p.id);
    m->sort = col;
    m->desc = desc;
    if (was_local && local_mode(m) && m->loaded && !m->busy_reload) {
        long idx;

        sort_model = m;
        qsort(m->rows, m->n, sizeof *m->rows, qsort_cmp);
        idx = keep[0] ? find_id(m, keep) : -1;
        m->sel = idx >= 0 ? (size_t) idx : 0;
        m->top = 0;
        keep_visible(m);
        app_dirty();
        return;
    }
    model_clear(m);
    snprintf(priv.reselect, sizeof priv.reselect, "%s", keep);
    m->gen++;
    m->busy_reload = false;
    priv.stale = true;
    if (conn_state() == CONN_LIVE)
        model_reload(m, false);
}

void model_set_filter(struct model *m, const struct filter *f)
{
    m->filter = *f;
    model_clear(m);
    priv.reselect[0] = '\0';
    m->gen++;
    m->busy_reload = false;
    priv.stale = true;
    if (conn_state() == CONN_LIVE)
        model_reload(m, false);
}
