/*
 * migrate.h - versioned schema migrations.
 *
 * Owns: applying the SQL files of server/migrations (compiled in) in
 * version order, each in its own transaction, recorded in
 * schema_migrations. A session-level advisory lock serialises concurrent
 * replicas: the second waits, then finds nothing left to do.
 */
#ifndef PT_MIGRATE_H
#define PT_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "log.h"

/* Applies pending migrations on `conn` (blocking; worker thread or start
 * up only). Returns the number applied (>= 0), or -1 with cause. */
int migrate_apply(PGconn *conn, const struct logger *log, char *cause, size_t cause_len);

#endif
