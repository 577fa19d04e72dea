/*
 * export.h - GET /v1/payments/export.csv (v1.1): every payment matching the
 * list filters, as CSV, streamed.
 *
 * Owns: an export's state on its HTTP request, the database fetches that
 * feed it, the CSV rows (RFC 4180, formula-safe), and writing them out as
 * a chunked HTTP/1.1 body.
 *
 * Memory and connections stay bounded whatever the row count: rows are
 * read a page at a time (keyset on the list order) by ordinary pool jobs,
 * each holding a database connection only for its one query; the next
 * page is asked for only when less than EXPORT_LOW_WATER bytes wait to be
 * written. A client that stops reading therefore holds no connection at
 * all, only its waiting bytes, until the request timeout (reset on every
 * write) ends the connection. Each page is its own snapshot: a payment
 * changed while the export runs appears at most once, as one of its
 * versions, exactly as when paging GET /v1/payments. (lws also drops a
 * connection that has held its request headers for more than the header
 * timeout plus 6 minutes: an export must finish within that.)
 */
#ifndef PT_EXPORT_H
#define PT_EXPORT_H

#include <stddef.h>

#include "validate.h"

struct http_req;
struct export_state;

/* Rows per database fetch, and the CSV bytes after which a fetch stops
 * adding rows (the rest come with the next one). */
#define EXPORT_ROWS_PER_FETCH 500
#define EXPORT_FETCH_BYTES    (256 * 1024)
/* The next fetch starts when less than this waits to be written. */
#define EXPORT_LOW_WATER (64 * 1024)

/* Starts an export for `rq` from decoded query pairs (service thread):
 * answers 400 for bad or paging parameters, 503 when the pool is full;
 * otherwise the first rows are on their way and the headers go out with
 * them. */
void export_start(struct http_req *rq, const char *const *keys, const char *const *values, int n);

/* The writable callback for a request with an export (service thread).
 * Returns what http_callback returns: non-zero closes the connection. */
int export_writeable(struct http_req *rq);

/* The request's connection is closing: forget it (service thread). A
 * fetch in flight frees the state when it comes back. */
void export_release(struct http_req *rq);

/*
 * Appends one CSV cell to `out` (size `cap`, at offset *len): quoted when
 * it holds a comma, quote, CR or LF (quotes doubled), and prefixed with '
 * when it starts with = + - @ TAB or CR, so that a spreadsheet does not
 * run it. NULL is an empty cell. Returns 0, or -1 when it does not fit.
 */
int export_csv_cell(char *out, size_t cap, size_t *len, const char *text);

/* The CSV header line (with CRLF). */
extern const char export_csv_header[];

#endif
