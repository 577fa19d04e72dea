/*
 * utf8.h - UTF-8 checks for text that comes from outside.
 *
 * Owns: strict validation (no overlongs, no surrogates, nothing past
 * U+10FFFF), counting code points, and spotting control characters.
 */
#ifndef PT_UTF8_H
#define PT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the `len` bytes at `s` are well-formed UTF-8. */
bool pt_utf8_valid(const char *s, size_t len);

/* The value of one hex digit (either case), or -1 (JSON \u escapes and
 * URL percent-escapes both read them). */
int pt_hex_digit(char c);

/* Number of code points in a NUL-terminated, valid UTF-8 string. */
size_t pt_utf8_length(const char *s);

/* True when the valid UTF-8 string holds a C0 or C1 control character or
 * DEL (U+0000..U+001F, U+007F..U+009F). */
bool pt_utf8_has_control(const char *s);

/* Display width in terminal columns of a valid UTF-8 string (wide East
 * Asian characters count 2, combining marks 0), for the TUI's alignment. */
int pt_utf8_width(const char *s);

/* Decodes the code point at the start of the `len` bytes at `s` into
 * *cp_out (may be NULL); returns its length in bytes (1..4), or 0 when the
 * bytes there are not well-formed UTF-8 or len is 0. For cursor movement
 * in the TUI and for the JSON parser. */
size_t pt_utf8_decode(const char *s, size_t len, uint32_t *cp_out);

/* Length in bytes of the longest prefix of the NUL-terminated `s` that
 * fits in `max_bytes` without splitting a code point, for copying text
 * into fixed buffers such as pt_problem.field. */
size_t pt_utf8_truncate(const char *s, size_t max_bytes);

#endif
