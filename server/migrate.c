/*
 * migrate.c - schema migrations under an advisory lock.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "embedded.h"

/* An arbitrary constant naming "paytrackr migrations" among advisory
 * locks; shared by every replica. */
#define MIGRATE_LOCK_KEY "7302452770301731923"

static int exec_ok(PGconn *conn, const char *sql, char *cause, size_t cause_len)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(cause, cause_len, "%s", PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

/* The version number a file name starts with ("0001_init.sql" -> 1). */
static long file_version(const char *name)
{
    return strtol(name, NULL, 10);
}

static int is_applied(PGconn *conn, long version, int *applied, char *cause, size_t cause_len)
{
    char v[32];
    snprintf(v, sizeof v, "%ld", version);
    const char *params[1] = {v};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(cause, cause_len, "%s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    *applied = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int apply_one(PGconn *conn, const struct embedded_file *f, char *cause, size_t cause_len)
{
    char v[32];
    snprintf(v, sizeof v, "%ld", file_version(f->name));
    const char *params[2] = {v, f->name};
    if (exec_ok(conn, "BEGIN", cause, cause_len) < 0)
        return -1;
    if (exec_ok(conn, f->text, cause, cause_len) < 0)
        goto rollback;
    PGresult *res =
        PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(cause, cause_len, "%s", PQerrorMessage(conn));
    PQclear(res);
    if (!ok)
        goto rollback;
    return exec_ok(conn, "COMMIT", cause, cause_len);
rollback:;
    char ignored[8];
    exec_ok(conn, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}

int migrate_apply(PGconn *conn, const struct logger *log, char *cause, size_t cause_len)
{
    int applied_now = 0;
    PQnoticeProcessor previous = PQsetNoticeProcessor(conn, db_ignore_notice, NULL);
    cause[0] = '\0';
    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", cause, cause_len) < 0)
        return -1;
    int rc = exec_ok(conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY,"
                     " name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     cause, cause_len);
    for (const struct embedded_file *f = embedded_migrations; rc == 0 && f->name; f++) {
        int applied = 0;
        rc = is_applied(conn, file_version(f->name), &applied, cause, cause_len);
        if (rc < 0 || applied)
            continue;
        rc = apply_one(conn, f, cause, cause_len);
        if (rc == 0) {
            applied_now++;
            log_msg(log, LOG_INFO, "applied migration %s", f->name);
        } else {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: %s", f->name, cause);
            snprintf(cause, cause_len, "%s", msg);
        }
    }
    char ignored[8];
    exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", ignored, sizeof ignored);
    PQsetNoticeProcessor(conn, previous, NULL);
    if (rc < 0) {
        size_t n = strlen(cause);
        while (n > 0 && cause[n - 1] == '\n')
            cause[--n] = '\0';
        return -1;
    }
    return applied_now;
}
