/*
 * payment.h - the payment model shared by the server and the TUI.
 *
 * Owns: struct pt_payment and its field limits, the method and status
 * enumerations with their wire names, and the status state machine.
 */
#ifndef PT_PAYMENT_H
#define PT_PAYMENT_H

#include <stdbool.h>
#include <stdint.h>

#define PT_ID_LEN             36  /* canonical UUID text */
#define PT_NAME_MAX           200 /* payer, payee: code points */
#define PT_REFERENCE_MAX      100
#define PT_DESCRIPTION_MAX    1000
#define PT_METADATA_MAX_KEYS  20
#define PT_METADATA_KEY_MAX   40
#define PT_METADATA_VALUE_MAX 500
#define PT_TIME_LEN           24 /* "2026-11-24T12:00:00.123Z" */

typedef enum pt_method {
    PT_METHOD_CARD,
    PT_METHOD_BANK_TRANSFER,
    PT_METHOD_CASH,
    PT_METHOD_WALLET,
    PT_METHOD_OTHER,
    PT_METHOD_COUNT
} pt_method;

typedef enum pt_status {
    PT_STATUS_PENDING,
    PT_STATUS_SETTLED,
    PT_STATUS_FAILED,
    PT_STATUS_CANCELLED,
    PT_STATUS_REFUNDED,
    PT_STATUS_COUNT
} pt_status;

/* v1.1: why a payment was refunded. */
typedef enum pt_refund_reason {
    PT_REASON_REQUESTED_BY_CUSTOMER,
    PT_REASON_DUPLICATE,
    PT_REASON_FRAUDULENT,
    PT_REASON_OTHER,
    PT_REASON_COUNT
} pt_refund_reason;

#define PT_REFUND_NOTE_MAX 500 /* code points */

/* One metadata entry; both strings owned by the payment. */
typedef struct pt_meta_entry {
    char *key;
    char *value;
} pt_meta_entry;

/*
 * A payment. Every char * is heap-owned by the struct and released by
 * pt_payment_clear(); optional text (reference, description) is NULL when
 * absent. Fixed-size fields are NUL-terminated.
 */
typedef struct pt_payment {
    char id[PT_ID_LEN + 1];
    int64_t amount;          /* minor units, 1..PT_AMOUNT_MAX */
    int64_t amount_refunded; /* v1.1: sum of the refunds, 0..amount */
    char currency[4];
    char *payer;
    char *payee;
    char *reference;
    char *description;
    pt_method method;
    pt_status status;
    pt_meta_entry *metadata; /* metadata_count entries, in input order */
    int metadata_count;
    int64_t version;
    char created_at[PT_TIME_LEN + 8];
    char updated_at[PT_TIME_LEN + 8];
} pt_payment;

/* Wire names: "bank_transfer", "settled", ... */
const char *pt_method_name(pt_method m);
const char *pt_status_name(pt_status s);

const char *pt_reason_name(pt_refund_reason r);

/* Parse a wire name; returns false (leaving *out alone) when unknown. */
bool pt_method_parse(const char *name, pt_method *out);
bool pt_status_parse(const char *name, pt_status *out);
bool pt_reason_parse(const char *name, pt_refund_reason *out);

/* The state machine: pending -> settled|failed|cancelled, settled ->
 * refunded. Setting the current status again is not a transition and is
 * reported as allowed. */
bool pt_status_can_change(pt_status from, pt_status to);

/* Fills `out` (capacity PT_STATUS_COUNT) with the statuses reachable from
 * `from` by one transition; returns how many. */
int pt_status_next(pt_status from, pt_status *out);

/* Frees every owned string and zeroes the struct. Safe on a zeroed struct. */
void pt_payment_clear(pt_payment *p);

/* Deep copy; returns 0, or -1 on allocation failure (dst is then zeroed). */
int pt_payment_copy(pt_payment *dst, const pt_payment *src);

/* True when the two hold the same metadata pairs, in any order (keys are
 * unique in a validated payment). */
bool pt_payment_metadata_equal(const pt_payment *a, const pt_payment *b);

/* True when every field is equal (metadata compared as a set), for tests
 * and for "did anything change" checks. */
bool pt_payment_equal(const pt_payment *a, const pt_payment *b);

#endif
