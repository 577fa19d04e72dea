/*
 * wh_guard.h - which webhook targets may be contacted (SSRF guard).
 *
 * Owns: the rule that webhooks go only to public addresses over https.
 * wh_url_check() runs at registration (scheme, shape, and an IP literal's
 * address); wh_addr_blocked() runs on every address curl is about to
 * connect to (CURLOPT_OPENSOCKETFUNCTION), so a name that resolves to a
 * private address later is refused too. Pure functions, any thread.
 */
#ifndef PT_WH_GUARD_H
#define PT_WH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define WH_URL_MAX 2048

/* True when the address is loopback, private, link-local (169.254.0.0/16,
 * the cloud metadata service included), shared, multicast, documentation
 * or otherwise reserved, in IPv4 or IPv6 (v4-mapped, NAT64 and 6to4
 * forms are judged by the IPv4 address they carry). Unknown families are
 * blocked. */
bool wh_addr_blocked(const struct sockaddr *sa);

/* Checks a target URL: http(s) only (http and private targets only when
 * `allow_private`), a host, no user name or password, at most WH_URL_MAX
 * bytes. Returns 0, or -1 with a reason for the client in `why`. */
int wh_url_check(const char *url, bool allow_private, char *why, size_t why_len);

#endif
