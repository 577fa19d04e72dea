/*
 * config.h - the server's settings, read once from the environment.
 *
 * Owns: struct config and its parsing. Every setting X that may hold a
 * secret also accepts X_FILE (a path whose content is the value, as a
 * mounted Kubernetes Secret provides). A bad value is reported as one line
 * naming the setting; the caller exits 2.
 */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_ADDR_MAX 128

enum config_auth { CONFIG_AUTH_REQUIRED, CONFIG_AUTH_OFF };
enum config_log_format { CONFIG_LOG_JSON, CONFIG_LOG_TEXT };
enum config_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2 };

#define CONFIG_TOKEN_NAME_MAX 64

/* One accepted token: who it acts as (the audit trail's actor), its role
 * and the SHA-256 of the token, never the token itself. */
struct config_token {
    char name[CONFIG_TOKEN_NAME_MAX + 1];
    enum config_role role;
    unsigned char hash[32];
};

struct config {
    char listen_host[CONFIG_ADDR_MAX];
    int listen_port;
    char admin_host[CONFIG_ADDR_MAX];
    int admin_port;

    char *database_url; /* owned; NULL when Key Vault supplies it */
    char *keyvault_url; /* owned */
    /* `migrate` only: the schema owner's connection string, directly or
     * as a Key Vault secret name; the server's own URL is then the
     * least-privileged application login that migrate sets up. */
    char *migrate_database_url;
    char *migrate_keyvault_secret;
    char *keyvault_secret;
    char *azure_client_id;
    char *imds_endpoint;
    /* Workload Identity, injected by the AKS webhook (keyvault.h) */
    char *azure_federated_token_file;
    char *azure_tenant_id;
    char *azure_authority_host;
    char *db_sslrootcert;

    struct config_token *tokens; /* owned array */
    size_t token_count;
    enum config_auth auth;

    char *tls_cert;
    char *tls_key;
    int tls_reload_seconds; /* PAYTRACKR_TLS_RELOAD_SECONDS: file watch period, 0 = off */

    int db_pool_size;
    int db_read_connections; /* PAYTRACKR_DB_READ_CONNECTIONS: pipelined reads */
    int db_queue_size;
    enum config_log_format log_format;
    bool migrate_at_start;
    bool db_prepare; /* PAYTRACKR_DB_PREPARE: statements run prepared */

    int shutdown_grace_seconds;
    size_t max_body_bytes;
    size_t max_header_bytes;
    int header_timeout_seconds;
    int request_timeout_seconds;
    int ws_ping_seconds;
    int ws_queue_max;
    size_t ws_answer_max_bytes; /* one result on the stream */
    size_t ws_queued_bytes_max; /* every stream queue together */
    int housekeeping_seconds;   /* expired idempotency keys, about this often */

    /* abuse limits (guard.c, ratelimit.c); a rate of 0 disables that limit */
    int max_connections;  /* public-port connections open at once */
    size_t max_url_bytes; /* path plus query string, else 414 */
    int rate_limit_rps;   /* requests per second per caller (token) */
    int rate_limit_burst;
    int auth_fail_rps; /* failed authentications per second per peer address */
    int auth_fail_burst;
};

/*
 * Fills `cfg` from the environment. Returns 0, or -1 with a one-line
 * reason naming the setting in `cause` (e.g. "PAYTRACKR_DB_POOL_SIZE: must
 * be an integer from 1 to 256"). The caller releases with config_free()
 * either way.
 */
int config_load(struct config *cfg, char *cause, size_t cause_len);

/* Like config_load but only what `migrate` needs: the database URL. */
int config_load_database(struct config *cfg, char *cause, size_t cause_len);

void config_free(struct config *cfg);

/* Reads a setting that may come from NAME or NAME_FILE (trailing newlines
 * of a file are dropped). Returns 0 with *out malloc'd (or NULL when
 * neither is set), -1 with cause on a read error or when both are set. */
int config_secret(const char *name, char **out, char *cause, size_t cause_len);

/* Parses "host:port" or "[v6]:port" for setting `name`. */
int config_parse_addr(const char *name, const char *value, char *host, size_t host_len, int *port,
                      char *cause, size_t cause_len);

/* Parses the PAYTRACKR_TOKENS list: "ROLE:SHA256HEX" entries separated by
 * commas or newlines. Returns 0 with an owned array, or -1 with cause. */
int config_parse_tokens(const char *text, struct config_token **out, size_t *count, char *cause,
                        size_t cause_len);

#endif
