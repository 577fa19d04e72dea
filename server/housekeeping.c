/*
 * housekeeping.c - the expired-keys timer (see housekeeping.h).
 */
#include "housekeeping.h"

#include <stdlib.h>
#include <sys/random.h>

#include "server.h"
#include "store.h"

/* After a full batch, the next one follows after this long. */
#define HOUSEKEEPING_AGAIN_US LWS_US_PER_SEC

static void housekeeping_tick(lws_sorted_usec_list_t *sul);

/* The interval, times a random factor in [0.5, 1.5). */
static lws_usec_t jittered(const struct server *srv)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r)
        r = (uint32_t) server_now_us();
    lws_usec_t base = (lws_usec_t) srv->cfg.housekeeping_seconds * LWS_US_PER_SEC;
    return base / 2 + (lws_usec_t) ((double) base * (r / 4294967296.0));
}

static void schedule(struct server *srv, lws_usec_t us)
{
    lws_sul_schedule(srv->context, 0, &srv->sul_housekeeping, housekeeping_tick, us);
}

static void expire_done(struct db_job *job)
{
    struct server *srv = job->owner;
    const struct store_expire *e = job->arg;
    srv->housekeeping_in_flight = false;
    if (job->result.status == 200 && e->deleted > 0)
        log_msg(&srv->log, LOG_INFO, "deleted %d expired idempotency keys", e->deleted);
    bool more = job->result.status == 200 && e->deleted >= STORE_EXPIRE_BATCH;
    db_job_free(job);
    if (!srv->draining)
        schedule(srv, more ? HOUSEKEEPING_AGAIN_US : jittered(srv));
}

static void housekeeping_tick(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, sul_housekeeping);
    if (srv->draining || srv->housekeeping_in_flight)
        return;
    struct db_job *job = calloc(1, sizeof *job);
    struct store_expire *e = calloc(1, sizeof *e);
    if (job && e) {
        job->run = store_run_expire_keys;
        job->done = expire_done;
        job->owner = srv;
        job->arg = e;
        job->free_arg = free;
        if (db_pool_submit(srv->pool, job) == 0) {
            srv->housekeeping_in_flight = true;
            return;
        }
    }
    free(e);
    free(job);
    schedule(srv, jittered(srv)); /* busy: the next turn */
}

void housekeeping_start(struct server *srv)
{
    schedule(srv, jittered(srv));
}

void housekeeping_stop(struct server *srv)
{
    lws_sul_cancel(&srv->sul_housekeeping);
}
