/*
 * payment.c - the payment model: wire names, the status state machine, and
 * owning copies of a payment.
 */
#include "payment.h"

#include <stdlib.h>
#include <string.h>

/* Indexed by pt_method / pt_status; the order must follow the enums. */
static const char *const method_names[PT_METHOD_COUNT] = {
    "card", "bank_transfer", "cash", "wallet", "other",
};

static const char *const status_names[PT_STATUS_COUNT] = {
    "pending", "settled", "failed", "cancelled", "refunded",
};

static const char *const reason_names[PT_REASON_COUNT] = {
    "requested_by_customer",
    "duplicate",
    "fraudulent",
    "other",
};

const char *pt_reason_name(pt_refund_reason r)
{
    if ((unsigned) r >= PT_REASON_COUNT)
        return "other";
    return reason_names[r];
}

bool pt_reason_parse(const char *name, pt_refund_reason *out)
{
    if (name == NULL)
        return false;
    for (int i = 0; i < PT_REASON_COUNT; i++) {
        if (strcmp(name, reason_names[i]) == 0) {
            if (out)
                *out = (pt_refund_reason) i;
            return true;
        }
    }
    return false;
}

const char *pt_method_name(pt_method m)
{
    /* Cast first: an out-of-range value from a corrupt struct must not
     * index past the table. */
    if ((unsigned) m >= PT_METHOD_COUNT)
        return "other";
    return method_names[m];
}

const char *pt_status_name(pt_status s)
{
    if ((unsigned) s >= PT_STATUS_COUNT)
        return "pending";
    return status_names[s];
}

bool pt_method_parse(const char *name, pt_method *out)
{
    if (name == NULL)
        return false;
    for (int i = 0; i < PT_METHOD_COUNT; i++) {
        if (strcmp(name, method_names[i]) == 0) {
            if (out)
                *out = (pt_method) i;
            return true;
        }
    }
    return false;
}

bool pt_status_parse(const char *name, pt_status *out)
{
    if (name == NULL)
        return false;
    for (int i = 0; i < PT_STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            if (out)
                *out = (pt_status) i;
            return true;
        }
    }
    return false;
}

bool pt_status_can_change(pt_status from, pt_status to)
{
    if ((unsigned) from >= PT_STATUS_COUNT || (unsigned) to >= PT_STATUS_COUNT)
        return false;
    if (from == to)
        return true; /* the contract: setting the current status is no transition */
    switch (from) {
    case PT_STATUS_PENDING:
        return to == PT_STATUS_SETTLED || to == PT_STATUS_FAILED || to == PT_STATUS_CANCELLED;
    case PT_STATUS_SETTLED:
        return to == PT_STATUS_REFUNDED;
    default:
        return false; /* failed, cancelled and refunded are final */
    }
}

int pt_status_next(pt_status from, pt_status *out)
{
    int n = 0;

    /* Derived from pt_status_can_change so the two can never disagree. */
    for (int i = 0; i < PT_STATUS_COUNT; i++) {
        pt_status to = (pt_status) i;
        if (to != from && pt_status_can_change(from, to)) {
            if (out)
                out[n] = to;
            n++;
        }
    }
    return n;
}

void pt_payment_clear(pt_payment *p)
{
    if (p == NULL)
        return;
    free(p->payer);
    free(p->payee);
    free(p->reference);
    free(p->description);
    for (int i = 0; i < p->metadata_count; i++) {
        free(p->metadata[i].key);
        free(p->metadata[i].value);
    }
    free(p->metadata);
    memset(p, 0, sizeof *p);
}

/* strdup that keeps NULL as NULL; *failed is set when a non-NULL string
 * could not be copied, so a caller can chain several copies and check
 * once. */
static char *dup_or_null(const char *s, bool *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

int pt_payment_copy(pt_payment *dst, const pt_payment *src)
{
    bool failed = false;

    if (dst == NULL || src == NULL)
        return -1;
    /* Fixed-size fields and scalars come over with the struct; every
     * pointer is then replaced by its own copy. */
    *dst = *src;
    dst->payer = dup_or_null(src->payer, &failed);
    dst->payee = dup_or_null(src->payee, &failed);
    dst->reference = dup_or_null(src->reference, &failed);
    dst->description = dup_or_null(src->description, &failed);
    dst->metadata = NULL;
    dst->metadata_count = 0;
    if (!failed && src->metadata_count > 0 && src->metadata != NULL) {
        dst->metadata = calloc((size_t) src->metadata_count, sizeof *dst->metadata);
        if (dst->metadata == NULL) {
            failed = true;
        } else {
            /* Count as we go so a failure half-way frees only what exists. */
            for (int i = 0; i < src->metadata_count && !failed; i++) {
                dst->metadata[i].key = dup_or_null(src->metadata[i].key, &failed);
                dst->metadata[i].value = dup_or_null(src->metadata[i].value, &failed);
                dst->metadata_count = i + 1;
            }
        }
    }
    if (failed) {
        pt_payment_clear(dst);
        return -1;
    }
    return 0;
}

/* NULL-aware string equality: two absent values are equal. */
static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The value stored under `key`, or NULL. */
static const char *meta_lookup(const pt_payment *p, const char *key)
{
    for (int i = 0; i < p->metadata_count; i++) {
        if (str_equal(p->metadata[i].key, key))
            return p->metadata[i].value;
    }
    return NULL;
}

bool pt_payment_metadata_equal(const pt_payment *a, const pt_payment *b)
{
    if (a->metadata_count != b->metadata_count)
        return false;
    /* Keys are unique in a validated payment, so same size plus every
     * pair of `a` found in `b` means the same set. */
    for (int i = 0; i < a->metadata_count; i++) {
        const char *v = meta_lookup(b, a->metadata[i].key);
        if (v == NULL || !str_equal(v, a->metadata[i].value))
            return false;
    }
    return true;
}

bool pt_payment_equal(const pt_payment *a, const pt_payment *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a->id, b->id) == 0 && a->amount == b->amount &&
           a->amount_refunded == b->amount_refunded && strcmp(a->currency, b->currency) == 0 &&
           str_equal(a->payer, b->payer) && str_equal(a->payee, b->payee) &&
           str_equal(a->reference, b->reference) && str_equal(a->description, b->description) &&
           a->method == b->method && a->status == b->status && pt_payment_metadata_equal(a, b) &&
           a->version == b->version && strcmp(a->created_at, b->created_at) == 0 &&
           strcmp(a->updated_at, b->updated_at) == 0;
}
