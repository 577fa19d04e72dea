/*
 * log.c - one line per event, JSON or text, written atomically.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warn";
    case LOG_ERROR:
        return "error";
    }
    return "info";
}

struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    /* Keep room for the closing "}\n"; a longer line is cut, not split. */
    size_t room = sizeof l->buf - 4 - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* JSON string escaping; bytes >= 0x80 pass through (callers log UTF-8). */
static void put_escaped(struct line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *) &c, 1);
        }
    }
}

static void put_time(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char t[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, sizeof t - n, ".%03ldZ", ts.tv_nsec / 1000000);
    puts_(l, t);
}

static void format_line(const struct logger *lg, enum log_level level, const char *msg,
                        const struct log_field *fields, struct line *l)
{
    l->len = 0;
    if (lg->json) {
        puts_(l, "{\"time\":\"");
        put_time(l);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_name(level));
        puts_(l, "\",\"msg\":\"");
        put_escaped(l, msg);
        puts_(l, "\"");
        for (const struct log_field *f = fields; f && f->key; f++) {
            puts_(l, ",\"");
            put_escaped(l, f->key);
            puts_(l, "\":");
            if (!f->value) {
                puts_(l, "null");
            } else if (f->raw) {
                puts_(l, f->value);
            } else {
                puts_(l, "\"");
                put_escaped(l, f->value);
                puts_(l, "\"");
            }
        }
        memcpy(l->buf + l->len, "}\n", 2);
        l->len += 2;
    } else {
        put_time(l);
        puts_(l, " ");
        puts_(l, level_name(level));
        puts_(l, " ");
        put_escaped(l, msg);
        for (const struct log_field *f = fields; f && f->key; f++) {
            puts_(l, " ");
            puts_(l, f->key);
            puts_(l, "=");
            put_escaped(l, f->value ? f->value : "-");
        }
        l->buf[l->len++] = '\n';
    }
}

static void emit(const struct logger *lg, enum log_level level, const char *msg,
                 const struct log_field *fields)
{
    struct line l;
    format_line(lg, level, msg, fields, &l);
    /* One write per line: concurrent lines from workers never interleave. */
    ssize_t rc = write(lg->fd, l.buf, l.len);
    (void) rc;
}

void log_batch_flush(const struct logger *lg, struct log_batch *batch)
{
    if (batch->len == 0)
        return;
    /* Whole lines only, so lines from other threads fall between them. */
    ssize_t rc = write(lg->fd, batch->buf, batch->len);
    (void) rc;
    batch->len = 0;
}

void log_fields_batched(const struct logger *lg, struct log_batch *batch, enum log_level level,
                        const char *msg, const struct log_field *fields)
{
    struct line l;
    format_line(lg, level, msg, fields, &l);
    if (l.len > sizeof batch->buf - batch->len)
        log_batch_flush(lg, batch);
    memcpy(batch->buf + batch->len, l.buf, l.len);
    batch->len += l.len;
}

void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(lg, level, msg, NULL);
}

void log_fields(const struct logger *lg, enum log_level level, const char *msg,
                const struct log_field *fields)
{
    emit(lg, level, msg, fields);
}
