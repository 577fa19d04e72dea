/*
 * pgstmt.h - prepared statements, per database connection.
 *
 * Owns: a small cache on each PGconn (libpq's event instance data, so it
 * lives and dies with the connection, and is emptied when libpq resets
 * it) of the statements this process prepared on it. pgstmt_exec() runs a
 * parameterised statement as a prepared one: prepared on its first use on
 * that connection, then only bound and executed. For the point reads the
 * API serves, parsing and planning are most of PostgreSQL's work (pgbench
 * -M prepared runs GET's query about 3x faster than -M extended), and the
 * server shares its cores with the database. Thread-confined like the
 * connection it belongs to.
 */
#ifndef PT_PGSTMT_H
#define PT_PGSTMT_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Gives `conn` a statement cache; 0, or -1 (the connection then runs
 * statements unprepared). */
int pgstmt_attach(PGconn *conn);

/*
 * Runs `sql` with `n` text parameters: prepared when the connection has a
 * cache with room, else with PQexecParams. `sql` must be the same text
 * each time for the same statement. The caller PQclear()s the result; a
 * failed preparation comes back as that failed result.
 */
PGresult *pgstmt_exec(PGconn *conn, const char *sql, int n, const char *const *params);

/*
 * True once after a statement failed because a migration changed the
 * types it returns; the statement is forgotten and prepared afresh on its
 * next use. The work that failed can then be run again: nothing of it
 * was committed.
 */
bool pgstmt_take_outdated(PGconn *conn);

#endif
