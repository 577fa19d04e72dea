/*
 * pjson_parse.h - JSON decoding: the strict request parser, exact integer
 * reads and the payment as the server sends it.
 *
 * Owns: turning JSON text into cJSON trees with the request rules
 * (duplicate keys, encoding, number literals), and reading values out of
 * trees exactly. Writing JSON is pjson_enc.h's.
 */
#ifndef PT_PJSON_PARSE_H
#define PT_PJSON_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "payment.h"
#include "validate.h"

/* Largest integer a double holds exactly; beyond it, values are refused
 * rather than silently rounded. */
#define PT_JSON_EXACT_DOUBLE_MAX 9007199254740992.0

/*
 * Parses and validates raw JSON request text (not NUL-terminated, `len`
 * bytes) into a cJSON tree. Rejects, with code "malformed_json": invalid
 * UTF-8, syntax errors, truncation, trailing garbage, duplicate keys,
 * "\u0000" escapes, nesting deeper than 32, and a top level that is not an
 * object (a byte order mark too; everything else is RFC 8259). Number
 * items keep their literal text (pt_json_number_literal).
 * Returns the tree (caller frees with cJSON_Delete) or NULL with *problem
 * filled ("internal" when memory ran out).
 */
cJSON *pt_json_parse_object(const char *text, size_t len, pt_problem *problem);

/*
 * Decodes a payment as the server sends it (all fields present, including
 * id, version and timestamps) into `out` (zeroed first; pt_payment_clear
 * on failure too). Used by the TUI and by tests. Returns 0 or -1.
 */
int pt_payment_from_json(const cJSON *obj, pt_payment *out);

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

#endif
