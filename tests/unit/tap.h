/*
 * tap.h - a tiny Test Anything Protocol writer for the unit tests.
 *
 * Each check prints "ok N - what" or "not ok N - what" (with "# got/want"
 * lines on failure), tap_done() prints the "1..N" plan and gives the exit
 * status: 1 when anything failed. The counters live in a struct the test
 * passes around rather than in globals.
 */
#ifndef PT_TAP_H
#define PT_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tap {
    int count;
    int failed;
} tap;

#if defined(__GNUC__)
#define TAP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TAP_PRINTF(a, b)
#endif

/* Prints one result line; returns cond so callers can add diagnostics. */
TAP_PRINTF(3, 0) static inline bool tap_vok(tap *t, bool cond, const char *fmt, va_list ap)
{
    t->count++;
    if (!cond)
        t->failed++;
    printf("%sok %d - ", cond ? "" : "not ", t->count);
    vprintf(fmt, ap);
    putchar('\n');
    return cond;
}

TAP_PRINTF(3, 4) static inline bool tap_ok(tap *t, bool cond, const char *fmt, ...)
{
    va_list ap;
    bool r;

    va_start(ap, fmt);
    r = tap_vok(t, cond, fmt, ap);
    va_end(ap);
    return r;
}

/* Integer equality, showing both values on failure. */
TAP_PRINTF(4, 5)
static inline bool tap_is_i64(tap *t, int64_t got, int64_t want, const char *fmt, ...)
{
    va_list ap;
    bool r;

    va_start(ap, fmt);
    r = tap_vok(t, got == want, fmt, ap);
    va_end(ap);
    if (!r)
        printf("#   got:  %" PRId64 "\n#   want: %" PRId64 "\n", got, want);
    return r;
}

/* String equality (NULL allowed), showing both on failure. */
TAP_PRINTF(4, 5)
static inline bool tap_is_str(tap *t, const char *got, const char *want, const char *fmt, ...)
{
    va_list ap;
    bool same = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
    bool r;

    va_start(ap, fmt);
    r = tap_vok(t, same, fmt, ap);
    va_end(ap);
    if (!r)
        printf("#   got:  \"%s\"\n#   want: \"%s\"\n", got ? got : "(null)",
               want ? want : "(null)");
    return r;
}

/* malloc for test fixtures: a test cannot go on without its memory. */
static inline void *tap_xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    return p;
}

/* printf into a new malloc'd string, for building test bodies. */
TAP_PRINTF(1, 2) static inline char *tap_strdupf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        printf("Bail out! bad format\n");
        exit(1);
    }
    s = tap_xmalloc((size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Prints the plan and returns the process exit status. */
static inline int tap_done(tap *t)
{
    printf("1..%d\n", t->count);
    if (t->failed)
        printf("# %d of %d checks failed\n", t->failed, t->count);
    return t->failed ? 1 : 0;
}

#endif
