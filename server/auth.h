/*
 * auth.h - bearer tokens and roles.
 *
 * Owns: turning an Authorization header into a role. Tokens are known only
 * by their SHA-256; the presented token is hashed and compared against
 * every configured hash in constant time, so neither timing nor logs tell
 * anything about a token.
 */
#ifndef PT_AUTH_H
#define PT_AUTH_H

#include <stddef.h>

#include "config.h"

/* Who is calling: a role, the token's name (the actor recorded with every
 * change: "local" when auth is off) and a stable, non-secret caller id (a
 * prefix of the token's hash, or "local") for idempotency and rate-limit
 * scoping. */
struct auth_identity {
    enum config_role role;
    char caller[24];
    char name[CONFIG_TOKEN_NAME_MAX + 1];
};

/* "viewer" or "operator". */
const char *auth_role_name(enum config_role role);

/*
 * Resolves `header` (the Authorization value, may be NULL) under `cfg`.
 * Returns 0 with *id filled, or -1 when the caller is not authenticated
 * (no header, not Bearer, unknown token).
 */
int auth_check(const struct config *cfg, const char *header, struct auth_identity *id);

/* Resolves a bare token (from ?access_token= for browsers). */
int auth_check_token(const struct config *cfg, const char *token, size_t len,
                     struct auth_identity *id);

/* SHA-256 of `len` bytes as 64 lower-case hex digits plus NUL. */
void auth_sha256_hex(const void *data, size_t len, char out[65]);

/* The raw 32-byte SHA-256. */
void auth_sha256(const void *data, size_t len, unsigned char out[32]);

#endif
