/*
 * ratelimit.h - token buckets per caller and per peer address.
 *
 * Owns: a fixed-size table of token buckets keyed by short strings, and
 * the two limits the API applies with it. Every authenticated request
 * takes a token from its caller's bucket (PAYTRACKR_RATE_LIMIT_RPS and
 * _BURST); an empty bucket is 429 rate_limited with Retry-After. Every
 * failed authentication takes a token from the peer address's bucket
 * (PAYTRACKR_AUTH_FAIL_RPS and _BURST); while that bucket is empty, the
 * address gets 429 for any token, right or wrong, except the few callers
 * that were already working from it (an office or NAT address is shared
 * by many clients): guessing tokens from an address is slowed to that
 * rate and learns nothing while blocked. Loopback peers are local proxies
 * speaking for many clients and are not limited. A rate of 0 turns a limit
 * off.
 *
 * Memory is bounded whatever the traffic: the table is set-associative
 * with a fixed number of slots, and a new key evicts a slot of its set
 * (one whose bucket has refilled, else the least recently used). Eviction
 * forgives a debt at worst; it never refuses anyone wrongly. Service
 * thread only: no locking.
 */
#ifndef PT_RATELIMIT_H
#define PT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;
struct lws;
struct server;
struct ratelimit;

/* A table of at least `slots` buckets (rounded up) refilling `rate` tokens
 * per second up to `burst` (both > 0). NULL on bad input or allocation
 * failure. */
struct ratelimit *ratelimit_new(int rate, int burst, size_t slots);

void ratelimit_free(struct ratelimit *rl);

/* Takes one token from key's bucket (a new key starts full). Returns 0
 * when there was one, else the whole seconds until there will be (>= 1).
 * `key` longer than 47 bytes is cut. */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_us);

/* Like ratelimit_take without taking, and without adding an unknown key
 * (which has a full bucket). */
int ratelimit_peek(struct ratelimit *rl, const char *key, int64_t now_us);

/* Remembers `tag` for key (a few per key, the oldest forgotten first). */
void ratelimit_note(struct ratelimit *rl, const char *key, const char *tag, int64_t now_us);

/* True when `tag` was noted for key and not forgotten since. */
bool ratelimit_noted(struct ratelimit *rl, const char *key, const char *tag);

/* ---- the API's limits (service thread) -------------------------------- */

/* After a successful authentication: answers 429 and returns -1 when the
 * peer address used up its failed-authentication allowance and this caller
 * was not working from it before; else 0 (and remembers the caller). */
int ratelimit_check_peer(struct http_req *rq);

/* After a failed authentication (already answered 401): charges the peer
 * address, and turns the answer into 429 when it is over its allowance. */
void ratelimit_auth_failed(struct http_req *rq);

/* The same two for any connection (a WebSocket upgrade), answering
 * nothing: 0 when it may go on, else the seconds to wait, and the caller
 * refuses it with 429 and RL_PEER_MESSAGE. */
int ratelimit_peer_wait(struct server *srv, struct lws *wsi, const char *caller);
int ratelimit_peer_failed(struct server *srv, struct lws *wsi);

#define RL_PEER_MESSAGE   "too many failed authentications from this address; retry later"
#define RL_CALLER_MESSAGE "too many requests for this token; retry later"

/* After authentication: takes a token for rq->who.caller; answers 429 and
 * returns -1 when there is none. */
int ratelimit_check_caller(struct http_req *rq);

/* The same limit for other transports (WebSocket messages): 0, or the
 * seconds to wait. */
int ratelimit_caller(struct server *srv, const char *caller);

/* Frees the tables (at exit). */
void ratelimit_stop(struct server *srv);

#endif
