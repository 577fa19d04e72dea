/*
 * pjson_enc.h - JSON encoding of payments, errors and exact integers.
 *
 * Owns: the wire shape of a payment and of an error body as cJSON trees
 * or text, and the canonical text of a tree. Integers are written exactly
 * (int64 never passes through a double on output: they are emitted as raw
 * number text). Reading JSON is pjson_parse.h's.
 */
#ifndef PT_PJSON_ENC_H
#define PT_PJSON_ENC_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "payment.h"

/* A new cJSON object for the payment (caller owns, cJSON_Delete), or NULL
 * on allocation failure. reference/description NULL become JSON null.
 * amount and version are cJSON_Raw items (exact digits), so cJSON_IsNumber
 * is false for them: read them back with pt_json_get_int64. */
cJSON *pt_payment_to_json(const pt_payment *p);

/* An int64 as an exact JSON number (raw text), or NULL on allocation
 * failure. */
cJSON *pt_json_int64(int64_t v);

/* The contract's error body {"error":{"code","message","field"?}} as a
 * malloc'd NUL-terminated string (caller frees), or NULL on allocation
 * failure. `field` NULL or "" omits the member. */
char *pt_error_body(const char *code, const char *message, const char *field);

/* Canonical JSON text for comparing request bodies: object keys sorted
 * recursively, no white space. malloc'd; NULL on allocation failure. */
char *pt_json_canonical(const cJSON *item);

#endif
