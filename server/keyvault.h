/*
 * keyvault.h - read one secret from Azure Key Vault with the node's managed
 * identity (IMDS token) or, when AZURE_FEDERATED_TOKEN_FILE is set, with
 * Workload Identity (Entra ID token by the client-assertion flow), then the
 * Key Vault REST API, over libcurl.
 *
 * Owns: nothing global. Every call makes its own curl handles, buffers and
 * PRNG state and releases them before returning, so calls from several
 * threads at once are safe.
 *
 * The caller owns:
 *  - curl_global_init(CURL_GLOBAL_DEFAULT), called exactly once by the
 *    program before any thread calls into this module (and
 *    curl_global_cleanup at exit). libcurl's global init is not thread-safe
 *    on every build, so this module never calls it.
 *  - the kv_config and every string in it, which are only read.
 *  - the secret returned by kv_fetch_secret, released with kv_secret_free.
 *
 * kv_fetch_secret blocks (network, timeouts, retries with back-off sleeps):
 * call it at start-up or from the Key Vault refresher thread (kvrefresh.h),
 * never from the libwebsockets event loop.
 *
 * Nothing here logs. Causes written to the caller's buffer name the step
 * and the setting that failed and never contain the token or the secret.
 */
#ifndef PT_KEYVAULT_H
#define PT_KEYVAULT_H

#include <stddef.h>

#define KV_DEFAULT_IMDS_ENDPOINT   "http://169.254.169.254"
#define KV_DEFAULT_AUTHORITY_HOST  "https://login.microsoftonline.com"
#define KV_DEFAULT_SECRET_NAME     "postgres-connection-string"
#define KV_DEFAULT_TIMEOUT_MS      5000L
#define KV_DEFAULT_MAX_ATTEMPTS    6
#define KV_DEFAULT_BACKOFF_BASE_MS 200L

/* Upper bounds of one back-off sleep: the jittered exponential delay, and a
 * server's Retry-After (which can ask for longer than our own schedule). */
#define KV_BACKOFF_CAP_MS     10000L
#define KV_RETRY_AFTER_CAP_MS 30000L

/* Largest answer body accepted from IMDS or Key Vault (a larger one is an
 * error, not truncated). A secret is at most 25 KiB in Key Vault. */
#define KV_MAX_BODY_BYTES (64 * 1024)

/* A cause buffer of this size never truncates a cause. */
#define KV_CAUSE_LEN 512

/* Allowed ranges, checked by kv_config_check. */
#define KV_TIMEOUT_MS_MAX   600000L
#define KV_MAX_ATTEMPTS_MAX 100

typedef struct kv_config {
    /* "http://169.254.169.254" (PAYTRACKR_IMDS_ENDPOINT); NULL means that
     * default. An origin: scheme, host and optional port, no path. */
    const char *imds_endpoint;
    /* "https://myvault.vault.azure.net" (PAYTRACKR_KEYVAULT_URL); required.
     * An origin; trailing slashes are ignored. */
    const char *vault_url;
    /* PAYTRACKR_KEYVAULT_SECRET; NULL means KV_DEFAULT_SECRET_NAME. */
    const char *secret_name;
    /* AZURE_CLIENT_ID of the user-assigned identity; NULL or "" sends no
     * client_id (IMDS then picks the only identity, if there is one).
     * Required with Workload Identity. */
    const char *client_id;
    /* Workload Identity, as the AKS webhook injects it. When
     * federated_token_file is set (AZURE_FEDERATED_TOKEN_FILE), the token
     * comes from POST {authority_host}/{tenant_id}/oauth2/v2.0/token with
     * the file's ServiceAccount token as client_assertion, not from IMDS.
     * The file is read at every fetch: the kubelet renews it. */
    const char *federated_token_file;
    const char *tenant_id;      /* AZURE_TENANT_ID: a GUID or a domain */
    const char *authority_host; /* AZURE_AUTHORITY_HOST; NULL: KV_DEFAULT_AUTHORITY_HOST */
    long timeout_ms;            /* whole HTTP call, connect included: 1..KV_TIMEOUT_MS_MAX */
    int max_attempts;           /* per step (token, secret): 1..KV_MAX_ATTEMPTS_MAX */
    long backoff_base_ms; /* first back-off ceiling, doubled per retry: 0..KV_BACKOFF_CAP_MS */
} kv_config;

/* Fills cfg with the defaults above; vault_url and client_id are NULL. */
void kv_config_init(kv_config *cfg);

/*
 * Checks cfg without any network access:
 *  - PAYTRACKR_KEYVAULT_URL is set and is https://, or http:// to a
 *    loopback host (127.0.0.0/8, ::1, localhost: a local stand-in);
 *  - PAYTRACKR_IMDS_ENDPOINT likewise, where http:// is also accepted for a
 *    link-local host (169.254.0.0/16, fe80::/10), which is what IMDS is;
 *  - both are origins only: no credentials, path, query or fragment;
 *  - PAYTRACKR_KEYVAULT_SECRET is 1 to 127 characters of [0-9a-zA-Z-];
 *  - with AZURE_FEDERATED_TOKEN_FILE: AZURE_CLIENT_ID and AZURE_TENANT_ID
 *    ([0-9a-zA-Z.-]) are set, and AZURE_AUTHORITY_HOST is an https://
 *    origin (http:// only for a loopback host);
 *  - the numeric settings are in range.
 * Returns 0, or -1 with a cause naming the setting.
 */
int kv_config_check(const kv_config *cfg, char *cause, size_t cause_len);

/*
 * Fetches the secret value: a token for https://vault.azure.net (from IMDS,
 * or from Entra ID with the federated token), then
 * GET {vault}/secrets/{name}?api-version=7.4. Each step retries connection
 * errors, timeouts, 429 and 5xx (and 404/410 from IMDS, per Azure's
 * guidance) up to max_attempts, sleeping with exponential back-off and full
 * jitter, or for Retry-After on 429/503. Other answers fail at once.
 *
 * On success returns 0 and *value_out is a malloc'd NUL-terminated string
 * the caller releases with kv_secret_free. On failure returns -1,
 * *value_out is NULL and cause holds one sentence such as
 * "Key Vault secret read failed: HTTP 403 (Forbidden)".
 */
int kv_fetch_secret(const kv_config *cfg, char **value_out, char *cause, size_t cause_len);

/* Wipes and frees a value from kv_fetch_secret; NULL is a no-op. */
void kv_secret_free(char *value);

#endif
