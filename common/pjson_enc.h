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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "payment.h"

/* Text being built (zero it to start). Appends after an allocation
 * failure do nothing; pt_text_finish tells. */
typedef struct pt_text {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} pt_text;

void pt_text_put(pt_text *b, const char *s, size_t n);
void pt_text_puts(pt_text *b, const char *s);
/* A JSON string with cJSON's escapes, or null for NULL. */
void pt_text_json_string(pt_text *b, const char *s);
/* The text (malloc'd, caller frees; "" when nothing was put), or NULL
 * after an allocation failure; `b` is empty again either way. */
char *pt_text_finish(pt_text *b);

/* Appends the payment's JSON, byte for byte what printing
 * pt_payment_to_json(p) with cJSON_PrintUnformatted gives, without
 * building the tree: for pages of payments, where the tree's allocations
 * were most of the server's work. */
void pt_payment_write_json(pt_text *b, const pt_payment *p);

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
