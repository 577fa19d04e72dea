/*
 * validate.h - the contract's field rules, shared by server and TUI.
 *
 * Owns: checking request bodies (create and PATCH) and single fields, and
 * reporting the first problem as a field name plus a sentence a person can
 * act on ("amount must be a positive integer of minor units").
 */
#ifndef PT_VALIDATE_H
#define PT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "payment.h"

/* What went wrong with a request. `code` is a contract error code
 * ("validation_failed", "malformed_json", "invalid_transition"), or
 * "internal" when memory ran out (not the client's fault: answer 500);
 * `field` is "" when the problem is not one field's. */
typedef struct pt_problem {
    const char *code;
    char field[64];
    char message[256];
} pt_problem;

/* Fills *problem (when not NULL): `code` must be a string with static
 * lifetime; `field` (NULL means "") and the formatted message are cut to
 * fit their buffers without splitting a UTF-8 sequence. Shared by
 * everything that reports problems, the server included. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void pt_problem_set(pt_problem *problem, const char *code, const char *field, const char *fmt,
                    ...);

/* Which fields a PATCH body set; the values are in the pt_payment passed
 * alongside. */
enum {
    PT_CHANGE_AMOUNT = 1 << 0,
    PT_CHANGE_CURRENCY = 1 << 1,
    PT_CHANGE_PAYER = 1 << 2,
    PT_CHANGE_PAYEE = 1 << 3,
    PT_CHANGE_REFERENCE = 1 << 4,   /* value may be NULL: cleared */
    PT_CHANGE_DESCRIPTION = 1 << 5, /* value may be NULL: cleared */
    PT_CHANGE_METHOD = 1 << 6,
    PT_CHANGE_STATUS = 1 << 7,
    PT_CHANGE_METADATA = 1 << 8, /* replaces the whole object */
};

/*
 * Validates a create request object into `out` (zeroed first; caller
 * releases with pt_payment_clear even on failure). Applies defaults: method
 * "other", status "pending"; status may be only "pending" or "settled".
 * Text fields must be valid UTF-8 without control characters (U+0000..1F,
 * U+007F..9F) - reference, description and metadata included; payer and
 * payee must not be blank (spaces only). reference/description null mean
 * absent; metadata null means none. Every other null is refused.
 * Refuses unknown fields and server-owned ones (id, version, created_at,
 * updated_at) naming the field. `amount` must be a JSON integer literal:
 * `raw`/`raw_len` is the request text the tree came from, used to tell
 * 12 from 12.0 or 1.2e1, which cJSON cannot. Trees from
 * pt_json_parse_object carry the literal themselves (raw may then be
 * anything, e.g. a whole WebSocket frame); for other trees the top-level
 * "amount" of raw is consulted, and without raw only a double that is an
 * exact integer is accepted. Returns 0 or -1 with *problem.
 */
int pt_validate_create(const cJSON *body, const char *raw, size_t raw_len, pt_payment *out,
                       pt_problem *problem);

/*
 * Validates a PATCH object: same field rules, every field optional (an
 * empty object is a valid no-op), any of the five statuses. Sets *changes
 * to the PT_CHANGE_* bits present and their values in `out`. State-dependent
 * rules (pending-only fields, transitions) are checked later against the
 * stored payment with pt_validate_apply(). Returns 0 or -1 with *problem.
 */
int pt_validate_patch(const cJSON *body, const char *raw, size_t raw_len, pt_payment *out,
                      unsigned *changes, pt_problem *problem);

/*
 * Applies validated `changes` from `patch` to `current` (a stored payment),
 * enforcing: amount/currency/payer/payee change only while pending (else
 * validation_failed naming the field) and status transitions (else code
 * "invalid_transition", field "status"). A field set to its current value
 * is not a change. On success stores in *changed whether anything differs
 * and returns 0; `current` then holds the new values (version untouched).
 * On failure returns -1 with *problem and `current` unchanged.
 */
int pt_validate_apply(pt_payment *current, const pt_payment *patch, unsigned changes, int *changed,
                      pt_problem *problem);

/* A refund request (v1.1), validated. `note` is heap-owned (NULL for
 * none); release with pt_refund_request_clear. */
typedef struct pt_refund_request {
    bool has_amount; /* false: refund what is left */
    int64_t amount;  /* 1..PT_AMOUNT_MAX when has_amount */
    pt_refund_reason reason;
    char *note;
} pt_refund_request;

/*
 * Validates a refund body {"amount"?, "reason"?, "note"?}: amount a JSON
 * integer literal from 1 (whether it exceeds what is left is the stored
 * payment's business), reason one of the four (default other), note at
 * most PT_REFUND_NOTE_MAX characters of text or null. Unknown members are
 * refused naming them. Returns 0, or -1 with *problem (out cleared).
 */
int pt_validate_refund(const cJSON *body, const char *raw, size_t raw_len, pt_refund_request *out,
                       pt_problem *problem);

void pt_refund_request_clear(pt_refund_request *r);

/* Single-field checks used by forms (the TUI) and by the functions above.
 * Each returns 0, or -1 with *problem naming the field. */
int pt_validate_name(const char *field, const char *value, pt_problem *problem);
int pt_validate_optional_text(const char *field, const char *value, size_t max_chars,
                              pt_problem *problem);
int pt_validate_currency(const char *value, pt_problem *problem);
int pt_validate_amount(int64_t amount, pt_problem *problem);

/* Form input: parses major-unit text such as "12.50" for `currency` into
 * minor units, with a message such as "EUR allows at most 2 decimals". */
int pt_validate_amount_text(const char *text, const char *currency, int64_t *minor_out,
                            pt_problem *problem);

#endif
