/*
 * pgstmt.c - prepared statements, per database connection (see pgstmt.h).
 */
#include "pgstmt.h"

#include <libpq-events.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server has a couple of dozen statements; more than this run
 * unprepared rather than grow the cache without bound. */
#define PGSTMT_MAX 64

struct pgstmt_cache {
    char *sql[PGSTMT_MAX];     /* the text of each statement prepared */
    unsigned name[PGSTMT_MAX]; /* ...as "pt<name>" on this connection */
    int count;
    /* Names are never reused: a forgotten statement stays on the server
     * until the connection closes, and a new one needs a new name. */
    unsigned next_name;
    bool outdated; /* forgotten since the last pgstmt_take_outdated() */
};

static void cache_clear(struct pgstmt_cache *c)
{
    for (int i = 0; i < c->count; i++)
        free(c->sql[i]);
    c->count = 0;
}

static int on_event(PGEventId id, void *info, void *pass_through)
{
    (void) pass_through;
    switch (id) {
    case PGEVT_REGISTER: {
        PGEventRegister *e = info;
        struct pgstmt_cache *c = calloc(1, sizeof *c);
        if (c && PQsetInstanceData(e->conn, on_event, c))
            return 1;
        free(c);
        return 0;
    }
    case PGEVT_CONNRESET: {
        /* A reset connection is a new session: nothing is prepared on it. */
        PGEventConnReset *e = info;
        struct pgstmt_cache *c = PQinstanceData(e->conn, on_event);
        if (c)
            cache_clear(c);
        return 1;
    }
    case PGEVT_CONNDESTROY: {
        PGEventConnDestroy *e = info;
        struct pgstmt_cache *c = PQinstanceData(e->conn, on_event);
        if (c) {
            cache_clear(c);
            free(c);
        }
        return 1;
    }
    default:
        return 1;
    }
}

int pgstmt_attach(PGconn *conn)
{
    return PQregisterEventProc(conn, on_event, "paytrackr-pgstmt", NULL) ? 0 : -1;
}

/* The statement's index in the cache, preparing it when new; -1 to run it
 * unprepared (no cache, or full); -2 when preparing failed (*failed then
 * holds the result). */
static int lookup(PGconn *conn, struct pgstmt_cache *c, const char *sql, int n, PGresult **failed)
{
    for (int i = 0; i < c->count; i++)
        if (c->sql[i] == sql || strcmp(c->sql[i], sql) == 0)
            return i;
    if (c->count == PGSTMT_MAX)
        return -1;
    char *copy = strdup(sql);
    if (!copy)
        return -1;
    char name[16];
    snprintf(name, sizeof name, "pt%u", c->next_name);
    PGresult *res = PQprepare(conn, name, sql, n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        free(copy);
        *failed = res;
        return -2;
    }
    PQclear(res);
    c->sql[c->count] = copy;
    c->name[c->count] = c->next_name++;
    return c->count++;
}

/*
 * When a migration changes the type of a column a prepared statement
 * returns, PostgreSQL refuses to run it ("cached plan must not change
 * result type", 0A000) and goes on refusing. Preparing it again is the
 * only way back.
 */
static bool plan_outdated(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return PQresultStatus(res) == PGRES_FATAL_ERROR && state && strcmp(state, "0A000") == 0;
}

PGresult *pgstmt_exec(PGconn *conn, const char *sql, int n, const char *const *params)
{
    struct pgstmt_cache *c = PQinstanceData(conn, on_event);
    PGresult *failed = NULL;
    int i = c ? lookup(conn, c, sql, n, &failed) : -1;
    if (i == -2)
        return failed;
    if (i < 0)
        return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    char name[16];
    snprintf(name, sizeof name, "pt%u", c->name[i]);
    PGresult *res = PQexecPrepared(conn, name, n, params, NULL, NULL, 0);
    if (plan_outdated(res)) {
        /* A migration rarely changes one statement's columns only: all
         * are prepared afresh, so a job run again meets no other. */
        cache_clear(c);
        c->outdated = true;
    }
    return res;
}

bool pgstmt_take_outdated(PGconn *conn)
{
    struct pgstmt_cache *c = PQinstanceData(conn, on_event);
    if (!c || !c->outdated)
        return false;
    c->outdated = false;
    return true;
}
