/*
 * stream-bench.c - load client for the WebSocket stream (GET /v1/stream).
 *
 * Opens N WebSocket subscribers (plain sockets and epoll: the client must
 * cost as little CPU as possible, since it shares the machine with the
 * server and PostgreSQL), and W writer threads that commit events at a
 * fixed total rate straight into PostgreSQL, shaped like the server's own
 * writes (store.c: payment first, then the event with its NOTIFY and the
 * advisory lock announcing its seq, one transaction).
 * A writer notes the time COMMIT returned for each seq; a subscriber notes
 * when the event's frame arrived; the difference is the latency from
 * commit to receipt. Every subscriber must get every event once, in seq
 * order; the program checks that and says so.
 *
 *   stream-bench --port P --token T --conninfo C --subs N --rate R
 *                [--writers W] [--warmup S] [--seconds S]
 *   stream-bench --port P --token T --subs N --idle S
 *       (connect and subscribe N, print "ready", stay S seconds idle)
 *
 * Output: one line "key=value ..." with the figures (see main()).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING          (1u << 22) /* commit times by seq % RING */
#define HIST_US       10         /* histogram bucket width */
#define HIST_BUCKETS  1000000    /* 10 s */
#define READ_BUF      (256 * 1024)
#define MAX_INFLIGHT  256 /* handshakes at once */
#define PENDING_CHUNK (1u << 20)

enum conn_state { C_CONNECTING, C_HANDSHAKE, C_SUBSCRIBING, C_LIVE, C_CLOSED };

struct conn {
    int fd;
    enum conn_state state;
    unsigned char *carry; /* bytes of an incomplete frame (or header) */
    size_t carry_len, carry_cap;
    int64_t head;
    int64_t last_seq;
    uint64_t events;
    bool disorder;
    int close_code;
};

struct sample {
    int64_t seq;
    int64_t t_ns;
};

static struct {
    int port;
    const char *token;
    const char *conninfo;
    int subs;
    int rate;
    int writers;
    double warmup;
    double seconds;
    double idle;
} opt = {
    .port = 8080, .token = "", .subs = 100, .rate = 1000, .writers = 4, .warmup = 3, .seconds = 10};

static _Atomic int64_t commit_ns[RING]; /* 0: unknown */
static _Atomic int64_t written_last;    /* highest seq committed */
static _Atomic uint64_t written_count;
static _Atomic uint64_t write_errors;
static _Atomic bool writers_stop;
static int64_t measure_from_ns, measure_to_ns;

static uint64_t hist[HIST_BUCKETS + 1];
static uint64_t samples_n;
static int64_t sample_max_ns;
static struct sample *pending;
static size_t pending_n, pending_cap;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "stream-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- writers ------------------------------------------------------------ */

static const char insert_sql[] =
    "BEGIN;"
    "WITH p AS (INSERT INTO payments (amount, currency, payer, payee, reference, method, status,"
    " created_at, updated_at) VALUES (1250, 'EUR', 'bench payer', 'bench payee', 'INV-bench',"
    " 'card', 'pending', now(), now()) RETURNING *),"
    " e AS (INSERT INTO payment_events (type, payment_id, at, payment)"
    " SELECT 'payment.created', p.id, p.updated_at, json_build_object('id', p.id, 'amount',"
    " p.amount, 'currency', p.currency, 'payer', p.payer, 'payee', p.payee, 'reference',"
    " p.reference, 'description', p.description, 'method', p.method, 'status', p.status,"
    " 'metadata', p.metadata, 'version', p.version, 'created_at', to_char(p.created_at AT TIME"
    " ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'updated_at', to_char(p.updated_at AT"
    " TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) FROM p RETURNING seq)"
    " SELECT seq, pg_notify('paytrackr_events', seq::text),"
    " pg_advisory_xact_lock((seq >> 32)::int, ((seq << 32) >> 32)::int) FROM e;"
    "COMMIT;";

/* One writer thread: its share of the rate, paced by the clock. */
static void *writer_main(void *arg)
{
    int index = (int) (intptr_t) arg;
    PGconn *conn = PQconnectdb(opt.conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "stream-bench: writer: %s", PQerrorMessage(conn));
        exit(1);
    }
    double period_ns = 1e9 * opt.writers / opt.rate;
    int64_t start = now_ns() + (int64_t) (period_ns * index / opt.writers);
    for (uint64_t k = 0; !atomic_load(&writers_stop); k++) {
        int64_t due = start + (int64_t) (period_ns * (double) k);
        int64_t wait = due - now_ns();
        if (wait > 0) {
            struct timespec ts = {wait / 1000000000, wait % 1000000000};
            nanosleep(&ts, NULL);
        }
        if (!PQsendQuery(conn, insert_sql)) {
            atomic_fetch_add(&write_errors, 1);
            continue;
        }
        int64_t seq = -1;
        bool ok = true;
        PGresult *res;
        while ((res = PQgetResult(conn)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_TUPLES_OK && PQntuples(res) == 1)
                seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                ok = false;
            PQclear(res);
        }
        int64_t t = now_ns(); /* COMMIT has returned */
        if (!ok || seq < 0) {
            atomic_fetch_add(&write_errors, 1);
            continue;
        }
        atomic_store(&commit_ns[seq % RING], t);
        atomic_fetch_add(&written_count, 1);
        int64_t prev = atomic_load(&written_last);
        while (seq > prev && !atomic_compare_exchange_weak(&written_last, &prev, seq))
            ;
    }
    PQfinish(conn);
    return NULL;
}

/* ---- latency bookkeeping --------------------------------------------------- */

static void record(int64_t seq, int64_t t)
{
    if (pending_n == pending_cap) {
        pending_cap = pending_cap ? pending_cap * 2 : PENDING_CHUNK;
        struct sample *bigger = realloc(pending, pending_cap * sizeof *pending);
        if (!bigger)
            die("realloc");
        pending = bigger;
    }
    pending[pending_n].seq = seq;
    pending[pending_n].t_ns = t;
    pending_n++;
}

/* Turns receipts whose commit time is known into histogram entries. */
static void settle(bool final)
{
    size_t keep = 0;
    for (size_t i = 0; i < pending_n; i++) {
        int64_t c = atomic_load(&commit_ns[pending[i].seq % RING]);
        if (!c) {
            if (!final)
                pending[keep++] = pending[i];
            continue;
        }
        if (c < measure_from_ns || c > measure_to_ns)
            continue;
        int64_t lat = pending[i].t_ns - c;
        if (lat < 0)
            lat = 0; /* the NOTIFY overtook COMMIT's reply: ~0 */
        uint64_t b = (uint64_t) (lat / 1000 / HIST_US);
        hist[b < HIST_BUCKETS ? b : HIST_BUCKETS]++;
        samples_n++;
        if (lat > sample_max_ns)
            sample_max_ns = lat;
    }
    pending_n = keep;
}

static double percentile_ms(double p)
{
    uint64_t want = (uint64_t) ((double) samples_n * p);
    uint64_t acc = 0;
    for (uint64_t b = 0; b <= HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc > want)
            return (double) ((b + 1) * HIST_US) / 1000.0;
    }
    return -1;
}

/* ---- WebSocket client --------------------------------------------------------- */

static int ep;
static struct conn *conns;
static int live, inflight, closed_early;

static void send_all(struct conn *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            usleep(100); /* tiny control frames only: rare */
            continue;
        }
        if (n <= 0)
            return;
        p += n;
        len -= (size_t) n;
    }
}

/* A masked client frame. */
static void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
{
    unsigned char f[14 + 256];
    if (len > 256)
        return;
    size_t h = 0;
    f[h++] = (unsigned char) (0x80 | opcode);
    f[h++] = (unsigned char) (0x80 | len);
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        f[h + i] = ((const unsigned char *) payload)[i] ^ mask[i % 4];
    send_all(c, f, h + len);
}

static void start_connect(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) opt.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect");
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    inflight++;
}

static void on_message(struct conn *c, const unsigned char *p, size_t n, int64_t t)
{
    static const char ev[] = "{\"type\":\"event\"", sub[] = "{\"type\":\"subscribed\",\"head\":";
    if (n > sizeof ev - 1 && memcmp(p, ev, sizeof ev - 1) == 0) {
        const unsigned char *s = memmem(p, n, "\"seq\":", 6);
        if (!s)
            return;
        int64_t seq = strtoll((const char *) s + 6, NULL, 10);
        if (seq <= c->last_seq)
            c->disorder = true;
        c->last_seq = seq;
        c->events++;
        record(seq, t);
    } else if (n > sizeof sub - 1 && memcmp(p, sub, sizeof sub - 1) == 0) {
        c->head = strtoll((const char *) p + sizeof sub - 1, NULL, 10);
        c->last_seq = c->head;
        c->state = C_LIVE;
        live++;
        inflight--;
    }
}

static void close_conn(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    if (c->state != C_LIVE)
        inflight--;
    else
        live--;
    closed_early++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = C_CLOSED;
}

/* Parses frames in buf[0..len); returns bytes consumed. */
static size_t parse_frames(struct conn *c, const unsigned char *buf, size_t len, int64_t t)
{
    size_t off = 0;
    while (len - off >= 2) {
        const unsigned char *f = buf + off;
        int opcode = f[0] & 0x0f;
        uint64_t n = f[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (len - off < 4)
                break;
            n = ((uint64_t) f[2] << 8) | f[3];
            h = 4;
        } else if (n == 127) {
            if (len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | f[2 + i];
            h = 10;
        }
        if (len - off < h + n)
            break;
        if (opcode == 1)
            on_message(c, f + h, (size_t) n, t);
        else if (opcode == 9)
            send_frame(c, 10, f + h, (size_t) n); /* pong */
        else if (opcode == 8) {
            c->close_code = n >= 2 ? (f[h] << 8) | f[h + 1] : 1005;
            close_conn(c);
            return len;
        }
        off += h + (size_t) n;
    }
    return off;
}

static void keep_carry(struct conn *c, const unsigned char *p, size_t n)
{
    if (n > c->carry_cap) {
        unsigned char *bigger = realloc(c->carry, n);
        if (!bigger)
            die("realloc");
        c->carry = bigger;
        c->carry_cap = n;
    }
    memmove(c->carry, p, n);
    c->carry_len = n;
}

static unsigned char rbuf[READ_BUF];

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_conn(c);
            return;
        }
        int64_t t = now_ns();
        const unsigned char *data = rbuf;
        size_t len = (size_t) n;
        if (c->carry_len) {
            size_t need = c->carry_len + len;
            if (need > c->carry_cap) {
                unsigned char *bigger = realloc(c->carry, need);
                if (!bigger)
                    die("realloc");
                c->carry = bigger;
                c->carry_cap = need;
            }
            memcpy(c->carry + c->carry_len, rbuf, len);
            c->carry_len = need;
            data = c->carry;
            len = need;
        }
        if (c->state == C_HANDSHAKE) {
            const unsigned char *end = memmem(data, len, "\r\n\r\n", 4);
            if (!end) {
                keep_carry(c, data, len);
                continue;
            }
            if (len < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "stream-bench: upgrade refused: %.60s\n", (const char *) data);
                close_conn(c);
                return;
            }
            static const char subscribe[] = "{\"type\":\"subscribe\",\"after\":null}";
            send_frame(c, 1, subscribe, sizeof subscribe - 1);
            c->state = C_SUBSCRIBING;
            size_t skip = (size_t) (end + 4 - data);
            data += skip;
            len -= skip;
        }
        size_t used = parse_frames(c, data, len, t);
        if (c->state == C_CLOSED)
            return;
        if (used < len)
            keep_carry(c, data + used, len - used);
        else
            c->carry_len = 0;
        if (c->carry_len == 0 && c->carry_cap > 65536) {
            free(c->carry);
            c->carry = NULL;
            c->carry_cap = 0;
        }
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            errno = err;
            die("connect");
        }
        char req[1024];
        int n = snprintf(req, sizeof req,
                         "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: paytrackr.v1\r\n"
                         "Authorization: Bearer %s\r\n\r\n",
                         opt.port, opt.token);
        send_all(c, req, (size_t) n);
        c->state = C_HANDSHAKE;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

static void service(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events);
}

/* Connects every subscriber, at most MAX_INFLIGHT handshakes at a time. */
static void connect_all(void)
{
    int next = 0;
    int64_t deadline = now_ns() + (int64_t) 120 * 1000000000;
    while (live < opt.subs) {
        while (next < opt.subs && inflight < MAX_INFLIGHT)
            start_connect(&conns[next++]);
        service(10);
        if (now_ns() > deadline || closed_early) {
            fprintf(stderr, "stream-bench: only %d of %d subscribers connected (%d closed)\n", live,
                    opt.subs, closed_early);
            exit(1);
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: stream-bench --port P --token T [--conninfo C --rate R "
                    "--writers W --warmup S --seconds S | --idle S] --subs N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, 0, 'p'},     {"token", required_argument, 0, 't'},
        {"conninfo", required_argument, 0, 'c'}, {"subs", required_argument, 0, 'n'},
        {"rate", required_argument, 0, 'r'},     {"writers", required_argument, 0, 'w'},
        {"warmup", required_argument, 0, 'W'},   {"seconds", required_argument, 0, 's'},
        {"idle", required_argument, 0, 'i'},     {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 't':
            opt.token = optarg;
            break;
        case 'c':
            opt.conninfo = optarg;
            break;
        case 'n':
            opt.subs = atoi(optarg);
            break;
        case 'r':
            opt.rate = atoi(optarg);
            break;
        case 'w':
            opt.writers = atoi(optarg);
            break;
        case 'W':
            opt.warmup = atof(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'i':
            opt.idle = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (opt.subs < 1 || (!opt.idle && (!opt.conninfo || opt.rate < 1 || opt.writers < 1)))
        usage();
    ep = epoll_create1(0);
    conns = calloc((size_t) opt.subs, sizeof *conns);
    if (ep < 0 || !conns)
        die("setup");
    int64_t t0 = now_ns();
    connect_all();
    double connect_s = (double) (now_ns() - t0) / 1e9;
    if (opt.idle > 0) {
        printf("ready subs=%d connect_s=%.2f\n", live, connect_s);
        fflush(stdout);
        int64_t until = now_ns() + (int64_t) (opt.idle * 1e9);
        while (now_ns() < until)
            service(100);
        printf("done subs=%d closed=%d\n", live, closed_early);
        return closed_early ? 1 : 0;
    }

    pthread_t *th = calloc((size_t) opt.writers, sizeof *th);
    int64_t start = now_ns();
    measure_from_ns = start + (int64_t) (opt.warmup * 1e9);
    measure_to_ns = measure_from_ns + (int64_t) (opt.seconds * 1e9);
    for (int i = 0; i < opt.writers; i++)
        pthread_create(&th[i], NULL, writer_main, (void *) (intptr_t) i);
    int64_t last_settle = now_ns();
    while (now_ns() < measure_to_ns) {
        service(5);
        if (now_ns() - last_settle > 50000000) {
            settle(false);
            last_settle = now_ns();
        }
    }
    atomic_store(&writers_stop, true);
    for (int i = 0; i < opt.writers; i++)
        pthread_join(th[i], NULL);
    int64_t stop = now_ns();
    /* Drain: every subscriber must reach the last committed seq. */
    int64_t target = atomic_load(&written_last);
    int64_t drain_deadline = now_ns() + (int64_t) 30 * 1000000000;
    for (;;) {
        int behind = 0;
        for (int i = 0; i < opt.subs; i++)
            behind += conns[i].state == C_LIVE && conns[i].last_seq < target;
        if (!behind || now_ns() > drain_deadline)
            break;
        service(10);
    }
    settle(true);
    uint64_t written = atomic_load(&written_count);
    uint64_t min_events = UINT64_MAX, max_events = 0;
    int disorder = 0, incomplete = 0;
    for (int i = 0; i < opt.subs; i++) {
        struct conn *c = &conns[i];
        if (c->events < min_events)
            min_events = c->events;
        if (c->events > max_events)
            max_events = c->events;
        disorder += c->disorder;
        incomplete += c->state != C_LIVE || c->events != written;
    }
    double secs = (double) (stop - start) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
                 (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
    printf("subs=%d rate=%d written=%" PRIu64 " write_rate=%.0f write_errors=%" PRIu64
           " delivered_per_sub_min=%" PRIu64 " max=%" PRIu64
           " incomplete=%d disorder=%d closed=%d samples=%" PRIu64
           " p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f"
           " delivered_msgs_per_s=%.0f client_cpu=%.0f%%\n",
           opt.subs, opt.rate, written, (double) written / secs, atomic_load(&write_errors),
           min_events, max_events, incomplete, disorder, closed_early, samples_n,
           percentile_ms(0.50), percentile_ms(0.90), percentile_ms(0.99), percentile_ms(0.999),
           (double) sample_max_ns / 1e6, (double) written * opt.subs / secs,
           100 * cpu / ((double) (now_ns() - t0) / 1e9));
    return incomplete || disorder ? 3 : 0;
}
