/*
 * test-payment.c - wire names, the status state machine, and deep copies.
 */
#include <stdlib.h>
#include <string.h>

#include "payment.h"
#include "tap.h"

int main(void)
{
    tap t = {0};
    pt_status next[PT_STATUS_COUNT];
    pt_method m = PT_METHOD_CASH;
    pt_status s = PT_STATUS_FAILED;
    pt_payment a = {0};
    pt_payment b = {0};
    pt_payment zero = {0};

    static const char *const methods[] = {"card", "bank_transfer", "cash", "wallet", "other"};
    static const char *const statuses[] = {"pending", "settled", "failed", "cancelled", "refunded"};
    /* allowed[from][to], the contract's table; the diagonal is "no change". */
    static const bool allowed[PT_STATUS_COUNT][PT_STATUS_COUNT] = {
        {true, true, true, true, false},    /* pending */
        {false, true, false, false, true},  /* settled */
        {false, false, true, false, false}, /* failed */
        {false, false, false, true, false}, /* cancelled */
        {false, false, false, false, true}, /* refunded */
    };

    for (int i = 0; i < PT_METHOD_COUNT; i++) {
        pt_method got = PT_METHOD_OTHER;
        tap_is_str(&t, pt_method_name((pt_method) i), methods[i], "method name %d", i);
        tap_ok(&t, pt_method_parse(methods[i], &got) && got == (pt_method) i, "parse method %s",
               methods[i]);
    }
    for (int i = 0; i < PT_STATUS_COUNT; i++) {
        pt_status got = PT_STATUS_PENDING;
        tap_is_str(&t, pt_status_name((pt_status) i), statuses[i], "status name %d", i);
        tap_ok(&t, pt_status_parse(statuses[i], &got) && got == (pt_status) i, "parse status %s",
               statuses[i]);
    }
    tap_ok(&t, !pt_method_parse("Card", &m) && m == PT_METHOD_CASH,
           "method names are case sensitive and a miss leaves *out alone");
    tap_ok(&t, !pt_method_parse("", &m) && !pt_method_parse(NULL, &m), "empty/NULL method");
    tap_ok(&t, !pt_status_parse("paid", &s) && s == PT_STATUS_FAILED, "unknown status refused");

    for (int f = 0; f < PT_STATUS_COUNT; f++) {
        int want_n = 0;
        for (int to = 0; to < PT_STATUS_COUNT; to++) {
            tap_ok(&t, pt_status_can_change((pt_status) f, (pt_status) to) == allowed[f][to],
                   "%s -> %s is %s", statuses[f], statuses[to],
                   allowed[f][to] ? "allowed" : "refused");
            if (to != f && allowed[f][to])
                want_n++;
        }
        tap_is_i64(&t, pt_status_next((pt_status) f, next), want_n, "next(%s) count", statuses[f]);
    }
    pt_status_next(PT_STATUS_PENDING, next);
    tap_ok(&t,
           next[0] == PT_STATUS_SETTLED && next[1] == PT_STATUS_FAILED &&
               next[2] == PT_STATUS_CANCELLED,
           "next(pending) = settled, failed, cancelled");
    tap_ok(&t, !pt_status_can_change(PT_STATUS_COUNT, PT_STATUS_PENDING),
           "out-of-range status refused");

    /* Deep copy and equality. */
    strcpy(a.id, "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11");
    a.amount = 125000;
    strcpy(a.currency, "EUR");
    a.payer = strdup("ACME GmbH");
    a.payee = strdup("Globex Ltd");
    a.reference = strdup("INV-2026-0042");
    a.method = PT_METHOD_BANK_TRANSFER;
    a.metadata = calloc(2, sizeof *a.metadata);
    a.metadata_count = 2;
    a.metadata[0].key = strdup("cost_center");
    a.metadata[0].value = strdup("42");
    a.metadata[1].key = strdup("team");
    a.metadata[1].value = strdup("ops");
    a.version = 3;
    tap_ok(&t, pt_payment_copy(&b, &a) == 0, "copy succeeds");
    tap_ok(&t, pt_payment_equal(&a, &b), "copy is equal");
    tap_ok(&t,
           b.payer != a.payer && b.metadata != a.metadata && b.metadata[0].key != a.metadata[0].key,
           "copy owns its own strings");
    tap_ok(&t, b.description == NULL, "NULL stays NULL in a copy");
    {
        /* Same pairs in another order are equal metadata. */
        pt_meta_entry tmp = b.metadata[0];
        b.metadata[0] = b.metadata[1];
        b.metadata[1] = tmp;
        tap_ok(&t, pt_payment_metadata_equal(&a, &b), "metadata order does not matter");
        free(b.metadata[0].value);
        b.metadata[0].value = strdup("dev");
        tap_ok(&t, !pt_payment_metadata_equal(&a, &b) && !pt_payment_equal(&a, &b),
               "a different value is a difference");
    }
    b.amount++;
    tap_ok(&t, !pt_payment_equal(&a, &b), "a different amount is a difference");
    pt_payment_clear(&b);
    tap_ok(&t, memcmp(&b, &zero, sizeof b) == 0, "clear zeroes the struct");
    pt_payment_clear(&b);
    tap_ok(&t, true, "clear twice is safe");
    pt_payment_clear(&a);
    tap_ok(&t, pt_payment_equal(&a, &b), "two cleared payments are equal");
    return tap_done(&t);
}
