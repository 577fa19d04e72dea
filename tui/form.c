/*
 * form.c - the new-payment form and the single-line editor it is made of.
 *
 * Fields in the contract's order: payer, payee, amount in major units
 * (12.50), currency, method, reference, description. Each is checked with
 * the same rules as the server (pt_validate_* from common/) as it is
 * typed, and the message shows under the field once the field was left or
 * the form submitted; nothing is sent while any field is invalid.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>

#include "currency.h"
#include "pjson.h"
#include "tui.h"
#include "utf8.h"
#include "validate.h"

static const char *const labels[FF_COUNT] = {
    "Payer", "Payee", "Amount", "Currency", "Method", "Reference", "Description",
};

const char *form_label(int field)
{
    return (field >= 0 && field < FF_COUNT) ? labels[field] : "";
}

void line_set(struct line *l, const char *text, bool fresh)
{
    util_copy(l->buf, sizeof l->buf, text);
    l->len = strlen(l->buf);
    l->pos = l->len;
    l->fresh = fresh;
}

/* Byte offset of the code point before `pos`. */
static size_t prev_cp(const struct line *l, size_t pos)
{
    if (pos == 0 || pos > l->len || pos > sizeof l->buf - 1)
        return 0;
    pos--;
    while (pos > 0 && ((unsigned char) l->buf[pos] & 0xc0) == 0x80)
        pos--;
    return pos;
}

static size_t next_cp(const struct line *l, size_t pos)
{
    size_t n;

    if (pos >= l->len)
        return l->len;
    n = pt_utf8_decode(l->buf + pos, l->len - pos, NULL);
    return pos + (n ? n : 1);
}

/* Encodes a code point as UTF-8; returns the length (0 if invalid). */
static size_t encode_cp(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xc0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp >= 0xd800 && cp <= 0xdfff)
        return 0;
    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    if (cp <= 0x10ffff) {
        out[0] = (char) (0xf0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
    }
    return 0;
}

bool line_key(struct line *l, int is_key, unsigned int ch)
{
    if (is_key) {
        switch (ch) {
        case KEY_LEFT:
            l->pos = prev_cp(l, l->pos);
            l->fresh = false;
            return true;
        case KEY_RIGHT:
            l->pos = next_cp(l, l->pos);
            l->fresh = false;
            return true;
        case KEY_HOME:
            l->pos = 0;
            l->fresh = false;
            return true;
        case KEY_END:
            l->pos = l->len;
            l->fresh = false;
            return true;
        case KEY_BACKSPACE:
            break;
        case KEY_DC: {
            size_t n = next_cp(l, l->pos);

            memmove(l->buf + l->pos, l->buf + n, l->len - n + 1);
            l->len -= n - l->pos;
            l->fresh = false;
            return true;
        }
        default:
            return false;
        }
    }
    if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 127 || ch == 8))) {
        size_t p;

        if (l->fresh) {
            line_set(l, "", false);
            return true;
        }
        p = prev_cp(l, l->pos);
        memmove(l->buf + p, l->buf + l->pos, l->len - l->pos + 1);
        l->len -= l->pos - p;
        l->pos = p;
        return true;
    }
    if (!is_key && ch == 21) { /* ^U clears */
        line_set(l, "", false);
        return true;
    }
    if (!is_key && ch >= 0x20 && ch != 0x7f && !(ch >= 0x80 && ch < 0xa0)) {
        char enc[4];
        size_t n = encode_cp(ch, enc);

        if (n == 0)
            return true;
        if (l->fresh)
            line_set(l, "", false);
        if (l->len + n >= sizeof l->buf)
            return true; /* full: ignore */
        memmove(l->buf + l->pos + n, l->buf + l->pos, l->len - l->pos + 1);
        memcpy(l->buf + l->pos, enc, n);
        l->len += n;
        l->pos += n;
        return true;
    }
    return false;
}

void form_open(struct form *fm, const char *last_currency)
{
    memset(fm, 0, sizeof *fm);
    line_set(&fm->f[FF_CURRENCY], last_currency && last_currency[0] ? last_currency : "EUR", true);
    line_set(&fm->f[FF_METHOD], "other", true);
    util_uuid4(fm->idem_key);
    fm->cur = FF_PAYER;
}

/* Trims surrounding blanks into `out`. */
static void trimmed(const struct line *l, char *out, size_t cap)
{
    const char *s = l->buf, *e = l->buf + l->len;

    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if ((size_t) (e - s) >= cap)
        e = s + cap - 1;
    memcpy(out, s, (size_t) (e - s));
    out[e - s] = '\0';
}

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char) toupper((unsigned char) *s);
}

int form_check(struct form *fm, int field)
{
    char v[FORM_TEXT_MAX];
    pt_problem pr;
    int rc = 0;

    memset(&pr, 0, sizeof pr);
    fm->err[field][0] = '\0';
    trimmed(&fm->f[field], v, sizeof v);
    switch (field) {
    case FF_PAYER:
        rc = pt_validate_name("payer", fm->f[field].buf, &pr);
        break;
    case FF_PAYEE:
        rc = pt_validate_name("payee", fm->f[field].buf, &pr);
        break;
    case FF_AMOUNT: {
        char cur[FORM_TEXT_MAX];
        pt_problem cp;
        int64_t minor = 0;

        trimmed(&fm->f[FF_CURRENCY], cur, sizeof cur);
        upper(cur);
        if (v[0] == '\0') {
            snprintf(fm->err[field], sizeof fm->err[field], "amount is required, e.g. 12.50");
            return -1;
        }
        memset(&cp, 0, sizeof cp);
        if (pt_validate_currency(cur, &cp) != 0) {
            /* judge the amount as if for a 2-decimal currency until the
             * currency is right; the currency field shows its own error */
            rc = pt_validate_amount_text(v, "EUR", &minor, &pr);
        } else {
            rc = pt_validate_amount_text(v, cur, &minor, &pr);
        }
        if (rc == 0)
            rc = pt_validate_amount(minor, &pr);
        break;
    }
    case FF_CURRENCY:
        upper(v);
        if (v[0] == '\0') {
            snprintf(fm->err[field], sizeof fm->err[field], "currency is required, e.g. EUR");
            return -1;
        }
        rc = pt_validate_currency(v, &pr);
        break;
    case FF_METHOD: {
        pt_method m;

        if (v[0] != '\0' && !pt_method_parse(v, &m)) {
            snprintf(fm->err[field], sizeof fm->err[field],
                     "method must be one of card, bank_transfer, cash, wallet, other");
            return -1;
        }
        break;
    }
    case FF_REFERENCE:
        if (v[0] != '\0')
            rc = pt_validate_optional_text("reference", fm->f[field].buf, PT_REFERENCE_MAX, &pr);
        break;
    case FF_DESCRIPTION:
        if (v[0] != '\0')
            rc =
                pt_validate_optional_text("description", fm->f[field].buf, PT_DESCRIPTION_MAX, &pr);
        break;
    default:
        break;
    }
    if (rc != 0)
        util_copy(fm->err[field], sizeof fm->err[field], pr.message[0] ? pr.message : "invalid");
    return rc;
}

int form_check_all(struct form *fm)
{
    int first = -1;

    for (int i = 0; i < FF_COUNT; i++) {
        fm->touched[i] = true;
        if (form_check(fm, i) != 0 && first < 0)
            first = i;
    }
    return first;
}

cJSON *form_build(struct form *fm)
{
    char v[FORM_TEXT_MAX], cur[8];
    cJSON *msg, *p;
    int64_t minor = 0;
    pt_problem pr;

    if (form_check_all(fm) >= 0)
        return NULL;
    msg = cJSON_CreateObject();
    if (msg == NULL)
        return NULL;
    cJSON_AddStringToObject(msg, "idempotency_key", fm->idem_key);
    p = cJSON_AddObjectToObject(msg, "payment");
    if (p == NULL) {
        cJSON_Delete(msg);
        return NULL;
    }
    cJSON_AddStringToObject(p, "payer", fm->f[FF_PAYER].buf);
    cJSON_AddStringToObject(p, "payee", fm->f[FF_PAYEE].buf);
    trimmed(&fm->f[FF_CURRENCY], cur, sizeof cur);
    upper(cur);
    trimmed(&fm->f[FF_AMOUNT], v, sizeof v);
    memset(&pr, 0, sizeof pr);
    if (pt_validate_amount_text(v, cur, &minor, &pr) != 0) {
        cJSON_Delete(msg);
        return NULL;
    }
    cJSON_AddItemToObject(p, "amount", pt_json_int64(minor));
    cJSON_AddStringToObject(p, "currency", cur);
    trimmed(&fm->f[FF_METHOD], v, sizeof v);
    cJSON_AddStringToObject(p, "method", v[0] ? v : "other");
    if (fm->f[FF_REFERENCE].len > 0) {
        trimmed(&fm->f[FF_REFERENCE], v, sizeof v);
        if (v[0])
            cJSON_AddStringToObject(p, "reference", fm->f[FF_REFERENCE].buf);
    }
    if (fm->f[FF_DESCRIPTION].len > 0) {
        trimmed(&fm->f[FF_DESCRIPTION], v, sizeof v);
        if (v[0])
            cJSON_AddStringToObject(p, "description", fm->f[FF_DESCRIPTION].buf);
    }
    return msg;
}
