/*
 * proto.h - the wire protocol's names and the rules of its filters, one
 * definition for the server and the TUI.
 *
 * Owns: the WebSocket subprotocol and path, the event type names, how the
 * list filter `q` matches (case-folded substring, folded exactly as the
 * server's SQL folds it) and what an RFC 3339 date-time is.
 */
#ifndef PT_PROTO_H
#define PT_PROTO_H

#include <stdbool.h>
#include <stdint.h>

/* GET PT_PROTO_STREAM_PATH upgrades to a WebSocket with this subprotocol. */
#define PT_PROTO_SUBPROTOCOL "paytrackr.v1"
#define PT_PROTO_STREAM_PATH "/v1/stream"

/* An event's type; the order is the TUI's (created, updated, deleted). */
typedef enum pt_event_type {
    PT_EVENT_CREATED,
    PT_EVENT_UPDATED,
    PT_EVENT_DELETED,
} pt_event_type;
#define PT_EVENT_COUNT 3

/* "payment.created" etc.; "?" for a value outside the enum. */
const char *pt_event_name(pt_event_type t);
/* Reads an event type name; false for any other text (or NULL). */
bool pt_event_parse(const char *name, pt_event_type *out);

/*
 * `q` matching. The server filters with PostgreSQL's
 *   lower(payer || chr(1) || payee || chr(1) || reference) LIKE lower(q)
 * (wildcards escaped, wrapped in %) in a UTF-8 database: lower() maps
 * each code point on its own with the C library's towlower for the
 * database's LC_CTYPE (C.UTF-8 in the tests, en_US.utf8 on Azure; glibc's
 * UTF-8 locales share one case table). pt_q_fold is the same mapping,
 * through glibc's C.UTF-8 whatever the process's own locale, and
 * tests/integration/test_proto_fold.py compares it with the database for
 * every code point. Without a C.UTF-8 locale it folds ASCII only.
 */
uint32_t pt_q_fold(uint32_t cp);
/* True when `needle` occurs in `hay`, code points compared after
 * pt_q_fold. NULL hay never matches; an empty needle always does. Bytes
 * that are not UTF-8 compare as themselves. */
bool pt_q_contains(const char *hay, const char *needle);
/* The filter `q` on a payment: in payer, payee or reference (each may be
 * NULL). Equal to the server's test for any q without control characters
 * (the server refuses those). */
bool pt_q_match(const char *q, const char *payer, const char *payee, const char *reference);

/* Longest RFC 3339 text a query or cursor may carry, NUL included. */
#define PT_TIME_TEXT_MAX 40

/*
 * A strict RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|
 * -HH:MM), T and Z in either case, a fraction of 1 to 9 digits, a real
 * calendar date from year 1, seconds 00 to 59, shorter than
 * PT_TIME_TEXT_MAX. On success stores the instant in microseconds since
 * 1970-01-01T00:00:00Z in *us_out (may be NULL; digits past the
 * microsecond are dropped) and returns true.
 */
bool pt_time_parse(const char *s, int64_t *us_out);

#endif
