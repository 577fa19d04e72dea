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

/* The value of `keyword` in parsed conninfo options, or NULL. */
static const char *conninfo_value(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

/* Role DDL takes no bind parameters: the name and verifier go in as
 * session settings (parameters of set_config) and the DO block quotes them
 * with format(%I, %L). No SQL is built by concatenation here. */
static const char APP_LOGIN_SQL[] =
    "DO $$\n"
    "DECLARE\n"
    "    r text := current_setting('paytrackr.app_login');\n"
    "    v text := current_setting('paytrackr.app_verifier');\n"
    "BEGIN\n"
    "    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytrackr_app') THEN\n"
    "        RAISE EXCEPTION 'role paytrackr_app is missing (migration 0006 needs CREATEROLE)';\n"
    "    END IF;\n"
    "    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN\n"
    "        EXECUTE format('CREATE ROLE %I LOGIN', r);\n"
    "    END IF;\n"
    "    IF v <> '' THEN\n"
    "        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', r, v);\n"
    "    END IF;\n"
    "    EXECUTE format('GRANT paytrackr_app TO %I', r);\n"
    "END\n"
    "$$";

int migrate_app_login(PGconn *conn, const char *app_conninfo, char *cause, size_t cause_len)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(app_conninfo, &err);
    if (!opts) {
        /* libpq's message may quote the string, password included. */
        snprintf(cause, cause_len, "the application's connection string does not parse");
        PQfreemem(err);
        return -1;
    }
    const char *user = conninfo_value(opts, "user");
    const char *password = conninfo_value(opts, "password");
    const char *owner = PQuser(conn);
    char *verifier = NULL;
    int rc = -1;
    if (!user) {
        snprintf(cause, cause_len, "the application's connection string names no user");
        goto out;
    }
    if (owner && strcmp(user, owner) == 0) {
        snprintf(cause, cause_len,
                 "the application's role %s is the migration's own role: give "
                 "PAYTRACKR_DATABASE_URL a role of its own",
                 user);
        goto out;
    }
    if (password) {
        verifier = PQencryptPasswordConn(conn, password, user, NULL);
        if (!verifier) {
            snprintf(cause, cause_len, "cannot hash the application's password: %s",
                     PQerrorMessage(conn));
            goto out;
        }
    }
    const char *params[2] = {user, verifier ? verifier : ""};
    PGresult *res = PQexecParams(conn,
                                 "SELECT set_config('paytrackr.app_login', $1, false),"
                                 " set_config('paytrackr.app_verifier', $2, false)",
                                 2, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (ok)
        ok = exec_ok(conn, APP_LOGIN_SQL, cause, cause_len) == 0;
    else
        snprintf(cause, cause_len, "%s", PQerrorMessage(conn));
    /* The verifier does not stay in the session. */
    res = PQexec(conn, "SELECT set_config('paytrackr.app_verifier', '', false)");
    PQclear(res);
    if (!ok) {
        size_t n = strlen(cause);
        while (n > 0 && cause[n - 1] == '\n')
            cause[--n] = '\0';
        goto out;
    }
    rc = 0;
out:
    if (verifier) {
        explicit_bzero(verifier, strlen(verifier));
        PQfreemem(verifier);
    }
    PQconninfoFree(opts);
    return rc;
}
