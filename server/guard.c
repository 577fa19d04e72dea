/*
 * guard.c - connection cap, URL length and request deadlines.
 */
#include "guard.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "http.h"
#include "server.h"

/* How often request deadlines are checked: a late request is answered
 * within this much of its deadline. */
#define GUARD_SWEEP_US (250 * LWS_US_PER_SEC / 1000)

/* After a 408, a client that does not read the answer is dropped after
 * this long. */
#define GUARD_LINGER_S 5

/* Files the process needs besides client connections: listeners, the
 * database pool and LISTEN connections, lws's own pipes, logs. */
#define GUARD_FD_RESERVE 64

/* Connections refused at the cap are logged at most this often. */
#define GUARD_WARN_EVERY_US (60 * LWS_US_PER_SEC)

void guard_vhost_options(const struct server *srv, struct lws_context_creation_info *info)
{
    /* lws arms this when a request's first bytes arrive and clears it when
     * its headers are complete; it is not re-armed by each byte. */
    info->timeout_secs_ah_idle = (unsigned int) srv->cfg.header_timeout_seconds;
}

int guard_admit_connection(struct server *srv)
{
    /* Closing right after accept() costs nothing further; answering would
     * mean a TLS handshake for every connection over the cap. */
    if (srv->metrics.connections_open < (uint64_t) srv->cfg.max_connections)
        return 0;
    srv->metrics.connections_refused++;
    /* A flood must not also flood the log: at most a line a minute. */
    int64_t now = server_now_us();
    if (!srv->cap_warned_us || now - srv->cap_warned_us >= GUARD_WARN_EVERY_US) {
        srv->cap_warned_us = now;
        log_msg(&srv->log, LOG_WARN,
                "PAYTRACKR_MAX_CONNECTIONS (%d) reached: closing new connections at once "
                "(%llu so far)",
                srv->cfg.max_connections, (unsigned long long) srv->metrics.connections_refused);
    }
    return 1;
}

void guard_connection_event(struct server *srv, bool opened)
{
    if (opened)
        srv->metrics.connections_open++;
    else if (srv->metrics.connections_open > 0) /* the listening socket, at exit */
        srv->metrics.connections_open--;
}

int guard_check_url(struct http_req *rq, size_t path_len)
{
    /* lws keeps the query arguments without their '&' separators; the
     * few bytes that leaves out do not matter for a limit in kilobytes. */
    size_t len = path_len;
    int args = lws_hdr_total_length(rq->wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (args > 0)
        len += (size_t) args + 1;
    if (len <= rq->srv->cfg.max_url_bytes)
        return 0;
    char msg[96];
    snprintf(msg, sizeof msg, "the URL is longer than %zu bytes", rq->srv->cfg.max_url_bytes);
    /* A body may follow that will not be read: the connection ends. */
    rq->close_after = true;
    http_respond_error(rq, 414, "uri_too_long", msg, NULL);
    return -1;
}

/*
 * Bytes the process has taken from the socket: received minus still
 * queued. The kernel's two counters are read one after the other while
 * the peer may send in between, which counts the new bytes as received
 * but not as queued: a next request that arrived in that gap looked as if
 * it had been read with the previous one, and an honest keep-alive client
 * was refused as a pipelining one (about one create in 500 under load).
 * Only this thread reads the socket, so the queued count can only grow:
 * when it is the same before and after the read of the received count,
 * nothing arrived in between and the result is exact. A socket that keeps
 * receiving through every try gets a bound instead, on the side `upper`
 * says (the caller's safe side).
 */
#define GUARD_COUNTER_TRIES 8

static bool socket_consumed(struct lws *wsi, bool upper, uint64_t *out)
{
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0)
        return false;
    for (int attempt = 0;; attempt++) {
        int before = 0, after = 0;
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        memset(&ti, 0, sizeof ti);
        if (ioctl(fd, FIONREAD, &before) < 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
            tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received ||
            ioctl(fd, FIONREAD, &after) < 0)
            return false;
        if (before == after || attempt == GUARD_COUNTER_TRIES - 1) {
            *out = ti.tcpi_bytes_received - (uint64_t) (upper ? before : after);
            return true;
        }
    }
}

void guard_mark_consumed(struct http_req *rq)
{
    if (!rq->conn)
        return;
    /* Not measurable: every later request with a body is refused, which
     * is safe; it does not happen on a TCP socket on Linux. */
    if (!socket_consumed(rq->wsi, true, &rq->conn->consumed_mark))
        rq->conn->consumed_mark = UINT64_MAX;
    rq->conn->marked = true;
}

bool guard_pipelined(struct http_req *rq)
{
    if (!rq->conn)
        return true; /* out of memory: cannot tell */
    if (!rq->conn->marked)
        return false; /* the first request on the connection */
    uint64_t now;
    if (!socket_consumed(rq->wsi, false, &now))
        return true;
    /* lws reads the socket again only once its buffer list is empty; no
     * read since the mark means these headers came from that list. */
    return now <= rq->conn->consumed_mark;
}

/* Answers 408 for every request whose body is still arriving at its
 * deadline. lws would keep waiting: it re-arms its timer on each chunk. */
static void sweep(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, sul_guard);
    int64_t now = server_now_us();
    int64_t limit = (int64_t) srv->cfg.request_timeout_seconds * 1000000;
    for (struct http_req *rq = srv->requests; rq; rq = rq->next) {
        if (rq->phase != HTTP_READING || now - rq->t_start_us < limit)
            continue;
        srv->metrics.request_timeouts++;
        rq->close_after = true;
        http_respond_error(rq, 408, "request_timeout", "the request was not received in time",
                           NULL);
        /* http_respond cleared the lws timer: bound the answer too. */
        lws_set_timeout(rq->wsi, PENDING_TIMEOUT_HTTP_CONTENT, GUARD_LINGER_S);
    }
    lws_sul_schedule(srv->context, 0, &srv->sul_guard, sweep, GUARD_SWEEP_US);
}

void guard_start(struct server *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t) srv->cfg.max_connections + GUARD_FD_RESERVE)
        log_msg(&srv->log, LOG_WARN,
                "PAYTRACKR_MAX_CONNECTIONS is %d but the open-file limit is %llu: "
                "connections beyond that are refused by the system",
                srv->cfg.max_connections, (unsigned long long) rl.rlim_cur);
    lws_sul_schedule(srv->context, 0, &srv->sul_guard, sweep, GUARD_SWEEP_US);
}

void guard_stop(struct server *srv)
{
    lws_sul_cancel(&srv->sul_guard);
}
