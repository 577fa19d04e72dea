/*
 * export.c - exporting the current filter to a CSV file (key e).
 *
 * The dialog asks for a path (a default name in the working directory;
 * "~/" is the home directory). The file comes from GET
 * /v1/payments/export.csv with the filter and order of the view, streamed
 * through http.c straight into "<path>.part" as it arrives: memory stays
 * bounded whatever the size, and the loop keeps serving keys and the
 * stream meanwhile. Rows are counted as they pass (line ends outside
 * quoted fields, RFC 4180) for the progress line. Only a complete answer
 * is renamed to the path; a failed or cancelled one leaves no file behind.
 * An existing file is replaced only after a second Enter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "money.h"
#include "tui.h"

#define EXPORT_DRAW_MS 100 /* progress redraws at most this often */

void export_open(struct export_job *x)
{
    char name[64];
    time_t now = time(NULL);
    struct tm tm;

    x->err[0] = '\0';
    x->confirm_replace = false;
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(name, sizeof name, "payments-%Y%m%dT%H%M%SZ.csv", &tm) == 0)
        snprintf(name, sizeof name, "payments.csv");
    line_set(&x->path, name, false);
}

/* Expands "~/" into x->final; false (err set) when it does not fit. */
static bool resolve_path(struct export_job *x, const char *typed)
{
    const char *home = getenv("HOME");
    int n;

    while (*typed == ' ')
        typed++;
    if (typed[0] == '\0') {
        snprintf(x->err, sizeof x->err, "a file name is required");
        return false;
    }
    if (typed[0] == '~' && typed[1] == '/' && home != NULL && home[0] != '\0')
        n = snprintf(x->final, sizeof x->final, "%s%s", home, typed + 1);
    else
        n = snprintf(x->final, sizeof x->final, "%s", typed);
    if (n < 0 || (size_t) n >= sizeof x->final ||
        snprintf(x->part, sizeof x->part, "%s.part", x->final) >= (int) sizeof x->part) {
        snprintf(x->err, sizeof x->err, "the path is too long");
        return false;
    }
    return true;
}

/* Counts rows: line feeds outside quoted fields (a quote inside one is
 * doubled, which toggles twice). */
static void count_rows(struct export_job *x, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '"')
            x->in_quotes = !x->in_quotes;
        else if (data[i] == '\n' && !x->in_quotes)
            x->lines++;
    }
}

static int sink(void *ctx, const char *data, size_t len)
{
    struct export_job *x = ctx;
    int64_t now;

    while (len > 0) {
        ssize_t n = write(x->fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            x->write_errno = n < 0 ? errno : EIO;
            return -1;
        }
        count_rows(x, data, (size_t) n);
        x->bytes += n;
        data += n;
        len -= (size_t) n;
    }
    now = util_mono_ms();
    if (now - x->drawn_at >= EXPORT_DRAW_MS) {
        x->drawn_at = now;
        app_dirty();
    }
    return 0;
}

int export_start(struct export_job *x, const char *query, int64_t expected)
{
    char path[2048];
    struct stat st;

    x->err[0] = '\0';
    if (x->running) {
        snprintf(x->err, sizeof x->err, "an export is already running");
        return -1;
    }
    if (!resolve_path(x, x->path.buf))
        return -1;
    if (stat(x->final, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(x->err, sizeof x->err, "that is a directory");
            return -1;
        }
        if (!x->confirm_replace) {
            x->confirm_replace = true;
            snprintf(x->err, sizeof x->err, "the file exists: Enter again replaces it");
            return -1;
        }
    }
    if (snprintf(path, sizeof path, "/v1/payments/export.csv%s%s", query[0] ? "?" : "", query) >=
        (int) sizeof path) {
        snprintf(x->err, sizeof x->err, "the filter is too long");
        return -1;
    }
    x->fd = open(x->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (x->fd < 0) {
        snprintf(x->err, sizeof x->err, "cannot write %.120s: %s", x->part, strerror(errno));
        return -1;
    }
    x->bytes = 0;
    x->lines = 0;
    x->in_quotes = false;
    x->write_errno = 0;
    x->expected = expected;
    x->started_at = util_mono_ms();
    x->tag = ++tui.next_tag;
    if (http_stream(path, sink, x, REQ_EXPORT, x->tag) != 0) {
        close(x->fd);
        x->fd = -1;
        unlink(x->part);
        snprintf(x->err, sizeof x->err, "cannot start the request");
        return -1;
    }
    x->running = true;
    tui.message[0] = '\0'; /* the progress line takes the message line */
    return 0;
}

int64_t export_rows(const struct export_job *x)
{
    return x->lines > 0 ? x->lines - 1 : 0; /* the header line is not a row */
}

void export_cancel(struct export_job *x)
{
    if (!x->running)
        return;
    x->cancelled = true;
    http_cancel(REQ_EXPORT, x->tag);
}

void export_shutdown(struct export_job *x)
{
    if (!x->running)
        return;
    x->running = false;
    close(x->fd);
    x->fd = -1;
    unlink(x->part);
}

void export_on_result(struct export_job *x, uint64_t tag, int status, const cJSON *body)
{
    char text[TUI_ERROR_MAX];
    int rc;

    if (!x->running || tag != x->tag)
        return;
    x->running = false;
    rc = close(x->fd);
    x->fd = -1;
    if (status == 200 && x->write_errno == 0 && rc == 0 && rename(x->part, x->final) == 0) {
        char rows[32];

        if (pt_money_format(export_rows(x), 0, 1, rows, sizeof rows) < 0)
            snprintf(rows, sizeof rows, "?");
        app_message(false, "exported %s payment%s to %s", rows, export_rows(x) == 1 ? "" : "s",
                    x->final);
        return;
    }
    unlink(x->part);
    if (x->write_errno != 0)
        snprintf(text, sizeof text, "writing failed: %s", strerror(x->write_errno));
    else if (status == 200)
        snprintf(text, sizeof text, "cannot finish %.120s: %s", x->final, strerror(errno));
    else if (status == 0 && x->cancelled)
        snprintf(text, sizeof text, "cancelled");
    else if (status == 0 && x->bytes > 0)
        snprintf(text, sizeof text, "the answer broke off after %lld rows",
                 (long long) export_rows(x));
    else
        app_error_text(body, status, text, sizeof text);
    x->cancelled = false;
    app_message(true, "export not written: %s", text);
}
