/*
 * auth.c - hashing and constant-time token comparison.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void auth_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
        memset(out, 0, 32);
}

void auth_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[32];
    auth_sha256(data, len, h);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int auth_check_token(const struct config *cfg, const char *token, size_t len,
                     struct auth_identity *id)
{
    unsigned char h[32];
    auth_sha256(token, len, h);
    /* Compare with every entry, without stopping at a match, so the time
     * taken does not say which entry (if any) matched. */
    enum config_role role = ROLE_NONE;
    size_t match = 0;
    for (size_t i = 0; i < cfg->token_count; i++) {
        int same = CRYPTO_memcmp(h, cfg->tokens[i].hash, 32) == 0;
        if (same && role == ROLE_NONE) {
            role = cfg->tokens[i].role;
            match = i;
        }
    }
    if (role == ROLE_NONE || len == 0)
        return -1;
    id->role = role;
    snprintf(id->name, sizeof id->name, "%s", cfg->tokens[match].name);
    /* The caller id is the configured hash's prefix: stable across
     * restarts and replicas, and useless for recovering the token. */
    for (int i = 0; i < 8; i++)
        snprintf(id->caller + 2 * i, 3, "%02x", cfg->tokens[match].hash[i]);
    return 0;
}

int auth_check(const struct config *cfg, const char *header, struct auth_identity *id)
{
    if (cfg->auth == CONFIG_AUTH_OFF) {
        id->role = ROLE_OPERATOR;
        snprintf(id->caller, sizeof id->caller, "local");
        snprintf(id->name, sizeof id->name, "local");
        return 0;
    }
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return -1;
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len > 0 && token[len - 1] == ' ')
        len--;
    return auth_check_token(cfg, token, len, id);
}

const char *auth_role_name(enum config_role role)
{
    return role == ROLE_OPERATOR ? "operator" : "viewer";
}
