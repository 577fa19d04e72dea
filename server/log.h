/*
 * log.h - structured log lines on stderr.
 *
 * Owns: the line format (one JSON object per line, or plain text) and the
 * serialisation of concurrent writers. A struct logger is created once per
 * server and may be used from any thread: each line is written with a
 * single write(2), so lines never interleave.
 */
#ifndef PT_LOG_H
#define PT_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct logger {
    int json; /* 1: JSON lines, 0: text */
    int fd;   /* usually 2 */
};

/* A key/value pair for log_fields; `value` NULL ends the list. `raw` 1
 * writes the value as a JSON number instead of a string. */
struct log_field {
    const char *key;
    const char *value;
    int raw;
};

/* Logs `msg` (printf-style) at `level`. Never includes secrets: callers
 * pass only what may be seen by whoever reads the logs. */
void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs a message with extra fields, terminated by a field with key NULL. */
void log_fields(const struct logger *lg, enum log_level level, const char *msg,
                const struct log_field *fields);

/* Lines one thread writes in bulk (the service thread's request lines):
 * kept here and written with one write(2) by log_batch_flush, once per
 * loop turn, so that a busy server does not pay a system call per
 * request. Owned by that one thread; whole lines only. */
#define LOG_BATCH_MAX 65536
struct log_batch {
    size_t len;
    char buf[LOG_BATCH_MAX];
};

/* As log_fields, into `batch` (written out first when the line does not
 * fit). */
void log_fields_batched(const struct logger *lg, struct log_batch *batch, enum log_level level,
                        const char *msg, const struct log_field *fields);

/* Writes what `batch` holds, and empties it. */
void log_batch_flush(const struct logger *lg, struct log_batch *batch);

#endif
