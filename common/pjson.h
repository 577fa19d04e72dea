/*
 * pjson.h - JSON encoding and decoding of payments, events and errors.
 *
 * Owns: the wire shape of a payment, an event and an error body, with
 * cJSON. Integers are written exactly (int64 never passes through a double
 * on output: they are emitted as raw number text).
 */
#ifndef PT_PJSON_H
#define PT_PJSON_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "payment.h"

/* A new cJSON object for the payment (caller owns, cJSON_Delete), or NULL
 * on allocation failure. reference/description NULL become JSON null.
 * amount and version are cJSON_Raw items (exact digits), so cJSON_IsNumber
 * is false for them: read them back with pt_json_get_int64. */
cJSON *pt_payment_to_json(const pt_payment *p);

/*
 * Decodes a payment as the server sends it (all fields present, including
 * id, version and timestamps) into `out` (zeroed first; pt_payment_clear
 * on failure too). Used by the TUI and by tests. Returns 0 or -1.
 */
int pt_payment_from_json(const cJSON *obj, pt_payment *out);

/* An int64 as an exact JSON number (raw text), or NULL on allocation
 * failure. */
cJSON *pt_json_int64(int64_t v);

/* Reads an integer JSON number into *out; false when not an integer in
 * int64 range (doubles beyond 2^53 are refused rather than rounded).
 * Accepts the raw items pt_json_int64 makes. When the literal is known
 * (pt_json_number_literal) it decides: it must be written as an integer,
 * and is then read exactly, whatever its size. */
int pt_json_get_int64(const cJSON *item, int64_t *out);

/* The literal text of a number item made by pt_json_parse_object (e.g.
 * "12.0" or "1e3"), kept because cJSON stores only a double; NULL for any
 * other item, including numbers from cJSON_Parse or cJSON_CreateNumber.
 * The text lives in item->valuestring and is freed by cJSON_Delete. */
const char *pt_json_number_literal(const cJSON *item);

/* The exact text of an object that is a direct member of a root object
 * made by pt_json_parse_object (e.g. a WebSocket message's "payment"), so
 * it can be judged exactly as an HTTP body would be; NULL for any other
 * item. Lives in item->valuestring, freed by cJSON_Delete. */
const char *pt_json_raw_object(const cJSON *item);

/* The contract's error body {"error":{"code","message","field"?}} as a
 * malloc'd NUL-terminated string (caller frees), or NULL on allocation
 * failure. `field` NULL or "" omits the member. */
char *pt_error_body(const char *code, const char *message, const char *field);

/* Canonical JSON text for comparing request bodies: object keys sorted
 * recursively, no white space. malloc'd; NULL on allocation failure. */
char *pt_json_canonical(const cJSON *item);

#endif
