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

/*
 * Least privilege: makes the login role named by `app_conninfo` (a libpq
 * connection string: its user and password) exist on `conn`'s server, log
 * in with that password, and belong to paytrackr_app (migration 0004's
 * row-access-only group), so the server never needs the schema owner's
 * login. `conn` is the migrating (owner, CREATEROLE) connection; the
 * password is sent as a SCRAM verifier computed here, never in clear. The
 * app role must differ from conn's user. Blocking. Returns 0 or -1 with
 * a cause that never contains the password.
 */
int migrate_app_login(PGconn *conn, const char *app_conninfo, char *cause, size_t cause_len);

#endif
