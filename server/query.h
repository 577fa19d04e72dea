/*
 * query.h - the list filters of GET /v1/payments and their cursors.
 *
 * Owns: parsing and validating the query parameters (from a URL or from a
 * WebSocket `list` message) into struct list_query, and the opaque cursor
 * that keyset pagination hands out. Pure functions, no I/O: fuzzed.
 */
#ifndef PT_QUERY_H
#define PT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "validate.h"

#define QUERY_LIMIT_DEFAULT 50
#define QUERY_LIMIT_MAX     500
#define QUERY_TIME_MAX      PT_TIME_TEXT_MAX

struct list_query {
    char *status; /* each filter NULL when absent; owned */
    char *currency;
    char *payer;
    char *payee;
    char *method;
    char *q_pattern; /* LIKE pattern: lower-cased, wildcards escaped, wrapped in % */
    bool has_min, has_max;
    int64_t min_amount, max_amount;
    char created_gte[QUERY_TIME_MAX]; /* RFC 3339 text, "" when absent */
    char created_lt[QUERY_TIME_MAX];
    bool asc; /* order=created_at.asc */
    int limit;
    bool has_cursor; /* position after which the page starts */
    char cursor_time[QUERY_TIME_MAX];
    char cursor_id[37];
};

/*
 * Fills `out` from `n` decoded key/value pairs. Unknown keys, repeated keys
 * and values outside their set or range give -1 with problem->code
 * "bad_request" naming the parameter. The caller releases `out` with
 * query_free() either way.
 */
int query_parse(const char *const *keys, const char *const *values, int n, struct list_query *out,
                pt_problem *problem);

void query_free(struct list_query *q);

/* True for a canonical lower- or upper-case UUID (8-4-4-4-12 hex). */
bool query_valid_uuid(const char *s);

/*
 * The cursor for "after this row" in the given order: base64url text
 * written to `out` (at least 128 bytes). `time` is the row's created_at
 * with microseconds, as PostgreSQL prints it in UTC.
 */
void query_cursor_encode(bool asc, const char *time, const char *id, char *out, size_t cap);

/* Decodes a cursor into `q` (checks it was made for q->asc). 0 or -1. */
int query_cursor_decode(const char *text, struct list_query *q);

#endif
