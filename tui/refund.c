/*
 * refund.c - the refund dialog (key R): amount, reason, note.
 *
 * The amount is typed in major units and judged on every key press with
 * the payment's currency exponent (common/validate.h, the server's own
 * rules) and against what is left to refund (amount - amount_refunded at
 * the version the dialog opened on); it starts as what is left. The
 * request is the WebSocket `refund` message with the payment's version as
 * if_version and an idempotency key made when the dialog opened, so Enter
 * after a dropped connection retries safely.
 */
#include <stdio.h>
#include <string.h>

#include "currency.h"
#include "money.h"
#include "pjson.h"
#include "tui.h"
#include "validate.h"

static const char *const labels[RF_COUNT] = {"Amount", "Reason", "Note"};

const char *refund_reason_name(int i)
{
    return pt_reason_name((pt_refund_reason) i);
}

const char *refund_label(int field)
{
    return (field >= 0 && field < RF_COUNT) ? labels[field] : "";
}

static int exponent_of(const char *currency)
{
    const pt_currency *c = pt_currency_find(currency);

    return c ? c->exponent : 0;
}

void refund_format(const struct refund_dlg *d, int64_t minor, bool group, char *buf, size_t cap)
{
    if (pt_money_format(minor, exponent_of(d->currency), group ? 1 : 0, buf, cap) < 0)
        snprintf(buf, cap, "?");
}

int refund_open(struct refund_dlg *d, const pt_payment *p, char *why, size_t cap)
{
    char left[48];

    if (p->status != PT_STATUS_SETTLED) {
        snprintf(why, cap, "only a settled payment can be refunded; this one is %s",
                 pt_status_name(p->status));
        return -1;
    }
    if (p->amount_refunded >= p->amount) {
        snprintf(why, cap, "nothing is left to refund");
        return -1;
    }
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", p->id);
    snprintf(d->currency, sizeof d->currency, "%s", p->currency);
    util_copy(d->who, sizeof d->who, p->payer);
    d->version = p->version;
    d->amount = p->amount;
    d->left = p->amount - p->amount_refunded;
    d->reason = PT_REASON_OTHER; /* the contract's default */
    refund_format(d, d->left, false, left, sizeof left);
    line_set(&d->f[RF_AMOUNT], left, true);
    util_uuid4(d->idem_key);
    return 0;
}

/* Judges the amount text into *minor_out; 0, or -1 with d->err set. */
static int check_amount(struct refund_dlg *d, int64_t *minor_out)
{
    const struct line *l = &d->f[RF_AMOUNT];
    char *err = d->err[RF_AMOUNT], left[48];
    pt_problem pr;
    int64_t minor = 0;

    memset(&pr, 0, sizeof pr);
    refund_format(d, d->left, true, left, sizeof left);
    if (pt_validate_amount_text(l->buf, d->currency, &minor, &pr) != 0) {
        util_copy(err, TUI_ERROR_MAX, pr.message[0] ? pr.message : "invalid amount");
        return -1;
    }
    if (minor < 1) {
        snprintf(err, TUI_ERROR_MAX, "the amount must be more than zero");
        return -1;
    }
    if (minor > d->left) {
        snprintf(err, TUI_ERROR_MAX, "at most %s %s is left to refund", left, d->currency);
        return -1;
    }
    *minor_out = minor;
    return 0;
}

int refund_check(struct refund_dlg *d, int field)
{
    pt_problem pr;
    int64_t minor;

    d->err[field][0] = '\0';
    memset(&pr, 0, sizeof pr);
    switch (field) {
    case RF_AMOUNT:
        return check_amount(d, &minor);
    case RF_NOTE:
        if (d->f[RF_NOTE].len > 0 &&
            pt_validate_optional_text("note", d->f[RF_NOTE].buf, PT_REFUND_NOTE_MAX, &pr) != 0) {
            util_copy(d->err[field], TUI_ERROR_MAX, pr.message[0] ? pr.message : "invalid note");
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

int refund_check_all(struct refund_dlg *d)
{
    int first = -1;

    for (int i = 0; i < RF_COUNT; i++)
        if (refund_check(d, i) != 0 && first < 0)
            first = i;
    return first;
}

cJSON *refund_build(struct refund_dlg *d)
{
    cJSON *msg, *body;
    int64_t minor = 0;

    if (refund_check_all(d) >= 0 || check_amount(d, &minor) != 0)
        return NULL;
    msg = cJSON_CreateObject();
    if (msg == NULL)
        return NULL;
    body = cJSON_CreateObject();
    if (body == NULL || !cJSON_AddStringToObject(msg, "id", d->id) ||
        !cJSON_AddItemToObject(msg, "if_version", pt_json_int64(d->version)) ||
        !cJSON_AddStringToObject(msg, "idempotency_key", d->idem_key) ||
        !cJSON_AddItemToObject(msg, "refund", body)) {
        cJSON_Delete(body);
        cJSON_Delete(msg);
        return NULL;
    }
    cJSON_AddItemToObject(body, "amount", pt_json_int64(minor));
    cJSON_AddStringToObject(body, "reason", refund_reason_name(d->reason));
    if (d->f[RF_NOTE].len > 0)
        cJSON_AddStringToObject(body, "note", d->f[RF_NOTE].buf);
    return msg;
}

bool refund_reason_key(struct refund_dlg *d, unsigned int ch, int step)
{
    if (step != 0) {
        d->reason = (d->reason + REFUND_REASONS + step) % REFUND_REASONS;
        return true;
    }
    for (int i = 0; i < REFUND_REASONS; i++) {
        if ((unsigned char) refund_reason_name(i)[0] == ch) {
            d->reason = i;
            return true;
        }
    }
    return false;
}
