/*
 * test-keyvault.c - paytrackr-kvtest, a command-line driver for keyvault.c
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

#include "keyvault.h"

/* ---- SHA-256 (FIPS 180-4), only to fingerprint the secret ---- */

struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t fill;
    uint64_t total;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof(iv));
    s->fill = 0;
    s->total = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 |
               (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha256_k[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1;
        d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
    s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    s->total += len;
    while (len > 0) {
        size_t take = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->block + s->fill, p, take);
        s->fill += take, p += take, len -= take;
        if (s->fill == 64) {
            sha256_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha256_hex(struct sha256 *s, char hex[65])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;

    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t) i] = (uint8_t) (bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", (unsigned) s->h[i]);
}

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
    char hex[65];
    struct sha256 sha;
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
    sha256_init(&sha);
    sha256_update(&sha, value, strlen(value));
    sha256_hex(&sha, hex);
    printf("ok length=%zu sha256=%.16s\n", strlen(value), hex);
    kv_secret_free(value);
    explicit_bzero(&sha, sizeof(sha));
    curl_global_cleanup();
    return 0;
}
