/*
 * test-webhook.c - the webhook SSRF guard's address rules (wh_guard.c) and
 * the Standard Webhooks signature (wh_sign.c) against the specification's
 * published example.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "tap.h"
#include "wh_guard.h"
#include "wh_sign.h"

static bool blocked(const char *addr)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, addr, &in4.sin_addr) == 1)
        return wh_addr_blocked((struct sockaddr *) &in4);
    if (inet_pton(AF_INET6, addr, &in6.sin6_addr) == 1)
        return wh_addr_blocked((struct sockaddr *) &in6);
    return false;
}

static void url_is(tap *t, const char *url, bool allow_private, bool want_ok)
{
    char why[160] = "";
    bool ok = wh_url_check(url, allow_private, why, sizeof why) == 0;
    tap_ok(t, ok == want_ok, "%s %s%s (%s)", url, want_ok ? "accepted" : "refused",
           allow_private ? " with private allowed" : "", why);
}

int main(void)
{
    tap t = {0};
    static const char *const refused[] = {
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2001:db8::1",
        "::127.0.0.1",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        tap_ok(&t, blocked(refused[i]), "%s is blocked", refused[i]);
    static const char *const public_addrs[] = {
        "93.184.216.34",   "8.8.8.8",        "172.32.0.1",        "192.169.0.1",
        "2606:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1",
    };
    for (size_t i = 0; i < sizeof public_addrs / sizeof public_addrs[0]; i++)
        tap_ok(&t, !blocked(public_addrs[i]), "%s is allowed", public_addrs[i]);

    url_is(&t, "https://hooks.example.com/x", false, true);
    url_is(&t, "https://93.184.216.34:8443/x", false, true);
    url_is(&t, "http://hooks.example.com/x", false, false);
    url_is(&t, "https://127.0.0.1/x", false, false);
    url_is(&t, "https://[::1]:9/x", false, false);
    url_is(&t, "https://LOCALHOST/x", false, false);
    url_is(&t, "https://a.localhost/x", false, false);
    url_is(&t, "https://user:pw@hooks.example.com/x", false, false);
    url_is(&t, "ftp://hooks.example.com/x", true, false);
    url_is(&t, "not a url", true, false);
    url_is(&t, "http://127.0.0.1:8080/x", true, true);

    /* The Standard Webhooks specification's example (its reference
     * libraries' tests use the same values). */
    char sig[WH_SIGNATURE_MAX];
    const char *body = "{\"test\": 2432232314}";
    tap_ok(&t,
           wh_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                   "1614265330", body, strlen(body), sig) == 0 &&
               strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == 0,
           "the specification's example signs as published (%s)", sig);
    tap_ok(&t, wh_sign("whsec_short", "a", "1", "", 0, sig) < 0, "a malformed secret is refused");
    char secret[WH_SECRET_MAX], other[WH_SECRET_MAX];
    tap_ok(&t,
           wh_secret_new(secret) == 0 && wh_secret_new(other) == 0 && strlen(secret) == 50 &&
               strncmp(secret, "whsec_", 6) == 0 && strcmp(secret, other) != 0,
           "new secrets are whsec_ and 44 base64 characters, each different");
    tap_ok(&t, wh_sign(secret, "evt_1", "1", "{}", 2, sig) == 0, "a new secret signs");
    return tap_done(&t);
}
