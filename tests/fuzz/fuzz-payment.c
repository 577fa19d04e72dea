/*
 * fuzz-payment.c - libFuzzer target for request bodies: the strict parser,
 * canonical text, create and PATCH validation, and applying a PATCH.
 *
 * Besides crashes and leaks (ASan, UBSan) it checks properties that must
 * hold for any input: every refusal carries a problem; canonical text is a
 * fixed point; an accepted create is within the contract's limits and
 * survives payment -> JSON -> payment; a PATCH either applies or leaves
 * the stored payment exactly as it was, and "no change" means equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "money.h"
#include "pjson.h"
#include "utf8.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Canonical text must parse back to the same canonical text. */
static void check_canonical(const cJSON *tree)
{
    pt_problem pr = {0};
    char *once = pt_json_canonical(tree);
    char *twice;
    cJSON *again;

    if (once == NULL)
        abort();
    again = pt_json_parse_object(once, strlen(once), &pr);
    if (again == NULL)
        abort();
    twice = pt_json_canonical(again);
    if (twice == NULL || strcmp(once, twice) != 0)
        abort();
    free(twice);
    cJSON_Delete(again);
    free(once);
}

/* An accepted create obeys the contract and round-trips through JSON. */
static void check_created(pt_payment *p)
{
    pt_payment back;
    cJSON *json;

    if (p->amount < 1 || p->amount > PT_AMOUNT_MAX || pt_currency_find(p->currency) == NULL)
        abort();
    if (p->payer == NULL || p->payee == NULL || pt_utf8_length(p->payer) > PT_NAME_MAX ||
        pt_utf8_has_control(p->payee) || p->metadata_count > PT_METADATA_MAX_KEYS)
        abort();
    if (p->status != PT_STATUS_PENDING && p->status != PT_STATUS_SETTLED)
        abort();
    strcpy(p->id, "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11");
    p->version = 1;
    strcpy(p->created_at, "2026-11-24T12:00:00.123Z");
    strcpy(p->updated_at, "2026-11-24T12:00:00.123Z");
    json = pt_payment_to_json(p);
    if (json == NULL)
        abort();
    if (pt_payment_from_json(json, &back) != 0 || !pt_payment_equal(p, &back))
        abort();
    pt_payment_clear(&back);
    cJSON_Delete(json);
}

/* Applies the patch to a stored payment in each status. */
static void check_apply(const pt_payment *patch, unsigned changes)
{
    static const char base[] =
        "{\"amount\":1250,\"currency\":\"EUR\",\"payer\":\"ACME\","
        "\"payee\":\"Globex\",\"reference\":\"R\",\"metadata\":{\"a\":\"1\"}}";
    pt_problem pr = {0};
    cJSON *tree = pt_json_parse_object(base, sizeof base - 1, &pr);
    pt_payment stored;

    if (tree == NULL || pt_validate_create(tree, base, sizeof base - 1, &stored, &pr) != 0)
        abort();
    cJSON_Delete(tree);
    stored.version = 7;
    for (int s = 0; s < PT_STATUS_COUNT; s++) {
        pt_payment cur;
        pt_payment before;
        int changed = -1;
        int rc;

        stored.status = (pt_status) s;
        if (pt_payment_copy(&cur, &stored) != 0 || pt_payment_copy(&before, &stored) != 0)
            abort();
        rc = pt_validate_apply(&cur, patch, changes, &changed, &pr);
        if (rc != 0 && (pr.code == NULL || !pt_payment_equal(&cur, &before)))
            abort();
        if (rc == 0 && (cur.version != 7 || (changed == 0) != pt_payment_equal(&cur, &before)))
            abort();
        if (rc == 0 && !pt_status_can_change(before.status, cur.status))
            abort();
        pt_payment_clear(&cur);
        pt_payment_clear(&before);
    }
    pt_payment_clear(&stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    pt_problem pr = {0};
    pt_payment p;
    unsigned changes = 0;
    cJSON *tree = pt_json_parse_object(text, size, &pr);

    if (tree == NULL) {
        if (pr.code == NULL || strcmp(pr.code, "malformed_json") != 0)
            abort();
        return 0;
    }
    check_canonical(tree);

    pr.code = NULL;
    if (pt_validate_create(tree, text, size, &p, &pr) == 0)
        check_created(&p);
    else if (pr.code == NULL)
        abort();
    pt_payment_clear(&p);

    pr.code = NULL;
    if (pt_validate_patch(tree, text, size, &p, &changes, &pr) == 0)
        check_apply(&p, changes);
    else if (pr.code == NULL)
        abort();
    pt_payment_clear(&p);
    cJSON_Delete(tree);
    return 0;
}
