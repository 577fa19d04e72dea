/*
 * kvtest.c - paytrackr-kvtest, a command-line driver for server/keyvault.c
 * used by tests/integration/test_keyvault.py.
 *
 * Configured like the server, from the environment:
 *   PAYTRACKR_IMDS_ENDPOINT, PAYTRACKR_KEYVAULT_URL, PAYTRACKR_KEYVAULT_SECRET,
 *   AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID,
 *   AZURE_AUTHORITY_HOST (Workload Identity), and optionally KV_TIMEOUT_MS, KV_MAX_ATTEMPTS,
 *   KV_BACKOFF_MS. An empty variable counts as unset.
 *
 *   paytrackr-kvtest           fetch the secret
 *   paytrackr-kvtest --check   only run kv_config_check (no network)
 *
 * On success it prints "ok length=N sha256=<first 16 hex digits>" and
 * never the value itself, so that test logs stay free of secrets; on
 * failure one line "paytrackr-kvtest: <cause>" on stderr.
 * Exit status: 0 success, 1 fetch failed, 2 configuration or usage error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "keyvault.h"

/* ---- driver ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Strict: the whole variable is a decimal integer within [lo, hi]. */
static int env_long(const char *name, long lo, long hi, long *out)
{
    const char *v = env(name);
    char *end;
    long x;

    if (v == NULL)
        return 0;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "paytrackr-kvtest: %s must be an integer from %ld to %ld\n", name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    kv_config cfg;
    char cause[KV_CAUSE_LEN];
    char *value = NULL;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    long attempts = KV_DEFAULT_MAX_ATTEMPTS;
    int check_only = argc == 2 && strcmp(argv[1], "--check") == 0;

    if (argc > 2 || (argc == 2 && !check_only)) {
        fprintf(stderr, "usage: paytrackr-kvtest [--check]\n");
        return 2;
    }
    kv_config_init(&cfg);
    if (env("PAYTRACKR_IMDS_ENDPOINT") != NULL)
        cfg.imds_endpoint = env("PAYTRACKR_IMDS_ENDPOINT");
    cfg.vault_url = env("PAYTRACKR_KEYVAULT_URL");
    if (env("PAYTRACKR_KEYVAULT_SECRET") != NULL)
        cfg.secret_name = env("PAYTRACKR_KEYVAULT_SECRET");
    cfg.client_id = env("AZURE_CLIENT_ID");
    cfg.federated_token_file = env("AZURE_FEDERATED_TOKEN_FILE");
    cfg.tenant_id = env("AZURE_TENANT_ID");
    cfg.authority_host = env("AZURE_AUTHORITY_HOST");
    if (env_long("KV_TIMEOUT_MS", 1, KV_TIMEOUT_MS_MAX, &cfg.timeout_ms) != 0 ||
        env_long("KV_MAX_ATTEMPTS", 1, KV_MAX_ATTEMPTS_MAX, &attempts) != 0 ||
        env_long("KV_BACKOFF_MS", 0, KV_BACKOFF_CAP_MS, &cfg.backoff_base_ms) != 0)
        return 2;
    cfg.max_attempts = (int) attempts;

    if (kv_config_check(&cfg, cause, sizeof(cause)) != 0) {
        fprintf(stderr, "paytrackr-kvtest: %s\n", cause);
        return 2;
    }
    if (check_only) {
        printf("config ok\n");
        return 0;
    }
    /* The program's one global init, before any use of the module. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "paytrackr-kvtest: curl_global_init failed\n");
        return 1;
    }
    if (kv_fetch_secret(&cfg, &value, cause, sizeof(cause)) != 0) {
        fprintf(stderr, "paytrackr-kvtest: %s\n", cause);
        curl_global_cleanup();
        return 1;
    }
    /* The fingerprint is the first 8 bytes of the digest, in hex. */
    SHA256((const unsigned char *) value, strlen(value), digest);
    printf("ok length=%zu sha256=", strlen(value));
    for (int i = 0; i < 8; i++)
        printf("%02x", digest[i]);
    printf("\n");
    kv_secret_free(value);
    curl_global_cleanup();
    return 0;
}
