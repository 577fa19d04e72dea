/*
 * config.c - environment parsing for paytrackr-server.
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

/* Files given through X_FILE are small secrets; anything larger is a
 * mistake (a wrong path), not a token list. */
#define CONFIG_FILE_MAX (1024 * 1024)

static int fail(char *cause, size_t cause_len, const char *name, const char *msg)
{
    snprintf(cause, cause_len, "%s: %s", name, msg);
    return -1;
}

static char *read_small_file(const char *path, char *cause, size_t cause_len, const char *name)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(cause, cause_len, "%s: cannot read %s: %s", name, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    bool failed = buf == NULL;
    while (!failed) {
        if (len + 1 >= cap) {
            char *bigger = cap < CONFIG_FILE_MAX ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                snprintf(cause, cause_len, "%s: %s is unreadable or larger than 1 MiB", name, path);
                failed = true;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (!failed && ferror(f)) {
        snprintf(cause, cause_len, "%s: error reading %s", name, path);
        failed = true;
    }
    if (failed) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) {
        if (!cause[0])
            snprintf(cause, cause_len, "%s: out of memory", name);
        return NULL;
    }
    buf[len] = '\0';
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return buf;
}

int config_secret(const char *name, char **out, char *cause, size_t cause_len)
{
    char file_name[128];
    snprintf(file_name, sizeof file_name, "%s_FILE", name);
    const char *direct = getenv(name);
    const char *path = getenv(file_name);
    *out = NULL;
    cause[0] = '\0';
    if (direct && *direct && path && *path)
        return fail(cause, cause_len, name, "set either it or its _FILE variant, not both");
    if (path && *path) {
        *out = read_small_file(path, cause, cause_len, file_name);
        return *out ? 0 : -1;
    }
    if (direct && *direct) {
        *out = strdup(direct);
        if (!*out)
            return fail(cause, cause_len, name, "out of memory");
    }
    return 0;
}

static int copy_plain(const char *name, const char *fallback, char **out, char *cause,
                      size_t cause_len)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = fallback;
    *out = NULL;
    if (!v)
        return 0;
    *out = strdup(v);
    return *out ? 0 : fail(cause, cause_len, name, "out of memory");
}

int config_parse_addr(const char *name, const char *value, char *host, size_t host_len, int *port,
                      char *cause, size_t cause_len)
{
    const char *colon;
    size_t hlen;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':')
            return fail(cause, cause_len, name, "expected [ipv6]:port");
        hlen = (size_t) (close - value - 1);
        colon = close + 1;
        value++;
    } else {
        colon = strrchr(value, ':');
        if (!colon)
            return fail(cause, cause_len, name, "expected host:port, e.g. 0.0.0.0:8080");
        hlen = (size_t) (colon - value);
    }
    if (hlen == 0 || hlen >= host_len)
        return fail(cause, cause_len, name, "host part is empty or too long");
    memcpy(host, value, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return fail(cause, cause_len, name, "port must be an integer from 1 to 65535");
    *port = (int) p;
    return 0;
}

static int parse_int(const char *name, long def, long min, long max, long *out, char *cause,
                     size_t cause_len)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(cause, cause_len, "%s: must be an integer from %ld to %ld, got \"%.40s\"", name,
                 min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A token name: 1 to 64 of A-Z a-z 0-9 . _ @ - (safe in logs, JSON and
 * the TUI without escaping). */
static bool token_name_ok(const char *name, size_t len)
{
    if (len < 1 || len > CONFIG_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char) name[i]) && !strchr("._@-", name[i]))
            return false;
    return true;
}

/* NAME:ROLE:HASH (v1.1) or ROLE:HASH, whose name is ROLE- plus the first 8
 * hex digits of the hash. */
static int parse_one_token(const char *entry, size_t len, struct config_token *tok, char *cause,
                           size_t cause_len)
{
    const char *colon = memchr(entry, ':', len);
    if (!colon)
        return fail(cause, cause_len, "PAYTRACKR_TOKENS",
                    "each entry must be NAME:ROLE:SHA256HEX or ROLE:SHA256HEX");
    const char *second = memchr(colon + 1, ':', len - (size_t) (colon + 1 - entry));
    const char *name = NULL;
    size_t nlen = 0;
    if (second) {
        name = entry;
        nlen = (size_t) (colon - entry);
        if (!token_name_ok(name, nlen))
            return fail(cause, cause_len, "PAYTRACKR_TOKENS",
                        "a token NAME must be 1 to 64 of A-Z a-z 0-9 . _ @ -");
        len -= nlen + 1;
        entry = colon + 1;
        colon = second;
    }
    size_t rlen = (size_t) (colon - entry);
    if (rlen == 6 && memcmp(entry, "viewer", 6) == 0)
        tok->role = ROLE_VIEWER;
    else if (rlen == 8 && memcmp(entry, "operator", 8) == 0)
        tok->role = ROLE_OPERATOR;
    else
        return fail(cause, cause_len, "PAYTRACKR_TOKENS", "role must be viewer or operator");
    const char *hex = colon + 1;
    size_t hlen = len - rlen - 1;
    if (hlen != 64)
        return fail(cause, cause_len, "PAYTRACKR_TOKENS",
                    "hash must be 64 hex digits (paytrackr-server hash-token prints it)");
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_value((unsigned char) hex[2 * i]);
        int lo = hex_value((unsigned char) hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(cause, cause_len, "PAYTRACKR_TOKENS", "hash must be hex digits");
        tok->hash[i] = (unsigned char) (hi << 4 | lo);
    }
    if (name)
        snprintf(tok->name, sizeof tok->name, "%.*s", (int) nlen, name);
    else
        snprintf(tok->name, sizeof tok->name, "%s-%02x%02x%02x%02x",
                 tok->role == ROLE_OPERATOR ? "operator" : "viewer", tok->hash[0], tok->hash[1],
                 tok->hash[2], tok->hash[3]);
    return 0;
}

/* Names are who did what in the audit trail: two tokens may not share one. */
static int names_unique(const struct config_token *toks, size_t n, char *cause, size_t cause_len)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(toks[i].name, toks[j].name) == 0) {
                snprintf(cause, cause_len,
                         "PAYTRACKR_TOKENS: the token name \"%s\" is used more than once",
                         toks[i].name);
                return -1;
            }
    return 0;
}

int config_parse_tokens(const char *text, struct config_token **out, size_t *count, char *cause,
                        size_t cause_len)
{
    *out = NULL;
    *count = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        if (*p == ',' || *p == '\n')
            cap++;
    struct config_token *toks = calloc(cap, sizeof *toks);
    if (!toks)
        return fail(cause, cause_len, "PAYTRACKR_TOKENS", "out of memory");
    size_t n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",\n");
        const char *start = p;
        const char *end = p + len;
        while (start < end && isspace((unsigned char) *start))
            start++;
        while (end > start && isspace((unsigned char) end[-1]))
            end--;
        if (end > start) {
            if (parse_one_token(start, (size_t) (end - start), &toks[n], cause, cause_len) < 0) {
                free(toks);
                return -1;
            }
            n++;
        }
        p += len;
        if (*p)
            p++;
    }
    if (names_unique(toks, n, cause, cause_len) < 0) {
        free(toks);
        return -1;
    }
    *out = toks;
    *count = n;
    return 0;
}

int config_load_database(struct config *cfg, char *cause, size_t cause_len)
{
    if (config_secret("PAYTRACKR_DATABASE_URL", &cfg->database_url, cause, cause_len) < 0 ||
        config_secret("PAYTRACKR_MIGRATE_DATABASE_URL", &cfg->migrate_database_url, cause,
                      cause_len) < 0 ||
        copy_plain("PAYTRACKR_MIGRATE_KEYVAULT_SECRET", NULL, &cfg->migrate_keyvault_secret, cause,
                   cause_len) < 0)
        return -1;
    if (copy_plain("PAYTRACKR_KEYVAULT_URL", NULL, &cfg->keyvault_url, cause, cause_len) < 0 ||
        copy_plain("PAYTRACKR_KEYVAULT_SECRET", "postgres-connection-string", &cfg->keyvault_secret,
                   cause, cause_len) < 0 ||
        copy_plain("AZURE_CLIENT_ID", NULL, &cfg->azure_client_id, cause, cause_len) < 0 ||
        copy_plain("PAYTRACKR_IMDS_ENDPOINT", "http://169.254.169.254", &cfg->imds_endpoint, cause,
                   cause_len) < 0 ||
        copy_plain("AZURE_FEDERATED_TOKEN_FILE", NULL, &cfg->azure_federated_token_file, cause,
                   cause_len) < 0 ||
        copy_plain("AZURE_TENANT_ID", NULL, &cfg->azure_tenant_id, cause, cause_len) < 0 ||
        copy_plain("AZURE_AUTHORITY_HOST", NULL, &cfg->azure_authority_host, cause, cause_len) <
            0 ||
        copy_plain("PAYTRACKR_DB_SSLROOTCERT", NULL, &cfg->db_sslrootcert, cause, cause_len) < 0)
        return -1;
    if (!cfg->database_url && !cfg->keyvault_url)
        return fail(cause, cause_len, "PAYTRACKR_DATABASE_URL",
                    "not set (set it, its _FILE variant, or PAYTRACKR_KEYVAULT_URL)");
    return 0;
}

static int load_choice(const char *name, const char *def, const char *const *choices, int n,
                       int *out, char *cause, size_t cause_len)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    for (int i = 0; i < n; i++) {
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    snprintf(cause, cause_len, "%s: must be %s or %s, got \"%.40s\"", name, choices[0], choices[1],
             v);
    return -1;
}

static int load_listen(struct config *cfg, char *cause, size_t cause_len)
{
    const char *v = getenv("PAYTRACKR_LISTEN");
    if (config_parse_addr("PAYTRACKR_LISTEN", v && *v ? v : "0.0.0.0:8080", cfg->listen_host,
                          sizeof cfg->listen_host, &cfg->listen_port, cause, cause_len) < 0)
        return -1;
    v = getenv("PAYTRACKR_ADMIN_LISTEN");
    if (config_parse_addr("PAYTRACKR_ADMIN_LISTEN", v && *v ? v : "0.0.0.0:9090", cfg->admin_host,
                          sizeof cfg->admin_host, &cfg->admin_port, cause, cause_len) < 0)
        return -1;
    if (cfg->listen_port == cfg->admin_port)
        return fail(cause, cause_len, "PAYTRACKR_ADMIN_LISTEN",
                    "must use another port than PAYTRACKR_LISTEN");
    return 0;
}

static int load_auth(struct config *cfg, char *cause, size_t cause_len)
{
    static const char *const auth_modes[] = {"required", "off"};
    int mode;
    if (load_choice("PAYTRACKR_AUTH", "required", auth_modes, 2, &mode, cause, cause_len) < 0)
        return -1;
    cfg->auth = mode == 0 ? CONFIG_AUTH_REQUIRED : CONFIG_AUTH_OFF;
    char *tokens = NULL;
    if (config_secret("PAYTRACKR_TOKENS", &tokens, cause, cause_len) < 0)
        return -1;
    int rc = 0;
    if (tokens)
        rc = config_parse_tokens(tokens, &cfg->tokens, &cfg->token_count, cause, cause_len);
    free(tokens);
    if (rc < 0)
        return -1;
    if (cfg->auth == CONFIG_AUTH_REQUIRED && cfg->token_count == 0)
        return fail(cause, cause_len, "PAYTRACKR_TOKENS",
                    "no tokens configured while PAYTRACKR_AUTH=required "
                    "(set tokens, or PAYTRACKR_AUTH=off for local use)");
    return 0;
}

static int load_limits(struct config *cfg, char *cause, size_t cause_len)
{
    struct {
        const char *name;
        long def, min, max;
        long value;
    } ints[] = {
        {"PAYTRACKR_DB_POOL_SIZE", 8, 1, 256, 0},
        {"PAYTRACKR_DB_QUEUE_SIZE", 256, 1, 100000, 0},
        {"PAYTRACKR_SHUTDOWN_GRACE_SECONDS", 25, 1, 3600, 0},
        {"PAYTRACKR_MAX_BODY_BYTES", 65536, 1024, 16 * 1024 * 1024, 0},
        {"PAYTRACKR_MAX_HEADER_BYTES", 16384, 1024, 65536, 0},
        {"PAYTRACKR_HEADER_TIMEOUT_SECONDS", 10, 1, 3600, 0},
        {"PAYTRACKR_REQUEST_TIMEOUT_SECONDS", 30, 1, 3600, 0},
        {"PAYTRACKR_WS_PING_SECONDS", 30, 1, 3600, 0},
        {"PAYTRACKR_WS_QUEUE_MAX", 1024, 16, 1000000, 0},
        {"PAYTRACKR_MAX_CONNECTIONS", 10000, 1, 1000000, 0},
        {"PAYTRACKR_MAX_URL_BYTES", 8192, 256, 65536, 0},
        {"PAYTRACKR_RATE_LIMIT_RPS", 1000, 0, 1000000, 0},
        {"PAYTRACKR_RATE_LIMIT_BURST", 2000, 1, 1000000, 0},
        {"PAYTRACKR_AUTH_FAIL_RPS", 5, 0, 1000000, 0},
        {"PAYTRACKR_AUTH_FAIL_BURST", 50, 1, 1000000, 0},
        {"PAYTRACKR_HOUSEKEEPING_SECONDS", 60, 1, 86400, 0},
        {"PAYTRACKR_WS_ANSWER_MAX_BYTES", 16L << 20, 65536, 1L << 30, 0},
        {"PAYTRACKR_WS_QUEUED_BYTES_MAX", 64L << 20, 1L << 20, 64L << 30, 0},
        {"PAYTRACKR_DB_READ_CONNECTIONS", 2, 0, 64, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (parse_int(ints[i].name, ints[i].def, ints[i].min, ints[i].max, &ints[i].value, cause,
                      cause_len) < 0)
            return -1;
    cfg->db_pool_size = (int) ints[0].value;
    cfg->db_queue_size = (int) ints[1].value;
    cfg->shutdown_grace_seconds = (int) ints[2].value;
    cfg->max_body_bytes = (size_t) ints[3].value;
    cfg->max_header_bytes = (size_t) ints[4].value;
    cfg->header_timeout_seconds = (int) ints[5].value;
    cfg->request_timeout_seconds = (int) ints[6].value;
    cfg->ws_ping_seconds = (int) ints[7].value;
    cfg->ws_queue_max = (int) ints[8].value;
    cfg->max_connections = (int) ints[9].value;
    cfg->max_url_bytes = (size_t) ints[10].value;
    cfg->rate_limit_rps = (int) ints[11].value;
    cfg->rate_limit_burst = (int) ints[12].value;
    cfg->auth_fail_rps = (int) ints[13].value;
    cfg->auth_fail_burst = (int) ints[14].value;
    cfg->housekeeping_seconds = (int) ints[15].value;
    cfg->ws_answer_max_bytes = (size_t) ints[16].value;
    cfg->ws_queued_bytes_max = (size_t) ints[17].value;
    cfg->db_read_connections = (int) ints[18].value;
    return 0;
}

static int load_tls(struct config *cfg, char *cause, size_t cause_len)
{
    if (copy_plain("PAYTRACKR_TLS_CERT", NULL, &cfg->tls_cert, cause, cause_len) < 0 ||
        copy_plain("PAYTRACKR_TLS_KEY", NULL, &cfg->tls_key, cause, cause_len) < 0)
        return -1;
    if (!cfg->tls_cert != !cfg->tls_key)
        return fail(cause, cause_len, cfg->tls_cert ? "PAYTRACKR_TLS_KEY" : "PAYTRACKR_TLS_CERT",
                    "PAYTRACKR_TLS_CERT and PAYTRACKR_TLS_KEY must be set together");
    const char *paths[2] = {cfg->tls_cert, cfg->tls_key};
    const char *names[2] = {"PAYTRACKR_TLS_CERT", "PAYTRACKR_TLS_KEY"};
    for (int i = 0; i < 2; i++) {
        if (!paths[i])
            continue;
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            snprintf(cause, cause_len, "%s: cannot read %s: %s", names[i], paths[i],
                     strerror(errno));
            return -1;
        }
        fclose(f);
    }
    if (cfg->tls_cert) {
        /* lws would only say that the vhost failed: name the setting. */
        char desc[400];
        int key_type;
        if (tls_check_pair(cfg->tls_cert, cfg->tls_key, &key_type, desc, sizeof desc, cause,
                           cause_len) < 0)
            return -1;
    }
    /* How often the loop looks at the certificate files for a renewal
     * (tls.c); 0 turns the watch off, leaving SIGHUP. */
    long reload = 0;
    if (parse_int("PAYTRACKR_TLS_RELOAD_SECONDS", 60, 0, 86400, &reload, cause, cause_len) < 0)
        return -1;
    cfg->tls_reload_seconds = (int) reload;
    return 0;
}

/* The settings that pick one of a few words. */
static int load_modes(struct config *cfg, char *cause, size_t cause_len)
{
    static const char *const formats[] = {"json", "text"};
    static const char *const migrate[] = {"auto", "off"};
    static const char *const on_off[] = {"on", "off"};
    int format, migrate_mode, prepare;
    if (load_choice("PAYTRACKR_LOG_FORMAT", "json", formats, 2, &format, cause, cause_len) < 0 ||
        load_choice("PAYTRACKR_MIGRATE", "auto", migrate, 2, &migrate_mode, cause, cause_len) < 0 ||
        load_choice("PAYTRACKR_DB_PREPARE", "on", on_off, 2, &prepare, cause, cause_len) < 0)
        return -1;
    cfg->log_format = format == 0 ? CONFIG_LOG_JSON : CONFIG_LOG_TEXT;
    cfg->migrate_at_start = migrate_mode == 0;
    cfg->db_prepare = prepare == 0;
    return 0;
}

int config_load(struct config *cfg, char *cause, size_t cause_len)
{
    memset(cfg, 0, sizeof *cfg);
    cause[0] = '\0';
    if (load_listen(cfg, cause, cause_len) < 0 || config_load_database(cfg, cause, cause_len) < 0 ||
        load_auth(cfg, cause, cause_len) < 0 || load_limits(cfg, cause, cause_len) < 0 ||
        load_tls(cfg, cause, cause_len) < 0 || load_modes(cfg, cause, cause_len) < 0)
        return -1;
    return 0;
}

void config_free(struct config *cfg)
{
    if (cfg->database_url) {
        /* the connection string holds a password: wipe it */
        memset(cfg->database_url, 0, strlen(cfg->database_url));
        free(cfg->database_url);
    }
    free(cfg->keyvault_url);
    free(cfg->keyvault_secret);
    if (cfg->migrate_database_url) {
        memset(cfg->migrate_database_url, 0, strlen(cfg->migrate_database_url));
        free(cfg->migrate_database_url);
    }
    free(cfg->migrate_keyvault_secret);
    free(cfg->azure_federated_token_file);
    free(cfg->azure_tenant_id);
    free(cfg->azure_authority_host);
    free(cfg->azure_client_id);
    free(cfg->imds_endpoint);
    free(cfg->db_sslrootcert);
    free(cfg->tokens);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    memset(cfg, 0, sizeof *cfg);
}
