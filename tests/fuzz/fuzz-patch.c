/*
 * fuzz-patch.c - libFuzzer target for PATCH /v1/payments/{id}: the strict
 * parser, pt_validate_patch and pt_validate_apply against a fixed valid
 * stored payment.
 *
 * Input: the first byte picks the stored payment's status (byte % 5) and,
 * with bit 3, drops its optional fields (reference, description,
 * metadata); the rest is the PATCH body. Checks that:
 * - a refusal carries a problem (malformed_json for the parser);
 * - an accepted patch sets only known change bits, with valid values;
 * - applying either fails leaving the payment exactly as it was, or
 *   succeeds with: the untouched fields and the server-owned ones as they
 *   were, each changed field holding the patch's value, an allowed
 *   transition (or none), "changed" meaning "differs", and applying the
 *   same patch again being a no-op.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "money.h"
#include "payment.h"
#include "pjson_parse.h"
#include "utf8.h"
#include "validate.h"

#define CHANGE_ALL                                                                       \
    (PT_CHANGE_AMOUNT | PT_CHANGE_CURRENCY | PT_CHANGE_PAYER | PT_CHANGE_PAYEE |         \
     PT_CHANGE_REFERENCE | PT_CHANGE_DESCRIPTION | PT_CHANGE_METHOD | PT_CHANGE_STATUS | \
     PT_CHANGE_METADATA)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_text(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

/* The stored payment, as the store would hand it to the validator. */
static void make_stored(pt_payment *p, pt_status status, int bare)
{
    memset(p, 0, sizeof *p);
    strcpy(p->id, "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11");
    p->amount = 125000;
    strcpy(p->currency, "EUR");
    p->payer = dup_text("ACME GmbH");
    p->payee = dup_text("Globex Ltd");
    p->method = PT_METHOD_BANK_TRANSFER;
    p->status = status;
    p->version = 7;
    strcpy(p->created_at, "2026-11-24T12:00:00.123Z");
    strcpy(p->updated_at, "2026-11-25T08:30:00.456Z");
    if (bare)
        return;
    p->reference = dup_text("INV-2026-0042");
    p->description = dup_text("November invoice");
    p->metadata = calloc(1, sizeof *p->metadata);
    if (p->metadata == NULL)
        abort();
    p->metadata[0].key = dup_text("cost_center");
    p->metadata[0].value = dup_text("42");
    p->metadata_count = 1;
}

static int same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_text(const char *s, size_t max_chars)
{
    if (s == NULL || !pt_utf8_valid(s, strlen(s)) || pt_utf8_has_control(s) ||
        pt_utf8_length(s) > max_chars)
        abort();
}

/* The description is prose: line breaks and tabs are allowed in it. */
static void check_prose(const char *s, size_t max_chars)
{
    char *flat = dup_text(s);

    for (char *c = flat; *c; c++)
        if (*c == '\t' || *c == '\n' || *c == '\r')
            *c = ' ';
    check_text(flat, max_chars);
    free(flat);
}

/* The values of an accepted patch are within the contract. */
static void check_patch(const pt_payment *patch, unsigned changes)
{
    pt_status st;
    pt_method m;

    if ((changes & ~(unsigned) CHANGE_ALL) != 0)
        abort();
    if ((changes & PT_CHANGE_AMOUNT) && (patch->amount < 1 || patch->amount > PT_AMOUNT_MAX))
        abort();
    if ((changes & PT_CHANGE_CURRENCY) && pt_currency_find(patch->currency) == NULL)
        abort();
    if (changes & PT_CHANGE_PAYER)
        check_text(patch->payer, PT_NAME_MAX);
    if (changes & PT_CHANGE_PAYEE)
        check_text(patch->payee, PT_NAME_MAX);
    if ((changes & PT_CHANGE_REFERENCE) && patch->reference)
        check_text(patch->reference, PT_REFERENCE_MAX);
    if ((changes & PT_CHANGE_DESCRIPTION) && patch->description)
        check_prose(patch->description, PT_DESCRIPTION_MAX);
    if ((changes & PT_CHANGE_METHOD) &&
        (patch->method >= PT_METHOD_COUNT || !pt_method_parse(pt_method_name(patch->method), &m)))
        abort();
    if ((changes & PT_CHANGE_STATUS) &&
        (patch->status >= PT_STATUS_COUNT || !pt_status_parse(pt_status_name(patch->status), &st)))
        abort();
    if (changes & PT_CHANGE_METADATA) {
        if (patch->metadata_count < 0 || patch->metadata_count > PT_METADATA_MAX_KEYS)
            abort();
        for (int i = 0; i < patch->metadata_count; i++) {
            check_text(patch->metadata[i].key, PT_METADATA_KEY_MAX);
            check_text(patch->metadata[i].value, PT_METADATA_VALUE_MAX);
        }
    }
}

/* After a successful apply: `cur` is `before` with the patch's fields. */
static void check_applied(const pt_payment *before, const pt_payment *cur, const pt_payment *patch,
                          unsigned changes)
{
    if (strcmp(cur->id, before->id) != 0 || cur->version != before->version ||
        strcmp(cur->created_at, before->created_at) != 0 ||
        strcmp(cur->updated_at, before->updated_at) != 0)
        abort();
    if (cur->amount != ((changes & PT_CHANGE_AMOUNT) ? patch->amount : before->amount))
        abort();
    if (strcmp(cur->currency,
               (changes & PT_CHANGE_CURRENCY) ? patch->currency : before->currency) != 0)
        abort();
    if (!same_text(cur->payer, (changes & PT_CHANGE_PAYER) ? patch->payer : before->payer) ||
        !same_text(cur->payee, (changes & PT_CHANGE_PAYEE) ? patch->payee : before->payee))
        abort();
    if (!same_text(cur->reference,
                   (changes & PT_CHANGE_REFERENCE) ? patch->reference : before->reference) ||
        !same_text(cur->description,
                   (changes & PT_CHANGE_DESCRIPTION) ? patch->description : before->description))
        abort();
    if (cur->method != ((changes & PT_CHANGE_METHOD) ? patch->method : before->method) ||
        cur->status != ((changes & PT_CHANGE_STATUS) ? patch->status : before->status))
        abort();
    if (!pt_payment_metadata_equal(cur, (changes & PT_CHANGE_METADATA) ? patch : before))
        abort();
    if (cur->status != before->status && !pt_status_can_change(before->status, cur->status))
        abort();
}

static void check_apply(const pt_payment *patch, unsigned changes, pt_status status, int bare)
{
    pt_payment cur;
    pt_payment before;
    pt_problem pr = {0};
    int changed = -1;
    int rc;

    make_stored(&cur, status, bare);
    if (pt_payment_copy(&before, &cur) != 0)
        abort();
    rc = pt_validate_apply(&cur, patch, changes, &changed, &pr);
    if (rc != 0) {
        if (rc != -1 || pr.code == NULL || !pt_payment_equal(&cur, &before))
            abort();
    } else {
        pt_payment once;
        int again = -1;

        if ((changed == 0) != pt_payment_equal(&cur, &before))
            abort();
        check_applied(&before, &cur, patch, changes);
        /* the same PATCH again changes nothing (a retried request) */
        if (pt_payment_copy(&once, &cur) != 0)
            abort();
        if (pt_validate_apply(&cur, patch, changes, &again, &pr) != 0 || again != 0 ||
            !pt_payment_equal(&cur, &once))
            abort();
        pt_payment_clear(&once);
    }
    pt_payment_clear(&before);
    pt_payment_clear(&cur);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;
    pt_problem pr = {0};
    pt_payment patch;
    unsigned changes = 0;
    cJSON *tree;
    pt_status status;
    int bare;

    if (size < 1)
        return 0;
    status = (pt_status) (data[0] % PT_STATUS_COUNT);
    bare = (data[0] & 8) != 0;
    text = (const char *) data + 1;
    tree = pt_json_parse_object(text, size - 1, &pr);
    if (tree == NULL) {
        if (pr.code == NULL ||
            (strcmp(pr.code, "malformed_json") != 0 && strcmp(pr.code, "internal") != 0))
            abort();
        return 0;
    }
    pr.code = NULL;
    if (pt_validate_patch(tree, text, size - 1, &patch, &changes, &pr) == 0) {
        check_patch(&patch, changes);
        check_apply(&patch, changes, status, bare);
    } else if (pr.code == NULL) {
        abort();
    }
    pt_payment_clear(&patch);
    cJSON_Delete(tree);
    return 0;
}
