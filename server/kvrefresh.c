/*
 * kvrefresh.c - the Key Vault refresher thread (see kvrefresh.h).
 */
#include "kvrefresh.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kvrefresh {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned refs;  /* under lock: the thread's and the owner's */
    bool stopping;  /* under lock */
    bool wanted;    /* under lock: a read was asked for */
    char *conninfo; /* under lock: the latest string read, or NULL */

    /* the thread's own copy of the settings (read only) */
    kv_config kv;
    char *vault_url, *secret_name, *client_id, *imds_endpoint;
    const struct logger *log;
    pthread_t thread;
};

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void release(struct kvrefresh *r)
{
    pthread_mutex_lock(&r->lock);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (!last)
        return;
    kv_secret_free(r->conninfo);
    free(r->vault_url);
    free(r->secret_name);
    free(r->client_id);
    free(r->imds_endpoint);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Reads the secret once (blocking) and publishes it. */
static void read_once(struct kvrefresh *r)
{
    char *secret = NULL, cause[KV_CAUSE_LEN];
    if (kv_fetch_secret(&r->kv, &secret, cause, sizeof cause) < 0) {
        log_msg(r->log, LOG_ERROR, "Key Vault: %s", cause);
        return;
    }
    pthread_mutex_lock(&r->lock);
    char *old = r->conninfo;
    r->conninfo = secret;
    bool first = old == NULL;
    pthread_mutex_unlock(&r->lock);
    kv_secret_free(old);
    log_msg(r->log, LOG_INFO, "connection string %s Key Vault",
            first ? "read from" : "re-read from");
}

static bool published(struct kvrefresh *r)
{
    return r->conninfo != NULL;
}

static void *refresher_main(void *arg)
{
    struct kvrefresh *r = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next); /* the first read is due now */
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        /* Wait until a read is wanted (or none was published yet) and the
         * pace allows it. */
        bool due = r->wanted || !published(r);
        int rc = due ? pthread_cond_timedwait(&r->wake, &r->lock, &next)
                     : pthread_cond_wait(&r->wake, &r->lock);
        if (r->stopping)
            break;
        if (!due || rc != ETIMEDOUT)
            continue;
        r->wanted = false;
        pthread_mutex_unlock(&r->lock);
        read_once(r);
        clock_gettime(CLOCK_MONOTONIC, &next);
        next.tv_sec += KVREFRESH_MIN_MS / 1000;
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    release(r);
    return NULL;
}

struct kvrefresh *kvrefresh_start(const kv_config *kv, const struct logger *log)
{
    struct kvrefresh *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kv = *kv;
    r->vault_url = dup_opt(kv->vault_url);
    r->secret_name = dup_opt(kv->secret_name);
    r->client_id = dup_opt(kv->client_id);
    r->imds_endpoint = dup_opt(kv->imds_endpoint);
    r->kv.vault_url = r->vault_url;
    r->kv.secret_name = r->secret_name;
    r->kv.client_id = r->client_id;
    r->kv.imds_endpoint = r->imds_endpoint;
    r->log = log;
    r->refs = 2;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    if ((kv->vault_url && !r->vault_url) || (kv->secret_name && !r->secret_name) ||
        (kv->client_id && !r->client_id) || (kv->imds_endpoint && !r->imds_endpoint) ||
        pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        r->refs = 1;
        release(r);
        return NULL;
    }
    pthread_detach(r->thread);
    return r;
}

char *kvrefresh_current(void *refresher)
{
    struct kvrefresh *r = refresher;
    pthread_mutex_lock(&r->lock);
    char *copy = r->conninfo ? strdup(r->conninfo) : NULL;
    pthread_mutex_unlock(&r->lock);
    return copy;
}

void kvrefresh_stale(void *refresher)
{
    struct kvrefresh *r = refresher;
    pthread_mutex_lock(&r->lock);
    if (!r->wanted) {
        r->wanted = true;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
}

void kvrefresh_stop(struct kvrefresh *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    release(r);
}
