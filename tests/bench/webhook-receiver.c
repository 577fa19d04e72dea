/*
 * webhook-receiver.c - the receiving end of tests/bench/webhook-bench.sh.
 *
 * Answers 204 to every POST, and for each path (one per endpoint) checks
 * that seqs only grow (a repeat counts as repeated, a step back as
 * reordered), and records the commit-to-receipt latency: receipt time
 * minus the event's "at", in whole milliseconds. GET /stats answers the
 * summary as JSON, GET /count the deliveries so far (cheap: the bench
 * polls it), POST /reset clears it.
 *
 * It is written in C with plain sockets and epoll for the reason
 * stream-bench.c is: it shares two cores with the server and PostgreSQL,
 * and stands for endpoints that in production run on other machines, so
 * it must cost as little CPU as possible (the Node.js receiver it
 * replaces, webhook-receiver.js, took about as much CPU per delivery as
 * the server itself). One thread; HTTP/1.1 keep-alive and pipelining.
 *
 *   RECEIVER_PORT=P webhook-receiver
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST (1 << 20) /* a request larger than this closes its connection */
#define MAX_PATHS   65536     /* distinct endpoint paths tracked */
#define PATH_LEN    64

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    bool continued; /* "100 Continue" sent for the request in buf */
};

struct path_seq {
    char path[PATH_LEN];
    int64_t last; /* -1: none yet */
};

struct stats {
    int64_t *lat_ms;
    size_t nlat, cap;
    long count, dups, reordered, endpoints;
    int64_t first_ms, last_ms;
    struct path_seq *paths; /* open addressing, MAX_PATHS */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stats_reset(struct stats *st)
{
    st->nlat = 0;
    st->count = st->dups = st->reordered = st->endpoints = 0;
    st->first_ms = st->last_ms = 0;
    for (size_t i = 0; i < MAX_PATHS; i++)
        st->paths[i].path[0] = '\0';
}

/* The slot of `path` (a new one when first seen), or NULL when full. */
static struct path_seq *path_slot(struct stats *st, const char *path, size_t n)
{
    if (n >= PATH_LEN)
        n = PATH_LEN - 1;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) path[i]) * 16777619u;
    for (size_t probe = 0; probe < MAX_PATHS; probe++) {
        struct path_seq *p = &st->paths[(h + probe) % MAX_PATHS];
        if (p->path[0] == '\0') {
            memcpy(p->path, path, n);
            p->path[n] = '\0';
            p->last = -1;
            st->endpoints++;
            return p;
        }
        if (strncmp(p->path, path, n) == 0 && p->path[n] == '\0')
            return p;
    }
    return NULL;
}

/* Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ", or -1. */
static int64_t parse_at(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t) timegm(&tm) * 1000 + ms;
}

/* Records one delivery: its body is the event, its path the endpoint. */
static void record(struct stats *st, const char *path, size_t path_len, const char *body)
{
    int64_t now = now_ms();
    const char *seq_at = strstr(body, "\"seq\":");
    const char *at_at = strstr(body, "\"at\":\"");
    int64_t at = at_at ? parse_at(at_at + 6) : -1;
    struct path_seq *p = path_slot(st, path, path_len);
    if (!seq_at || at < 0 || !p) {
        st->reordered++; /* unreadable: counted against the run */
        return;
    }
    int64_t seq = strtoll(seq_at + 6, NULL, 10);
    if (p->last >= 0 && seq == p->last)
        st->dups++;
    else if (p->last >= 0 && seq < p->last)
        st->reordered++;
    p->last = seq;
    if (st->nlat == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 65536;
        int64_t *grown = realloc(st->lat_ms, cap * sizeof *grown);
        if (!grown) {
            st->reordered++;
            return;
        }
        st->lat_ms = grown;
        st->cap = cap;
    }
    st->lat_ms[st->nlat++] = now - at;
    st->count++;
    if (!st->first_ms)
        st->first_ms = now;
    st->last_ms = now;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* The /stats body (malloc'd), the Node.js receiver's shape. */
static char *stats_json(const struct stats *st)
{
    int64_t *sorted = malloc((st->nlat + 1) * sizeof *sorted);
    char *out = malloc(512);
    if (!sorted || !out) {
        free(sorted);
        free(out);
        return NULL;
    }
    memcpy(sorted, st->lat_ms, st->nlat * sizeof *sorted);
    qsort(sorted, st->nlat, sizeof *sorted, cmp_i64);
    char p50[24] = "null", p99[24] = "null", max[24] = "null";
    if (st->nlat > 0) {
        size_t i50 = st->nlat / 2, i99 = (size_t) ((double) st->nlat * 0.99);
        if (i99 >= st->nlat)
            i99 = st->nlat - 1;
        snprintf(p50, sizeof p50, "%lld", (long long) sorted[i50]);
        snprintf(p99, sizeof p99, "%lld", (long long) sorted[i99]);
        snprintf(max, sizeof max, "%lld", (long long) sorted[st->nlat - 1]);
    }
    free(sorted);
    snprintf(out, 512,
             "{\"count\":%ld,\"dups\":%ld,\"reordered\":%ld,\"endpoints\":%ld,\"p50_ms\":%s,"
             "\"p99_ms\":%s,\"max_ms\":%s,\"window_s\":%.3f}",
             st->count, st->dups, st->reordered, st->endpoints, p50, p99, max,
             (double) (st->last_ms - st->first_ms) / 1000.0);
    return out;
}

static int send_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1; /* a reply is small: a full socket buffer is a dead client */
        data += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Content-Length and whether "Expect: 100-continue" was asked, from the
 * header block head[0..n). */
static long header_info(const char *head, size_t n, bool *expect)
{
    long length = 0;
    *expect = false;
    const char *line = memchr(head, '\n', n);
    while (line && (size_t) (line + 1 - head) < n) {
        line++;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            length = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "Expect:", 7) == 0)
            *expect = true;
        line = memchr(line, '\n', n - (size_t) (line - head));
    }
    return length;
}

/* Answers one complete request; -1 closes the connection. */
static int answer(struct stats *st, int fd, char *req, size_t head_len, size_t body_len)
{
    static const char no_content[] = "HTTP/1.1 204 No Content\r\n\r\n";
    char *sp = memchr(req, ' ', head_len);
    char *path = sp ? sp + 1 : NULL;
    char *end = path ? memchr(path, ' ', head_len - (size_t) (path - req)) : NULL;
    if (!end)
        return -1;
    size_t path_len = (size_t) (end - path);
    bool get = strncmp(req, "GET ", 4) == 0;
    if (get && path_len == 6 && memcmp(path, "/count", 6) == 0) {
        char reply[128];
        int n =
            snprintf(reply, sizeof reply,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%ld",
                     snprintf(NULL, 0, "%ld", st->count), st->count);
        return send_all(fd, reply, (size_t) n);
    }
    if (get && path_len == 6 && memcmp(path, "/stats", 6) == 0) {
        char *json = stats_json(st);
        char head[128];
        if (!json)
            return -1;
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         strlen(json));
        bool sent = send_all(fd, head, (size_t) n) == 0 && send_all(fd, json, strlen(json)) == 0;
        free(json);
        return sent ? 0 : -1;
    }
    if (!get && path_len == 6 && memcmp(path, "/reset", 6) == 0) {
        stats_reset(st);
    } else if (!get) {
        char *body = req + head_len;
        char saved = body[body_len];
        body[body_len] = '\0';
        record(st, path, path_len, body);
        body[body_len] = saved;
    }
    return send_all(fd, no_content, sizeof no_content - 1);
}

/* Answers every complete request in c->buf; -1 closes the connection. */
static int serve(struct stats *st, struct conn *c)
{
    for (;;) {
        char *blank = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!blank)
            return c->len < MAX_REQUEST ? 0 : -1;
        size_t head_len = (size_t) (blank + 4 - c->buf);
        bool expect;
        long body_len = header_info(c->buf, head_len, &expect);
        if (body_len < 0 || (size_t) body_len > MAX_REQUEST)
            return -1;
        if (c->len < head_len + (size_t) body_len) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (expect && !c->continued && send_all(c->fd, cont, sizeof cont - 1) < 0)
                return -1;
            c->continued = true;
            return 0;
        }
        if (answer(st, c->fd, c->buf, head_len, (size_t) body_len) < 0)
            return -1;
        size_t used = head_len + (size_t) body_len;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->continued = false;
    }
}

/* Reads what is there and answers it; -1 when the connection is done. */
static int on_readable(struct stats *st, struct conn *c)
{
    for (;;) {
        if (c->cap - c->len < 4096) {
            size_t cap = c->cap * 2;
            char *grown = cap <= 2 * MAX_REQUEST ? realloc(c->buf, cap + 1) : NULL;
            if (!grown)
                return -1;
            c->buf = grown;
            c->cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0)
            return -1;
        c->len += (size_t) r;
        if (serve(st, c) < 0)
            return -1;
    }
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->buf);
    free(c);
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (c)
            c->buf = malloc(16384 + 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || !c->buf || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            if (c)
                free(c->buf);
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->cap = 16384;
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 1024) < 0) {
        perror("webhook-receiver: listen");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int main(void)
{
    const char *port_text = getenv("RECEIVER_PORT");
    int port = port_text ? atoi(port_text) : 0;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "webhook-receiver: set RECEIVER_PORT\n");
        return 2;
    }
    struct stats st = {.paths = calloc(MAX_PATHS, sizeof(struct path_seq))};
    int lfd = listen_on(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (!st.paths || lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        return 1;
    stats_reset(&st);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c)
                accept_all(ep, lfd);
            else if (on_readable(&st, c) < 0)
                conn_close(c); /* closing the fd removes it from the epoll set */
        }
    }
}
