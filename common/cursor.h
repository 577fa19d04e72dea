/*
 * cursor.h - the list cursor's text form, shared by the server that hands
 * cursors out and the TUI that resumes paging from a row it kept.
 *
 * Owns: encoding "after the row (time, id) in ascending/descending order"
 * as unpadded base64url of "1|a|<time>|<id>" (or "1|d|..."), and decoding
 * it back with structural checks. To third parties the cursor stays
 * opaque (../shared/API.md); only this module knows its layout. Pure
 * functions, no allocation.
 */
#ifndef PT_CURSOR_H
#define PT_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

#define PT_CURSOR_MAX      160 /* longest cursor text accepted, without the NUL */
#define PT_CURSOR_TIME_MAX 40  /* time text buffer, with the NUL */
#define PT_CURSOR_ID_MAX   37  /* UUID text buffer, with the NUL */

/*
 * Writes the cursor for the row (time, id) in the given order to `out`
 * (cap bytes, at least PT_CURSOR_MAX + 1). `time` is created_at with
 * microseconds in UTC ("2026-11-24T12:00:00.123456Z"). Returns 0, or -1
 * (and "" in out when cap allows) when time or id do not fit.
 */
int pt_cursor_encode(bool asc, const char *time, const char *id, char *out, size_t cap);

/*
 * Decodes `text` into the order it was made for and the row's time and id
 * text (buffers of PT_CURSOR_TIME_MAX and PT_CURSOR_ID_MAX bytes). Checks
 * the alphabet, the version, the order flag and the field lengths; the
 * caller validates time and id as values. Returns 0 or -1.
 */
int pt_cursor_decode(const char *text, bool *asc, char *time, char *id);

#endif
