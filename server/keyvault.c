/*
 * keyvault.c - Azure Key Vault secret read via the managed identity (IMDS)
 * or Workload Identity (Entra ID, client-assertion flow).
 *
 * Two steps, each one HTTP request with its own retry loop:
 *   1. a token for Key Vault, either
 *      IMDS: GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
 *      &resource=https%3A%2F%2Fvault.azure.net[&client_id=...], "Metadata: true"
 *      or, with AZURE_FEDERATED_TOKEN_FILE, Entra ID:
 *      POST {authority}/{tenant}/oauth2/v2.0/token, form-encoded client_id,
 *      scope=https://vault.azure.net/.default, grant_type=client_credentials,
 *      client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
 *      jwt-bearer and client_assertion=<the projected ServiceAccount token>
 *   2. Key Vault: GET {vault}/secrets/{name}?api-version=7.4,
 *      "Authorization: Bearer <token>"
 *
 * Memory that held the token or the secret (answer bodies, parsed JSON,
 * header lists) is wiped before it is freed, so a later heap dump or a
 * reuse of the block does not reveal it.
 */
#include "keyvault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define KV_IMDS_API_VERSION       "2018-02-01"
#define KV_VAULT_API_VERSION      "7.4"
#define KV_RESOURCE               "https://vault.azure.net"
#define KV_SCOPE_ESCAPED          "https%3A%2F%2Fvault.azure.net%2F.default"
#define KV_ASSERTION_TYPE_ESCAPED "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
#define KV_TENANT_MAX             128
#define KV_USER_AGENT             "paytrackr-keyvault/1"
#define KV_SECRET_NAME_MAX        127
/* A real access token is a JWT of a few KiB; the cap only bounds what we
 * put in a header. */
#define KV_TOKEN_MAX 16384

enum kv_host_kind { KV_HOST_NAME, KV_HOST_IP, KV_HOST_LOOPBACK, KV_HOST_LINK_LOCAL };

/* The parts of an origin URL that the checks need. */
struct kv_origin {
    int https;
    enum kv_host_kind kind;
    size_t len; /* length of the URL without its trailing slashes */
};

struct kv_rng {
    uint64_t state;
};

/* An answer body in one fixed buffer: growing it with realloc would leave
 * unwiped copies of the token or secret in freed memory. */
struct kv_body {
    char *data;
    size_t len;
    int too_big;
};

struct kv_step {
    const char *name; /* "IMDS token request", used in causes */
    const char *url;
    const struct curl_slist *headers;
    int is_imds;
    const char *post_body; /* NULL: GET; else POST this (form-encoded) */
};

/* Checked like printf by gcc and clang (the compilers Debian builds with). */
static void set_cause(char *cause, size_t cause_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_cause(char *cause, size_t cause_len, const char *fmt, ...)
{
    va_list ap;

    if (cause == NULL || cause_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(cause, cause_len, fmt, ap);
    va_end(ap);
}

static void wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

static void wipe_free_str(char *s)
{
    if (s == NULL)
        return;
    wipe(s, strlen(s));
    free(s);
}

void kv_secret_free(char *value)
{
    wipe_free_str(value);
}

void kv_config_init(kv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->imds_endpoint = KV_DEFAULT_IMDS_ENDPOINT;
    cfg->vault_url = NULL;
    cfg->secret_name = KV_DEFAULT_SECRET_NAME;
    cfg->client_id = NULL;
    cfg->federated_token_file = NULL;
    cfg->tenant_id = NULL;
    cfg->authority_host = NULL;
    cfg->timeout_ms = KV_DEFAULT_TIMEOUT_MS;
    cfg->max_attempts = KV_DEFAULT_MAX_ATTEMPTS;
    cfg->backoff_base_ms = KV_DEFAULT_BACKOFF_BASE_MS;
}

/* ---- configuration checks ---- */

/* ASCII only on purpose: <ctype.h> depends on the locale. */
static int is_alnum_ascii(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int has_prefix_nocase(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        char a = *s, b = *prefix;
        if (a >= 'A' && a <= 'Z')
            a = (char) (a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int secret_name_valid(const char *name)
{
    size_t n = 0;

    for (; name[n] != '\0'; n++) {
        if (n >= KV_SECRET_NAME_MAX || !(is_alnum_ascii(name[n]) || name[n] == '-'))
            return 0;
    }
    return n > 0;
}

static enum kv_host_kind classify_host(const char *host, int bracketed)
{
    unsigned char addr[16];

    if (bracketed) {
        if (inet_pton(AF_INET6, host, addr) != 1)
            return KV_HOST_NAME; /* caller refuses a bracketed non-address */
        const struct in6_addr *a6 = (const struct in6_addr *) (const void *) addr;
        if (IN6_IS_ADDR_LOOPBACK(a6))
            return KV_HOST_LOOPBACK;
        if (IN6_IS_ADDR_LINKLOCAL(a6))
            return KV_HOST_LINK_LOCAL;
        return KV_HOST_IP;
    }
    if (strcmp(host, "localhost") == 0)
        return KV_HOST_LOOPBACK;
    /* inet_pton takes only the full dotted quad, so "127.0.0.1.example.com"
     * or "127.1" are names here and never count as loopback. */
    if (inet_pton(AF_INET, host, addr) == 1) {
        if (addr[0] == 127)
            return KV_HOST_LOOPBACK;
        if (addr[0] == 169 && addr[1] == 254)
            return KV_HOST_LINK_LOCAL;
        return KV_HOST_IP;
    }
    return KV_HOST_NAME;
}

/*
 * Parses "scheme://host[:port]" followed by nothing but slashes. Returns
 * NULL and fills *out, or a phrase saying what is wrong.
 */
static const char *parse_origin(const char *url, struct kv_origin *out)
{
    char host[256];
    const char *p, *auth, *end;
    size_t hlen;
    int bracketed = 0;

    for (p = url; *p != '\0'; p++) {
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
            return "must not contain spaces, control or non-ASCII characters";
    }
    if (has_prefix_nocase(url, "https://")) {
        out->https = 1;
        auth = url + 8;
    } else if (has_prefix_nocase(url, "http://")) {
        out->https = 0;
        auth = url + 7;
    } else {
        return "must start with https://";
    }
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t) (end - auth)) != NULL)
        return "must not contain credentials";
    for (p = end; *p == '/'; p++)
        ;
    if (*p != '\0')
        return "must be only scheme, host and port (no path, query or fragment)";
    out->len = (size_t) (end - url);

    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t) (end - auth));
        if (close == NULL)
            return "has an unterminated [IPv6] host";
        hlen = (size_t) (close - auth - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return "has a bad [IPv6] host";
        memcpy(host, auth + 1, hlen);
        host[hlen] = '\0';
        bracketed = 1;
        p = close + 1;
    } else {
        p = auth + strcspn(auth, ":/?#");
        hlen = (size_t) (p - auth);
        if (hlen == 0)
            return "has no host";
        if (hlen >= sizeof(host))
            return "has a host name that is too long";
        memcpy(host, auth, hlen);
        host[hlen] = '\0';
        for (size_t i = 0; i < hlen; i++) {
            if (!(is_alnum_ascii(host[i]) || host[i] == '-' || host[i] == '.'))
                return "has a host with characters other than letters, digits, '-' and '.'";
        }
    }
    if (p < end) {
        long port = 0;
        if (*p != ':' || p + 1 == end || end - (p + 1) > 5)
            return "has a bad port";
        for (p++; p < end; p++) {
            if (*p < '0' || *p > '9')
                return "has a bad port";
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return "has a bad port";
    }
    out->kind = classify_host(host, bracketed);
    if (bracketed && out->kind == KV_HOST_NAME)
        return "has a bad [IPv6] host";
    return NULL;
}

static int workload_identity(const kv_config *cfg)
{
    return cfg->federated_token_file != NULL && cfg->federated_token_file[0] != '\0';
}

/* A tenant is a GUID or a verified domain: letters, digits, '-' and '.'. */
static int tenant_valid(const char *t)
{
    size_t n = 0;

    if (t == NULL)
        return 0;
    for (; t[n] != '\0'; n++) {
        if (n >= KV_TENANT_MAX || !(is_alnum_ascii(t[n]) || t[n] == '-' || t[n] == '.'))
            return 0;
    }
    return n > 0 && t[0] != '.';
}

/* The Workload Identity settings, as the AKS webhook injects them. */
static int workload_check(const kv_config *cfg, char *cause, size_t cause_len)
{
    struct kv_origin o;
    const char *authority = cfg->authority_host ? cfg->authority_host : KV_DEFAULT_AUTHORITY_HOST;
    const char *why;

    if (cfg->client_id == NULL || cfg->client_id[0] == '\0') {
        set_cause(cause, cause_len,
                  "AZURE_CLIENT_ID must be set with AZURE_FEDERATED_TOKEN_FILE (Workload "
                  "Identity)");
        return -1;
    }
    if (!tenant_valid(cfg->tenant_id)) {
        set_cause(cause, cause_len,
                  "AZURE_TENANT_ID must be set with AZURE_FEDERATED_TOKEN_FILE: a tenant id or "
                  "domain of 1 to %d characters of 0-9, a-z, A-Z, '-' and '.'",
                  KV_TENANT_MAX);
        return -1;
    }
    why = parse_origin(authority, &o);
    if (why != NULL) {
        set_cause(cause, cause_len, "AZURE_AUTHORITY_HOST %s", why);
        return -1;
    }
    /* The assertion and the token cross this connection. */
    if (!o.https && o.kind != KV_HOST_LOOPBACK) {
        set_cause(cause, cause_len,
                  "AZURE_AUTHORITY_HOST must use https:// (http:// is accepted only for a "
                  "loopback host)");
        return -1;
    }
    return 0;
}

int kv_config_check(const kv_config *cfg, char *cause, size_t cause_len)
{
    struct kv_origin o;
    const char *why;
    const char *imds = cfg->imds_endpoint ? cfg->imds_endpoint : KV_DEFAULT_IMDS_ENDPOINT;
    const char *name = cfg->secret_name ? cfg->secret_name : KV_DEFAULT_SECRET_NAME;

    if (cfg->vault_url == NULL || cfg->vault_url[0] == '\0') {
        set_cause(cause, cause_len, "PAYTRACKR_KEYVAULT_URL is not set");
        return -1;
    }
    why = parse_origin(cfg->vault_url, &o);
    if (why != NULL) {
        set_cause(cause, cause_len, "PAYTRACKR_KEYVAULT_URL %s", why);
        return -1;
    }
    if (!o.https && o.kind != KV_HOST_LOOPBACK) {
        /* The token and the secret would cross the network in the clear. */
        set_cause(cause, cause_len,
                  "PAYTRACKR_KEYVAULT_URL must use https:// (http:// is accepted only for a "
                  "loopback host)");
        return -1;
    }
    why = parse_origin(imds, &o);
    if (why != NULL) {
        set_cause(cause, cause_len, "PAYTRACKR_IMDS_ENDPOINT %s", why);
        return -1;
    }
    /* IMDS itself is plain http on a link-local address that never leaves
     * the host; anywhere else http would expose the token. */
    if (!o.https && o.kind != KV_HOST_LOOPBACK && o.kind != KV_HOST_LINK_LOCAL) {
        set_cause(cause, cause_len,
                  "PAYTRACKR_IMDS_ENDPOINT must use https:// (http:// is accepted only for a "
                  "link-local or loopback host)");
        return -1;
    }
    if (!secret_name_valid(name)) {
        set_cause(cause, cause_len,
                  "PAYTRACKR_KEYVAULT_SECRET must be 1 to %d characters of 0-9, a-z, A-Z and '-'",
                  KV_SECRET_NAME_MAX);
        return -1;
    }
    if (cfg->client_id != NULL && strlen(cfg->client_id) > 256) {
        set_cause(cause, cause_len, "AZURE_CLIENT_ID is longer than 256 characters");
        return -1;
    }
    if (workload_identity(cfg) && workload_check(cfg, cause, cause_len) != 0)
        return -1;
    if (cfg->timeout_ms < 1 || cfg->timeout_ms > KV_TIMEOUT_MS_MAX) {
        set_cause(cause, cause_len, "Key Vault timeout must be 1 to %ld ms", KV_TIMEOUT_MS_MAX);
        return -1;
    }
    if (cfg->max_attempts < 1 || cfg->max_attempts > KV_MAX_ATTEMPTS_MAX) {
        set_cause(cause, cause_len, "Key Vault attempts must be 1 to %d", KV_MAX_ATTEMPTS_MAX);
        return -1;
    }
    if (cfg->backoff_base_ms < 0 || cfg->backoff_base_ms > KV_BACKOFF_CAP_MS) {
        set_cause(cause, cause_len, "Key Vault back-off must be 0 to %ld ms", KV_BACKOFF_CAP_MS);
        return -1;
    }
    return 0;
}

/* ---- back-off ---- */

/* The jitter only has to decorrelate replicas that start together, so a
 * weak seed is an acceptable last resort; it is never a secret. */
static void rng_seed(struct kv_rng *rng)
{
    uint64_t seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t) sizeof(seed)) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t got = -1;
        if (fd >= 0) {
            got = read(fd, &seed, sizeof(seed));
            close(fd);
        }
        if (got != (ssize_t) sizeof(seed)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            seed = ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec ^
                   ((uint64_t) getpid() << 16) ^ (uint64_t) (uintptr_t) rng;
        }
    }
    rng->state = seed;
}

/* splitmix64: tiny, and good enough for spreading sleeps. */
static uint64_t rng_next(struct kv_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* "Full jitter": uniform in [0, min(cap, base * 2^retry)]. */
static long backoff_ms(struct kv_rng *rng, long base_ms, int retry)
{
    long ceiling = base_ms;

    for (int i = 0; i < retry && ceiling < KV_BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > KV_BACKOFF_CAP_MS)
        ceiling = KV_BACKOFF_CAP_MS;
    if (ceiling <= 0)
        return 0;
    return (long) (rng_next(rng) % ((uint64_t) ceiling + 1));
}

static void sleep_ms(long ms)
{
    struct timespec req = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    struct timespec rem;

    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

/* ---- HTTP ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct kv_body *body = userdata;
    size_t n = size * nmemb; /* size is always 1 for write callbacks */

    if (n > KV_MAX_BODY_BYTES - body->len) {
        body->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    memcpy(body->data + body->len, ptr, n);
    body->len += n;
    return n;
}

#define KV_SETOPT(h, opt, val)                              \
    do {                                                    \
        CURLcode setopt_rc = curl_easy_setopt(h, opt, val); \
        if (setopt_rc != CURLE_OK)                          \
            return setopt_rc;                               \
    } while (0)

static CURLcode configure(CURL *h, const kv_config *cfg, const struct kv_step *step,
                          struct kv_body *body, char *errbuf)
{
    KV_SETOPT(h, CURLOPT_URL, step->url);
    if (step->post_body != NULL) {
        KV_SETOPT(h, CURLOPT_POSTFIELDS, step->post_body);
        KV_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(step->post_body));
    } else {
        KV_SETOPT(h, CURLOPT_HTTPGET, 1L);
    }
    KV_SETOPT(h, CURLOPT_HTTPHEADER, step->headers);
    KV_SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    KV_SETOPT(h, CURLOPT_WRITEDATA, body);
    KV_SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    /* Signals for DNS timeouts are not thread-safe; we run on workers. */
    KV_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    KV_SETOPT(h, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    KV_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->timeout_ms);
    /* A redirect could carry the bearer token to another host. */
    KV_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    KV_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
    KV_SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) KV_MAX_BODY_BYTES);
    KV_SETOPT(h, CURLOPT_USERAGENT, KV_USER_AGENT);
    /* Azure IMDS must never be reached through a proxy (a proxy would see
     * the token, and it cannot reach 169.254.169.254 anyway); Key Vault
     * keeps the usual proxy environment variables. */
    if (step->is_imds)
        KV_SETOPT(h, CURLOPT_NOPROXY, "*");
    return CURLE_OK;
}

/* Failures that may go away on their own: the network, timeouts, a peer
 * closing early. Anything else (bad URL, TLS verification...) will not. */
static int curl_error_is_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static int status_is_transient(long status, int is_imds)
{
    if (status == 429 || (status >= 500 && status <= 599))
        return 1;
    /* IMDS answers 404 while the identity is still being assigned and 410
     * while it is being updated; Azure asks clients to retry both. */
    return is_imds && (status == 404 || status == 410);
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
        return "a redirect, which is not followed";
    default:
        return "unexpected status";
    }
}

/* cJSON frees without wiping; clear every string first. */
static void json_wipe(cJSON *item)
{
    for (cJSON *it = item; it != NULL; it = it->next) {
        if (it->valuestring != NULL)
            wipe(it->valuestring, strlen(it->valuestring));
        if (it->string != NULL)
            wipe(it->string, strlen(it->string));
        json_wipe(it->child); /* depth is bounded by cJSON's nesting limit */
    }
}

static void json_wipe_delete(cJSON *root)
{
    json_wipe(root);
    cJSON_Delete(root);
}

static void slist_wipe_free(struct curl_slist *list)
{
    for (struct curl_slist *it = list; it != NULL; it = it->next) {
        if (it->data != NULL)
            wipe(it->data, strlen(it->data));
    }
    curl_slist_free_all(list);
}

/* Only something shaped like an error code is quoted: a free-text message
 * could echo anything, including what we sent. */
static int looks_like_code(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        if (n >= 64 || !(is_alnum_ascii(s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.'))
            return 0;
    }
    return n > 0;
}

/* Azure's error code from an error body: Key Vault's
 * {"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByRbac"}}}
 * (the inner code is the precise one) or IMDS's {"error":"invalid_request"}. */
static void azure_error_code(const struct kv_body *body, char *out, size_t out_len)
{
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *code = NULL;

    out[0] = '\0';
    if (cJSON_IsString(err)) {
        code = err->valuestring;
    } else if (cJSON_IsObject(err)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(err, "innererror");
        const cJSON *ic = cJSON_GetObjectItemCaseSensitive(inner, "code");
        if (cJSON_IsString(ic) && looks_like_code(ic->valuestring))
            code = ic->valuestring;
        else if (cJSON_IsString(c))
            code = c->valuestring;
    }
    if (looks_like_code(code))
        snprintf(out, out_len, "%s", code);
    if (root != NULL)
        json_wipe_delete(root);
}

/*
 * One GET with retries. Returns 0 when the answer is 200 (its body in
 * *body), or -1 with the cause set.
 */
static int http_get(const kv_config *cfg, const struct kv_step *step, struct kv_rng *rng,
                    struct kv_body *body, char *cause, size_t cause_len)
{
    char errbuf[CURL_ERROR_SIZE];
    char last[CURL_ERROR_SIZE];

    for (int attempt = 1;; attempt++) {
        long status = 0, delay;
        curl_off_t retry_after = 0;
        CURLcode rc;
        /* A fresh handle per attempt: no state (Retry-After, a half-dead
         * connection) can leak from one attempt into the next. */
        CURL *h = curl_easy_init();

        wipe(body->data, body->len);
        body->len = 0;
        body->too_big = 0;
        errbuf[0] = '\0';
        if (h == NULL) {
            set_cause(cause, cause_len, "%s failed: cannot create a libcurl handle", step->name);
            return -1;
        }
        rc = configure(h, cfg, step, body, errbuf);
        if (rc != CURLE_OK) {
            curl_easy_cleanup(h);
            set_cause(cause, cause_len, "%s failed: cannot configure libcurl: %s", step->name,
                      curl_easy_strerror(rc));
            return -1;
        }
        rc = curl_easy_perform(h);
        if (rc == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
        }
        curl_easy_cleanup(h);

        if (rc == CURLE_OK && status == 200)
            return 0;
        if (body->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            set_cause(cause, cause_len, "%s failed: the answer is larger than %d KiB", step->name,
                      KV_MAX_BODY_BYTES / 1024);
            return -1;
        }
        if (rc == CURLE_OK) {
            if (!status_is_transient(status, step->is_imds)) {
                char code[80];
                azure_error_code(body, code, sizeof(code));
                set_cause(cause, cause_len, "%s failed: HTTP %ld (%s)%s%s", step->name, status,
                          reason_phrase(status), code[0] ? ", error code " : "", code);
                return -1;
            }
            snprintf(last, sizeof(last), "HTTP %ld", status);
        } else {
            /* curl's error text names hosts and ports, never headers. */
            snprintf(last, sizeof(last), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
            if (!curl_error_is_transient(rc)) {
                set_cause(cause, cause_len, "%s failed: %s", step->name, last);
                return -1;
            }
        }
        if (attempt >= cfg->max_attempts) {
            set_cause(cause, cause_len, "%s failed: %s after %d attempt%s", step->name, last,
                      attempt, attempt == 1 ? "" : "s");
            return -1;
        }
        if (rc == CURLE_OK && (status == 429 || status == 503) && retry_after > 0)
            delay = retry_after >= KV_RETRY_AFTER_CAP_MS / 1000 ? KV_RETRY_AFTER_CAP_MS
                                                                : (long) retry_after * 1000;
        else
            delay = backoff_ms(rng, cfg->backoff_base_ms, attempt - 1);
        sleep_ms(delay);
    }
}

/* ---- the two steps ---- */

/* Header-safe: visible ASCII only, so a hostile answer cannot inject a
 * header line through the token. */
static int token_valid(const char *t)
{
    size_t n = 0;

    for (; t[n] != '\0'; n++) {
        if (n >= KV_TOKEN_MAX || (unsigned char) t[n] <= 0x20 || (unsigned char) t[n] >= 0x7f)
            return 0;
    }
    return n > 0;
}

/* IMDS sends expires_in as a string of digits ("86399"); accept a number
 * too. Only checked, since no token is kept between calls. */
static int expires_in_valid(const cJSON *e)
{
    if (cJSON_IsNumber(e))
        return e->valuedouble > 0;
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring;
        size_t n = strspn(s, "0123456789");
        return n > 0 && n <= 10 && s[n] == '\0' && strspn(s, "0") < n;
    }
    return 0;
}

static int parse_token(const struct kv_body *body, const char *source, char **token_out,
                       char *cause, size_t cause_len)
{
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    const cJSON *tok, *exp;
    int rc = -1;

    if (root == NULL || !cJSON_IsObject(root)) {
        set_cause(cause, cause_len, "%s answer is not valid JSON", source);
        goto out;
    }
    tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    if (!cJSON_IsString(tok) || tok->valuestring == NULL || tok->valuestring[0] == '\0') {
        set_cause(cause, cause_len, "%s answer has no access_token (a non-empty string)", source);
        goto out;
    }
    if (!token_valid(tok->valuestring)) {
        set_cause(cause, cause_len, "%s answer has a malformed access_token", source);
        goto out;
    }
    exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    if (exp != NULL && !expires_in_valid(exp)) {
        set_cause(cause, cause_len, "%s answer has a malformed expires_in", source);
        goto out;
    }
    *token_out = strdup(tok->valuestring);
    if (*token_out == NULL) {
        set_cause(cause, cause_len, "%s token request failed: out of memory", source);
        goto out;
    }
    rc = 0;
out:
    if (root != NULL)
        json_wipe_delete(root);
    return rc;
}

static int parse_secret(const struct kv_body *body, char **value_out, char *cause, size_t cause_len)
{
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    const cJSON *val;
    int rc = -1;

    if (root == NULL || !cJSON_IsObject(root)) {
        set_cause(cause, cause_len, "Key Vault answer is not valid JSON");
        goto out;
    }
    val = cJSON_GetObjectItemCaseSensitive(root, "value");
    if (!cJSON_IsString(val) || val->valuestring == NULL || val->valuestring[0] == '\0') {
        set_cause(cause, cause_len, "Key Vault answer has no value (a non-empty string)");
        goto out;
    }
    *value_out = strdup(val->valuestring);
    if (*value_out == NULL) {
        set_cause(cause, cause_len, "Key Vault secret read failed: out of memory");
        goto out;
    }
    rc = 0;
out:
    if (root != NULL)
        json_wipe_delete(root);
    return rc;
}

/* The origin part of a URL that kv_config_check accepted, without
 * trailing slashes, so that appending "/path" never makes "//path". */
static size_t origin_len(const char *url)
{
    struct kv_origin o;

    return parse_origin(url, &o) == NULL ? o.len : strlen(url);
}

/* Appends a header line; curl copies it. Returns 0 or -1 (out of memory). */
static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *grown = curl_slist_append(*list, line);

    if (grown == NULL)
        return -1;
    *list = grown;
    return 0;
}

static int fetch_token(const kv_config *cfg, struct kv_rng *rng, struct kv_body *body,
                       char **token_out, char *cause, size_t cause_len)
{
    const char *imds = cfg->imds_endpoint ? cfg->imds_endpoint : KV_DEFAULT_IMDS_ENDPOINT;
    int with_id = cfg->client_id != NULL && cfg->client_id[0] != '\0';
    char *resource = curl_easy_escape(NULL, KV_RESOURCE, 0);
    char *id = with_id ? curl_easy_escape(NULL, cfg->client_id, 0) : NULL;
    struct kv_step step = {.name = "IMDS token request", .is_imds = 1};
    struct curl_slist *headers = NULL;
    size_t n = origin_len(imds), size = 0;
    char *url = NULL;
    int rc = -1;

    if (resource != NULL && (id != NULL || !with_id)) {
        size = n + strlen(resource) + (id ? strlen(id) : 0) + 128;
        url = malloc(size);
    }
    if (url == NULL || add_header(&headers, "Metadata: true") != 0 ||
        add_header(&headers, "Accept: application/json") != 0) {
        set_cause(cause, cause_len, "IMDS token request failed: out of memory");
        goto out;
    }
    snprintf(url, size,
             "%.*s/metadata/identity/oauth2/token?api-version=" KV_IMDS_API_VERSION
             "&resource=%s%s%s",
             (int) n, imds, resource, id ? "&client_id=" : "", id ? id : "");
    step.url = url;
    step.headers = headers;
    if (http_get(cfg, &step, rng, body, cause, cause_len) == 0)
        rc = parse_token(body, "IMDS", token_out, cause, cause_len);
out:
    curl_slist_free_all(headers);
    free(url);
    curl_free(id);
    curl_free(resource);
    return rc;
}

/* The projected ServiceAccount token: read whole at every fetch (the
 * kubelet replaces it before it expires), trailing whitespace dropped, and
 * shaped like a JWT (visible ASCII). Returns a malloc'd string or NULL with
 * the cause set. Never puts the token in the cause. */
static char *read_assertion(const char *path, char *cause, size_t cause_len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        set_cause(cause, cause_len, "AZURE_FEDERATED_TOKEN_FILE: cannot read %s: %s", path,
                  strerror(errno));
        return NULL;
    }
    buf = malloc(KV_TOKEN_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        set_cause(cause, cause_len, "Entra ID token request failed: out of memory");
        return NULL;
    }
    n = fread(buf, 1, KV_TOKEN_MAX + 1, f);
    fclose(f);
    if (n > KV_TOKEN_MAX) {
        wipe(buf, n);
        free(buf);
        set_cause(cause, cause_len, "AZURE_FEDERATED_TOKEN_FILE: %s is larger than %d bytes", path,
                  KV_TOKEN_MAX);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (!token_valid(buf)) {
        wipe(buf, n);
        free(buf);
        set_cause(cause, cause_len, "AZURE_FEDERATED_TOKEN_FILE: %s does not hold a token", path);
        return NULL;
    }
    return buf;
}

static int fetch_token_federated(const kv_config *cfg, struct kv_rng *rng, struct kv_body *body,
                                 char **token_out, char *cause, size_t cause_len)
{
    const char *authority = cfg->authority_host ? cfg->authority_host : KV_DEFAULT_AUTHORITY_HOST;
    struct kv_step step = {.name = "Entra ID token request", .is_imds = 0};
    struct curl_slist *headers = NULL;
    char *assertion = read_assertion(cfg->federated_token_file, cause, cause_len);
    char *esc_assertion = NULL, *esc_id = NULL, *esc_tenant = NULL, *url = NULL, *form = NULL;
    size_t n = origin_len(authority), url_size = 0, form_size = 0;
    int rc = -1;

    if (assertion == NULL)
        return -1;
    esc_assertion = curl_easy_escape(NULL, assertion, 0);
    esc_id = curl_easy_escape(NULL, cfg->client_id, 0);
    esc_tenant = curl_easy_escape(NULL, cfg->tenant_id, 0);
    if (esc_assertion != NULL && esc_id != NULL && esc_tenant != NULL) {
        url_size = n + strlen(esc_tenant) + 32;
        form_size = strlen(esc_assertion) + strlen(esc_id) + 256;
        url = malloc(url_size);
        form = malloc(form_size);
    }
    if (url == NULL || form == NULL ||
        add_header(&headers, "Content-Type: application/x-www-form-urlencoded") != 0 ||
        add_header(&headers, "Accept: application/json") != 0) {
        set_cause(cause, cause_len, "Entra ID token request failed: out of memory");
        goto out;
    }
    snprintf(url, url_size, "%.*s/%s/oauth2/v2.0/token", (int) n, authority, esc_tenant);
    /* The constants are percent-encoded already: arguments, not format. */
    snprintf(form, form_size,
             "client_id=%s&scope=%s&client_assertion_type=%s&client_assertion=%s"
             "&grant_type=client_credentials",
             esc_id, KV_SCOPE_ESCAPED, KV_ASSERTION_TYPE_ESCAPED, esc_assertion);
    step.url = url;
    step.headers = headers;
    step.post_body = form;
    if (http_get(cfg, &step, rng, body, cause, cause_len) == 0)
        rc = parse_token(body, "Entra ID", token_out, cause, cause_len);
out:
    curl_slist_free_all(headers);
    if (form != NULL)
        wipe(form, strlen(form));
    free(form);
    free(url);
    curl_free(esc_tenant);
    curl_free(esc_id);
    if (esc_assertion != NULL)
        wipe(esc_assertion, strlen(esc_assertion));
    curl_free(esc_assertion);
    wipe_free_str(assertion);
    return rc;
}

static int fetch_value(const kv_config *cfg, struct kv_rng *rng, struct kv_body *body,
                       const char *token, char **value_out, char *cause, size_t cause_len)
{
    static const char bearer[] = "Authorization: Bearer ";
    const char *name = cfg->secret_name ? cfg->secret_name : KV_DEFAULT_SECRET_NAME;
    struct kv_step step = {.name = "Key Vault secret read", .is_imds = 0};
    struct curl_slist *headers = NULL;
    size_t n = origin_len(cfg->vault_url);
    size_t size = n + strlen(name) + 64;
    size_t auth_size = sizeof(bearer) + strlen(token);
    char *url = malloc(size);
    char *auth = malloc(auth_size);
    int rc = -1;

    if (url != NULL && auth != NULL)
        snprintf(auth, auth_size, "%s%s", bearer, token);
    if (url == NULL || auth == NULL || add_header(&headers, auth) != 0 ||
        add_header(&headers, "Accept: application/json") != 0) {
        set_cause(cause, cause_len, "Key Vault secret read failed: out of memory");
        goto out;
    }
    snprintf(url, size, "%.*s/secrets/%s?api-version=" KV_VAULT_API_VERSION, (int) n,
             cfg->vault_url, name);
    step.url = url;
    step.headers = headers;
    if (http_get(cfg, &step, rng, body, cause, cause_len) == 0)
        rc = parse_secret(body, value_out, cause, cause_len);
out:
    slist_wipe_free(headers);
    if (auth != NULL)
        wipe(auth, auth_size);
    free(auth);
    free(url);
    return rc;
}

int kv_fetch_secret(const kv_config *cfg, char **value_out, char *cause, size_t cause_len)
{
    struct kv_rng rng;
    struct kv_body body = {0};
    char *token = NULL;
    int rc = -1;

    if (cause != NULL && cause_len > 0)
        cause[0] = '\0';
    if (value_out == NULL) {
        set_cause(cause, cause_len, "Key Vault secret read failed: no place for the value");
        return -1;
    }
    *value_out = NULL;
    if (kv_config_check(cfg, cause, cause_len) != 0)
        return -1;
    body.data = malloc(KV_MAX_BODY_BYTES);
    if (body.data == NULL) {
        set_cause(cause, cause_len, "Key Vault secret read failed: out of memory");
        return -1;
    }
    rng_seed(&rng);
    if ((workload_identity(cfg) ? fetch_token_federated(cfg, &rng, &body, &token, cause, cause_len)
                                : fetch_token(cfg, &rng, &body, &token, cause, cause_len)) == 0)
        rc = fetch_value(cfg, &rng, &body, token, value_out, cause, cause_len);
    wipe_free_str(token);
    wipe(body.data, body.len);
    free(body.data);
    return rc;
}
