/*
 * util.c - small helpers: clocks, RFC 3339 times, UUIDs, text.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "tui.h"
#include "utf8.h"

int64_t util_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_parse_time(const char *text, int64_t *ms_out)
{
    int64_t us;

    if (!pt_time_parse(text, &us))
        return -1;
    /* floor, so that instants before 1970 round the way times do */
    *ms_out = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
    return 0;
}

void util_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int) (ms - (int64_t) t * 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void util_display_time(int64_t ms, bool with_year, char *buf, size_t cap)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;

    localtime_r(&t, &tm);
    if (with_year)
        snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(buf, cap, "%02d-%02d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
}

void util_uuid4(char out[PT_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    int j = 0;

    if (fd >= 0) {
        while (got < sizeof b) {
            ssize_t r = read(fd, b + got, sizeof b - got);

            if (r <= 0)
                break;
            got += (size_t) r;
        }
        close(fd);
    }
    if (got < sizeof b) {
        /* No /dev/urandom: weaker, but an idempotency key only needs to be
         * unique per caller. */
        uint64_t x = (uint64_t) util_wall_ms() ^ ((uint64_t) getpid() << 32);

        for (size_t i = 0; i < sizeof b; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char) (x >> 56);
        }
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 15];
    }
    out[j] = '\0';
}

char *util_printf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t) n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *util_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void util_copy(char *dst, size_t cap, const char *src)
{
    size_t n;

    if (cap == 0)
        return;
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    n = pt_utf8_truncate(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
