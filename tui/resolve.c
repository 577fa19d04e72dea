/*
 * resolve.c - the server's host name to addresses, on a thread of its own.
 *
 * libwebsockets 4.1.6 as Debian builds it (without LWS_WITH_SYS_ASYNC_DNS)
 * calls getaddrinfo() on the loop's thread when a client connects; a slow
 * or unreachable DNS server then freezes the screen and the keyboard for
 * as long as the lookup takes. So conn.c looks the name up here first, as
 * the server's listener connects to PostgreSQL on a helper thread, and
 * hands lws a numeric address (which it parses without asking DNS) while
 * the name stays the Host header, the SNI and the name the certificate is
 * checked against.
 *
 * A job is shared by the loop and its thread under the job's mutex. The
 * thread wakes the loop with lws_cancel_service() when done; a job the
 * loop abandoned (resolve_release before the end) is freed by its thread,
 * which then no longer touches the context.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "tui.h"

struct resolve_job {
    pthread_mutex_t lock;
    struct lws_context *ctx;
    char *host;
    bool done, abandoned;
    int n;
    char addrs[RESOLVE_ADDRS_MAX][RESOLVE_ADDR_LEN];
    char why[TUI_ERROR_MAX];
};

bool resolve_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void job_free(struct resolve_job *j)
{
    pthread_mutex_destroy(&j->lock);
    free(j->host);
    free(j);
}

/* Runs getaddrinfo into the job's fields (the job's lock is not held: only
 * this thread writes them until `done` is set). */
static void lookup(struct resolve_job *j)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    rc = getaddrinfo(j->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(j->why, sizeof j->why, "cannot resolve %.100s: %s", j->host, gai_strerror(rc));
        return;
    }
    for (struct addrinfo *a = res; a != NULL && j->n < RESOLVE_ADDRS_MAX; a = a->ai_next) {
        const void *src = a->ai_family == AF_INET
                              ? (const void *) &((struct sockaddr_in *) a->ai_addr)->sin_addr
                              : (const void *) &((struct sockaddr_in6 *) a->ai_addr)->sin6_addr;

        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
            inet_ntop(a->ai_family, src, j->addrs[j->n], RESOLVE_ADDR_LEN) != NULL)
            j->n++;
    }
    freeaddrinfo(res);
    if (j->n == 0)
        snprintf(j->why, sizeof j->why, "cannot resolve %.100s: no IPv4 or IPv6 address", j->host);
}

static void *resolve_main(void *arg)
{
    struct resolve_job *j = arg;
    bool abandoned;

    lookup(j);
    pthread_mutex_lock(&j->lock);
    j->done = true;
    abandoned = j->abandoned;
    /* Under the lock: the loop cannot abandon the job and destroy the
     * context in between. */
    if (!abandoned)
        lws_cancel_service(j->ctx);
    pthread_mutex_unlock(&j->lock);
    if (abandoned)
        job_free(j);
    return NULL;
}

struct resolve_job *resolve_start(struct lws_context *ctx, const char *host)
{
    struct resolve_job *j = calloc(1, sizeof *j);
    pthread_attr_t attr;
    pthread_t thread;
    int rc;

    if (j == NULL)
        return NULL;
    j->ctx = ctx;
    j->host = strdup(host);
    if (j->host == NULL || pthread_mutex_init(&j->lock, NULL) != 0) {
        free(j->host);
        free(j);
        return NULL;
    }
    if (pthread_attr_init(&attr) != 0) {
        job_free(j);
        return NULL;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, resolve_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

int resolve_take(struct resolve_job *j, char addrs[][RESOLVE_ADDR_LEN], int *n, char *why,
                 size_t cap)
{
    bool done;

    pthread_mutex_lock(&j->lock);
    done = j->done;
    pthread_mutex_unlock(&j->lock);
    if (!done)
        return 0;
    /* done: the thread writes nothing more */
    *n = j->n;
    memcpy(addrs, j->addrs, sizeof j->addrs);
    snprintf(why, cap, "%s", j->why);
    return 1;
}

void resolve_release(struct resolve_job *j)
{
    bool done;

    if (j == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    done = j->done;
    j->abandoned = true;
    pthread_mutex_unlock(&j->lock);
    if (done)
        job_free(j);
}
