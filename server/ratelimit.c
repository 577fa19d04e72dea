/*
 * ratelimit.c - fixed-size token-bucket tables and the API's rate limits.
 */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "http.h"
#include "server.h"

#define RL_KEY_MAX 48 /* bytes with the NUL: "6:" + an IPv6 /64 fits */
_Static_assert(sizeof((struct http_conn *) 0)->peer_key == RL_KEY_MAX,
               "http_conn caches a whole peer key");
#define RL_WAYS  8 /* slots per set: a new key competes with 7 others */
#define RL_MILLI 1000
#define RL_KNOWN 4 /* callers remembered per peer address */

/* Table sizes. Callers are the configured tokens, a handful; peers are
 * whoever connects, so that table is larger (about 100 bytes a slot). */
#define RL_CALLER_SLOTS 1024
#define RL_PEER_SLOTS   8192

struct rl_slot {
    char key[RL_KEY_MAX]; /* "" = free */
    int64_t tokens;       /* thousandths of a request */
    int64_t last_us;      /* when tokens was last brought up to date */
    /* Peer table only: callers (hashed) that authenticated from this
     * address; while it is blocked they still pass. */
    uint64_t known[RL_KNOWN];
    unsigned known_next;
};

struct ratelimit {
    int64_t rate;  /* tokens per second */
    int64_t burst; /* in thousandths */
    size_t set_mask;
    uint64_t seed; /* random per table: where a key lands is not predictable */
    struct rl_slot slots[];
};

struct ratelimit *ratelimit_new(int rate, int burst, size_t slots)
{
    if (rate <= 0 || burst <= 0)
        return NULL;
    size_t sets = 1;
    while (sets * RL_WAYS < slots)
        sets <<= 1;
    struct ratelimit *rl = calloc(1, sizeof *rl + sets * RL_WAYS * sizeof(struct rl_slot));
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = (int64_t) burst * RL_MILLI;
    rl->set_mask = sets - 1;
    if (getrandom(&rl->seed, sizeof rl->seed, 0) != (ssize_t) sizeof rl->seed)
        rl->seed = (uint64_t) server_now_us();
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    free(rl);
}

/* FNV-1a over the key, started from the seed, then a multiply-xorshift
 * finaliser so nearby keys (10.0.0.1, 10.0.0.2) spread over the sets. */
static uint64_t hash_of(const struct ratelimit *rl, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ rl->seed;
    for (const unsigned char *p = (const unsigned char *) key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static size_t set_of(const struct ratelimit *rl, const char *key)
{
    return (size_t) hash_of(rl, key) & rl->set_mask;
}

/* Brings a slot's tokens up to `now`. */
static void refill(const struct ratelimit *rl, struct rl_slot *s, int64_t now_us)
{
    int64_t elapsed = now_us - s->last_us;
    if (elapsed <= 0)
        return;
    /* Past the time a full refill takes the bucket is full; checking that
     * first also keeps elapsed * rate far from overflowing. */
    if (elapsed >= rl->burst * 1000 / rl->rate + 1) {
        s->tokens = rl->burst;
        s->last_us = now_us;
        return;
    }
    int64_t gained = elapsed * rl->rate / 1000;
    /* Only the time that became whole thousandths is used up; the rest
     * counts next time, so frequent calls cannot starve the refill. */
    s->last_us += gained * 1000 / rl->rate;
    s->tokens += gained;
    if (s->tokens > rl->burst)
        s->tokens = rl->burst;
}

/* Whole seconds until a slot holding `tokens` has one full token. */
static int wait_seconds(const struct ratelimit *rl, int64_t tokens)
{
    int64_t missing = RL_MILLI - tokens;
    int64_t us = (missing * 1000 + rl->rate - 1) / rl->rate;
    int64_t s = (us + 999999) / 1000000;
    return s < 1 ? 1 : s > 3600 ? 3600 : (int) s;
}

static struct rl_slot *find(struct ratelimit *rl, const char *key, struct rl_slot **set_out)
{
    struct rl_slot *set = &rl->slots[set_of(rl, key) * RL_WAYS];
    *set_out = set;
    for (int i = 0; i < RL_WAYS; i++)
        if (set[i].key[0] && strcmp(set[i].key, key) == 0)
            return &set[i];
    return NULL;
}

/* A slot for a new key: a free one, else one whose bucket is full again
 * (forgetting it changes nothing), else the least recently used. */
static struct rl_slot *victim(const struct ratelimit *rl, struct rl_slot *set, int64_t now_us)
{
    struct rl_slot *oldest = &set[0];
    for (int i = 0; i < RL_WAYS; i++) {
        if (!set[i].key[0])
            return &set[i];
        struct rl_slot probe = set[i];
        refill(rl, &probe, now_us);
        if (probe.tokens >= rl->burst)
            return &set[i];
        if (set[i].last_us < oldest->last_us)
            oldest = &set[i];
    }
    return oldest;
}

/* The key's slot, made (with a full bucket) when it has none. */
static struct rl_slot *find_or_add(struct ratelimit *rl, const char *key, int64_t now_us)
{
    char k[RL_KEY_MAX];
    snprintf(k, sizeof k, "%s", key);
    struct rl_slot *set;
    struct rl_slot *s = find(rl, k, &set);
    if (s) {
        refill(rl, s, now_us);
        return s;
    }
    s = victim(rl, set, now_us);
    memset(s, 0, sizeof *s);
    memcpy(s->key, k, sizeof k);
    s->tokens = rl->burst;
    s->last_us = now_us;
    return s;
}

int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_us)
{
    struct rl_slot *s = find_or_add(rl, key, now_us);
    if (s->tokens < RL_MILLI)
        return wait_seconds(rl, s->tokens);
    s->tokens -= RL_MILLI;
    return 0;
}

int ratelimit_peek(struct ratelimit *rl, const char *key, int64_t now_us)
{
    char k[RL_KEY_MAX];
    snprintf(k, sizeof k, "%s", key);
    struct rl_slot *set;
    struct rl_slot *s = find(rl, k, &set);
    if (!s)
        return 0;
    refill(rl, s, now_us);
    return s->tokens < RL_MILLI ? wait_seconds(rl, s->tokens) : 0;
}

/* A caller id as a non-zero tag for known[]. */
static uint64_t tag_of(const struct ratelimit *rl, const char *caller)
{
    uint64_t t = hash_of(rl, caller);
    return t ? t : 1;
}

void ratelimit_note(struct ratelimit *rl, const char *key, const char *tag, int64_t now_us)
{
    struct rl_slot *s = find_or_add(rl, key, now_us);
    uint64_t t = tag_of(rl, tag);
    for (int i = 0; i < RL_KNOWN; i++)
        if (s->known[i] == t)
            return;
    s->known[s->known_next] = t;
    s->known_next = (s->known_next + 1) % RL_KNOWN;
}

bool ratelimit_noted(struct ratelimit *rl, const char *key, const char *tag)
{
    char k[RL_KEY_MAX];
    snprintf(k, sizeof k, "%s", key);
    struct rl_slot *set;
    const struct rl_slot *s = find(rl, k, &set);
    uint64_t t = tag_of(rl, tag);
    for (int i = 0; s && i < RL_KNOWN; i++)
        if (s->known[i] == t)
            return true;
    return false;
}

/* ---- the API's limits ------------------------------------------------------ */

/* The peer's address as a table key. IPv6 peers are keyed by their /64:
 * one host usually owns a whole /64, and counting its addresses one by one
 * would let it walk around the limit. Returns -1 when unknown, and for a
 * peer at 127.0.0.1 or ::1: that is a local proxy (a service mesh sidecar, kubectl
 * port-forward) speaking for any number of clients, and limiting it would
 * let one client lock out all of them. */
static int peer_key_of(struct lws *wsi, char *key, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = (int) lws_get_socket_fd(wsi);
    if (fd < 0 || getpeername(fd, (struct sockaddr *) &ss, &len) != 0)
        return -1;
    char text[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;
        if (ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK)
            return -1;
        if (!inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text))
            return -1;
        snprintf(key, cap, "4:%s", text);
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *) &ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a) ||
            (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127 && a.s6_addr[13] == 0 &&
             a.s6_addr[14] == 0 && a.s6_addr[15] == 1))
            return -1;
        if (!IN6_IS_ADDR_V4MAPPED(&a))
            memset(&a.s6_addr[8], 0, 8);
        if (!inet_ntop(AF_INET6, &a, text, sizeof text))
            return -1;
        snprintf(key, cap, "6:%s", text);
        return 0;
    }
    return -1;
}

static void respond_429(struct http_req *rq, int wait, const char *message)
{
    rq->retry_after = wait;
    http_respond_error(rq, 429, "rate_limited", message, NULL);
}

static bool peer_limit_on(const struct server *srv)
{
    return srv->cfg.auth_fail_rps > 0 && srv->cfg.auth == CONFIG_AUTH_REQUIRED;
}

static struct ratelimit *peer_table(struct server *srv)
{
    if (!srv->rl_peers)
        srv->rl_peers =
            ratelimit_new(srv->cfg.auth_fail_rps, srv->cfg.auth_fail_burst, RL_PEER_SLOTS);
    return srv->rl_peers;
}

/* peer_key_of, looked up once per HTTP connection when `hc` is given:
 * the address of a TCP connection does not change, and keep-alive
 * clients send many requests on one. */
static int peer_key(struct lws *wsi, struct http_conn *hc, char *key, size_t cap)
{
    if (!hc)
        return peer_key_of(wsi, key, cap);
    if (!hc->peer_known)
        hc->peer_known = peer_key_of(wsi, hc->peer_key, sizeof hc->peer_key) == 0 ? 1 : -1;
    if (hc->peer_known < 0)
        return -1;
    snprintf(key, cap, "%s", hc->peer_key);
    return 0;
}

static int peer_wait(struct server *srv, struct lws *wsi, struct http_conn *hc, const char *caller)
{
    char key[RL_KEY_MAX];
    if (!peer_limit_on(srv) || peer_key(wsi, hc, key, sizeof key) < 0 || !peer_table(srv))
        return 0;
    int64_t now = server_now_us();
    int wait = ratelimit_peek(srv->rl_peers, key, now);
    if (!wait) {
        ratelimit_note(srv->rl_peers, key, caller, now);
        return 0;
    }
    /* Blocked. Callers that were working from here before keep working
     * (a NAT or office address is shared); any other token, right or
     * wrong, gets the same 429, so guessing learns nothing meanwhile. */
    if (ratelimit_noted(srv->rl_peers, key, caller))
        return 0;
    srv->metrics.rate_limited_peer++;
    return wait;
}

int ratelimit_peer_wait(struct server *srv, struct lws *wsi, const char *caller)
{
    return peer_wait(srv, wsi, NULL, caller);
}

static int peer_failed(struct server *srv, struct lws *wsi, struct http_conn *hc)
{
    char key[RL_KEY_MAX];
    if (!peer_limit_on(srv) || peer_key(wsi, hc, key, sizeof key) < 0 || !peer_table(srv))
        return 0;
    int wait = ratelimit_take(srv->rl_peers, key, server_now_us());
    if (wait)
        srv->metrics.rate_limited_peer++;
    return wait;
}

int ratelimit_peer_failed(struct server *srv, struct lws *wsi)
{
    return peer_failed(srv, wsi, NULL);
}

int ratelimit_check_peer(struct http_req *rq)
{
    int wait = peer_wait(rq->srv, rq->wsi, rq->conn, rq->who.caller);
    if (!wait)
        return 0;
    respond_429(rq, wait, RL_PEER_MESSAGE);
    return -1;
}

void ratelimit_auth_failed(struct http_req *rq)
{
    int wait = peer_failed(rq->srv, rq->wsi, rq->conn);
    if (!wait)
        return;
    /* Over the allowance: the same answer as a blocked valid token. */
    rq->www_authenticate = false;
    respond_429(rq, wait, RL_PEER_MESSAGE);
}

int ratelimit_caller(struct server *srv, const char *caller)
{
    /* The limits are per token; with auth off there are none, and every
     * caller would share one bucket. */
    if (srv->cfg.rate_limit_rps <= 0 || srv->cfg.auth == CONFIG_AUTH_OFF)
        return 0;
    if (!srv->rl_callers)
        srv->rl_callers =
            ratelimit_new(srv->cfg.rate_limit_rps, srv->cfg.rate_limit_burst, RL_CALLER_SLOTS);
    /* Without a table (out of memory) requests pass: a limit is not worth
     * an outage. */
    return srv->rl_callers ? ratelimit_take(srv->rl_callers, caller, server_now_us()) : 0;
}

int ratelimit_check_caller(struct http_req *rq)
{
    int wait = ratelimit_caller(rq->srv, rq->who.caller);
    if (!wait)
        return 0;
    rq->srv->metrics.rate_limited_caller++;
    respond_429(rq, wait, RL_CALLER_MESSAGE);
    return -1;
}

void ratelimit_stop(struct server *srv)
{
    ratelimit_free(srv->rl_callers);
    ratelimit_free(srv->rl_peers);
    srv->rl_callers = srv->rl_peers = NULL;
}
