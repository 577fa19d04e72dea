/*
 * wh_guard.c - the webhook SSRF guard (see wh_guard.h).
 */
#include "wh_guard.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct v4_range {
    uint32_t net;
    int bits;
};

/* IANA special-purpose IPv4 ranges: nothing here is a public web server. */
static const struct v4_range v4_blocked[] = {
    {0x00000000, 8},  /* "this network" */
    {0x0A000000, 8},  /* private */
    {0x64400000, 10}, /* carrier-grade NAT */
    {0x7F000000, 8},  /* loopback */
    {0xA9FE0000, 16}, /* link-local, cloud metadata 169.254.169.254 */
    {0xAC100000, 12}, /* private */
    {0xC0000000, 24}, /* IETF protocol assignments */
    {0xC0000200, 24}, /* documentation */
    {0xC0586300, 24}, /* 6to4 relay anycast */
    {0xC0A80000, 16}, /* private */
    {0xC6120000, 15}, /* benchmarking */
    {0xC6336400, 24}, /* documentation */
    {0xCB007100, 24}, /* documentation */
    {0xE0000000, 4},  /* multicast */
    {0xF0000000, 4},  /* reserved, broadcast */
};

static bool v4_blocked_addr(uint32_t a)
{
    for (size_t i = 0; i < sizeof v4_blocked / sizeof v4_blocked[0]; i++) {
        uint32_t mask = 0xFFFFFFFFu << (32 - v4_blocked[i].bits);
        if ((a & mask) == v4_blocked[i].net)
            return true;
    }
    return false;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
}

static bool v6_blocked_addr(const unsigned char *b)
{
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_blocked_addr(v4_at(b + 12));
    if (memcmp(b, zero, 12) == 0)
        return true; /* ::, ::1 and the deprecated v4-compatible form */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_blocked_addr(v4_at(b + 2)); /* 6to4 */
    if ((b[0] & 0xfe) == 0xfc)
        return true; /* unique local fc00::/7 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return true; /* link-local fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return true; /* site-local fec0::/10 (deprecated) */
    if (b[0] == 0xff)
        return true; /* multicast */
    if (b[0] == 0x01 && b[1] == 0x00 && memcmp(b + 2, zero, 6) == 0)
        return true; /* discard-only 100::/64 */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02)
        return true; /* IETF protocol assignments 2001::/23, Teredo */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return true;              /* documentation */
    return (b[0] & 0xe0) != 0x20; /* only 2000::/3 is global unicast */
}

bool wh_addr_blocked(const struct sockaddr *sa)
{
    if (!sa)
        return true;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) (const void *) sa;
        return v4_blocked_addr(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) (const void *) sa;
        return v6_blocked_addr(in6->sin6_addr.s6_addr);
    }
    return true;
}

/* An IP literal host ("10.0.0.1" or "[::1]" as curl gives it, without
 * brackets) that the guard blocks; names are judged when connecting. */
static bool literal_blocked(const char *host)
{
    char h[64];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return false;
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
    } else {
        memcpy(h, host, n + 1);
    }
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, h, &in4.sin_addr) == 1)
        return wh_addr_blocked((struct sockaddr *) &in4);
    if (inet_pton(AF_INET6, h, &in6.sin6_addr) == 1)
        return wh_addr_blocked((struct sockaddr *) &in6);
    /* Names that always mean this machine. */
    return strcasecmp(h, "localhost") == 0 || (n > 10 && strcasecmp(h + n - 10, ".localhost") == 0);
}

static int url_part(CURLU *u, CURLUPart part, char **out)
{
    *out = NULL;
    return curl_url_get(u, part, out, 0) == CURLUE_OK ? 0 : -1;
}

int wh_url_check(const char *url, bool allow_private, char *why, size_t why_len)
{
    if (strlen(url) > WH_URL_MAX) {
        snprintf(why, why_len, "url must be at most %d bytes", WH_URL_MAX);
        return -1;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        url_part(u, CURLUPART_SCHEME, &scheme) < 0 || url_part(u, CURLUPART_HOST, &host) < 0) {
        snprintf(why, why_len, "url must be an absolute https:// URL");
    } else if (url_part(u, CURLUPART_USER, &user) == 0 ||
               url_part(u, CURLUPART_PASSWORD, &password) == 0) {
        snprintf(why, why_len, "url must not carry a user name or password");
    } else if (strcmp(scheme, "https") != 0 && !(allow_private && strcmp(scheme, "http") == 0)) {
        snprintf(why, why_len, "url must use https://");
    } else if (!allow_private && literal_blocked(host)) {
        snprintf(why, why_len,
                 "url must not point at a loopback, private, link-local or reserved address");
    } else {
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}
