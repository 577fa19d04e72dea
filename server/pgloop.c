/*
 * pgloop.c - connecting off the loop, back-off, socket adoption (see
 * pgloop.h).
 */
#include "pgloop.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "db.h"

/* Reconnect delays; the last one repeats. */
static const uint32_t pgloop_backoff_ms[] = {100, 250, 500, 1000, 2000, 5000};

void pgloop_init(struct pgloop_connector *c, struct lws_context *context, const char *app_name)
{
    memset(c, 0, sizeof *c);
    c->context = context;
    c->app_name = app_name;
    pthread_mutex_init(&c->lock, NULL);
}

/* The helper: the blocking connect, then the hand-over. */
static void *connect_main(void *arg)
{
    struct pgloop_connector *c = arg;
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = c->thread_conninfo;
    keys[n] = "connect_timeout";
    vals[n++] = "5";
    keys[n] = "application_name";
    vals[n++] = c->app_name;
    /* A dead peer is noticed by TCP within ~30 s even while idle, and any
     * query is bounded server side. */
    keys[n] = "keepalives_idle";
    vals[n++] = "10";
    keys[n] = "tcp_user_timeout";
    vals[n++] = "20000";
    keys[n] = "options";
    vals[n++] = "-c statement_timeout=15000";
    if (c->thread_rootcert) {
        keys[n] = "sslrootcert";
        vals[n++] = c->thread_rootcert;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    pthread_mutex_lock(&c->lock);
    c->thread_conn = conn;
    c->thread_done = true;
    pthread_mutex_unlock(&c->lock);
    lws_cancel_service(c->context);
    return NULL;
}

int pgloop_connect(struct pgloop_connector *c, char *conninfo, const char *sslrootcert)
{
    c->thread_conninfo = conninfo;
    c->thread_rootcert = sslrootcert;
    c->thread_done = false;
    c->thread_conn = NULL;
    if (pthread_create(&c->thread, NULL, connect_main, c) != 0) {
        db_wipe_free(c->thread_conninfo);
        c->thread_conninfo = NULL;
        return -1;
    }
    c->connecting = true;
    return 0;
}

bool pgloop_take(struct pgloop_connector *c, PGconn **out)
{
    if (!c->connecting)
        return false;
    pthread_mutex_lock(&c->lock);
    bool done = c->thread_done;
    *out = c->thread_conn;
    c->thread_conn = NULL;
    pthread_mutex_unlock(&c->lock);
    if (!done)
        return false;
    pthread_join(c->thread, NULL);
    c->connecting = false;
    db_wipe_free(c->thread_conninfo);
    c->thread_conninfo = NULL;
    return true;
}

lws_usec_t pgloop_backoff_us(struct pgloop_connector *c)
{
    unsigned n = sizeof pgloop_backoff_ms / sizeof pgloop_backoff_ms[0];
    uint32_t ms = pgloop_backoff_ms[c->attempt < n ? c->attempt : n - 1];
    if (c->attempt < n)
        c->attempt++;
    return (lws_usec_t) ms * LWS_US_PER_SEC / 1000;
}

void pgloop_connected(struct pgloop_connector *c)
{
    c->attempt = 0;
}

void pgloop_finish(struct pgloop_connector *c)
{
    if (c->connecting) {
        pthread_join(c->thread, NULL);
        PQfinish(c->thread_conn);
        db_wipe_free(c->thread_conninfo);
        c->thread_conn = NULL;
        c->thread_conninfo = NULL;
        c->connecting = false;
    }
    pthread_mutex_destroy(&c->lock);
}

struct lws *pgloop_adopt(struct lws_vhost *vhost, PGconn *conn, const char *protocol, void *opaque)
{
    int fd = fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    lws_sock_file_fd_type desc;
    memset(&desc, 0, sizeof desc);
    desc.filefd = fd;
    struct lws *wsi =
        lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, desc, protocol, NULL);
    if (!wsi) {
        close(fd);
        return NULL;
    }
    lws_set_opaque_user_data(wsi, opaque);
    return wsi;
}

void pgloop_release(struct lws *wsi)
{
    lws_set_opaque_user_data(wsi, NULL);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}
