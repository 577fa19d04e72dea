/*
 * main.c - paytrackr-server: serve, migrate, healthcheck, hash-token.
 *
 * Serving runs one lws context with two vhosts (public API, admin probes),
 * a database worker pool, and a service loop that also watches for SIGTERM
 * (drain) and SIGINT (stop).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "db_async.h"
#include "http.h"
#include "keyvault.h"
#include "kvrefresh.h"
#include "guard.h"
#include "housekeeping.h"
#include "listener.h"
#include "log.h"
#include "migrate.h"
#include "ratelimit.h"
#include "server.h"
#include "store.h"
#include "stream.h"
#include "tls.h"
#include "webhook.h"

#define EXIT_CONFIG        2
#define HEALTH_INTERVAL_US (2 * LWS_US_PER_SEC)
#define DRAIN_CHECK_US     (50 * LWS_USEC_PER_SEC / 1000)

/* Signals are process-wide by nature: the handler only records which one
 * arrived and wakes the loop, which does the work. */
/* One flag per signal: a SIGHUP arriving with a SIGTERM must not hide it. */
static volatile sig_atomic_t term_seen, int_seen, hup_seen, signal_seen;
static struct lws_context *signal_context;
/* Until the service loop runs (and in `migrate`, throughout) nothing needs
 * draining, and the work in progress (a Key Vault read, a connect retry)
 * cannot be interrupted: SIGTERM and SIGINT end the process at once with
 * this status. -1 once the loop handles them. Without a handler at all, a
 * process running as PID 1 (a container) would ignore SIGTERM. */
static volatile sig_atomic_t exit_early_status = 0;

/* libwebsockets logs through one process-wide hook; its lines are routed
 * into the server's own log format. */
static const struct logger *lws_log_sink;

static void lws_log_line(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "libwebsockets: %s", line);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (lws_log_sink)
        log_msg(lws_log_sink, level == LLL_ERR ? LOG_ERROR : LOG_WARN, "%s", msg);
}

static void on_signal(int sig)
{
    if ((sig == SIGTERM || sig == SIGINT) && exit_early_status >= 0) {
        static const char msg[] = "paytrackr-server: signal before serving: exiting\n";
        ssize_t unused = write(2, msg, sizeof msg - 1);
        (void) unused;
        _exit(exit_early_status);
    }
    if (sig == SIGTERM)
        term_seen = 1;
    else if (sig == SIGINT)
        int_seen = 1;
    else if (sig == SIGHUP)
        hup_seen = 1;
    signal_seen = 1;
    if (signal_context)
        lws_cancel_service(signal_context);
}

int64_t server_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool server_ready(const struct server *srv)
{
    return srv->db_ready && srv->listener_up && !srv->draining;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: paytrackr-server [serve|migrate|healthcheck|hash-token|--version]\n"
               "  serve        run the API server (the default)\n"
               "  migrate      apply pending database migrations and exit\n"
               "  healthcheck  exit 0 when the local admin port answers /healthz\n"
               "  hash-token   read a token on stdin, print its SHA-256 for PAYTRACKR_TOKENS\n"
               "Configuration comes from PAYTRACKR_* environment variables (see README).\n");
}

/* ---- health and draining ------------------------------------------------ */

static void ping_done(struct db_job *job)
{
    struct server *srv = job->owner;
    srv->ping_in_flight = false;
    bool ok = job->result.status == 200;
    if (ok != srv->db_ready)
        log_msg(&srv->log, ok ? LOG_INFO : LOG_WARN, "database %s",
                ok ? "reachable: ready" : "unreachable: not ready");
    srv->db_ready = ok;
    db_job_free(job);
}

static void health_tick(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, sul_health);
    if (!srv->ping_in_flight && !srv->draining) {
        struct db_job *job = calloc(1, sizeof *job);
        if (job) {
            job->run = store_run_ping;
            job->done = ping_done;
            job->owner = srv;
            if (db_pool_submit(srv->pool, job) == 0)
                srv->ping_in_flight = true;
            else
                free(job);
        }
    }
    lws_sul_schedule(srv->context, 0, &srv->sul_health, health_tick, HEALTH_INTERVAL_US);
}

static bool drained(const struct server *srv)
{
    if (db_pool_in_flight(srv->pool) > 0 || db_async_in_flight(srv->reads) > 0)
        return false;
    for (const struct http_req *rq = srv->requests; rq; rq = rq->next)
        if (rq->phase != HTTP_IDLE)
            return false;
    if (srv->stream_open > 0) /* WebSockets closing with 1001 */
        return false;
    return true;
}

static void drain_tick(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, sul_drain);
    if (drained(srv) || server_now_us() >= srv->drain_deadline_us) {
        if (!drained(srv))
            log_msg(&srv->log, LOG_WARN, "grace period over with requests still open");
        srv->stop = true;
        lws_cancel_service(srv->context);
        return;
    }
    lws_sul_schedule(srv->context, 0, &srv->sul_drain, drain_tick, DRAIN_CHECK_US);
}

static void start_drain(struct server *srv)
{
    if (srv->draining)
        return;
    srv->draining = true;
    srv->drain_deadline_us = server_now_us() + (int64_t) srv->cfg.shutdown_grace_seconds * 1000000;
    log_msg(&srv->log, LOG_INFO, "SIGTERM: draining (grace %d s)", srv->cfg.shutdown_grace_seconds);
    /* lws 4.1.6's lws_context_deprecate() reads the listen wsi after
     * freeing it, so the listeners stay open: requests that still arrive
     * get a quick 503 with Connection: close and Retry-After, and /readyz
     * says not ready so the load balancer stops sending any. */
    stream_drain(srv);
    lws_sul_schedule(srv->context, 0, &srv->sul_drain, drain_tick, 1);
}

/* ---- Key Vault ------------------------------------------------------------ */

static void keyvault_settings(const struct config *cfg, kv_config *kv)
{
    kv_config_init(kv);
    kv->vault_url = cfg->keyvault_url;
    kv->secret_name = cfg->keyvault_secret;
    kv->client_id = cfg->azure_client_id;
    kv->imds_endpoint = cfg->imds_endpoint;
    kv->federated_token_file = cfg->azure_federated_token_file;
    kv->tenant_id = cfg->azure_tenant_id;
    kv->authority_host = cfg->azure_authority_host;
}

/* ---- serving ---------------------------------------------------------------- */

static const struct lws_protocols public_protocols[] = {
    /* tx_packet_size: one send() per answer piece. With 0, lws 4.1.6 cuts
     * every write into 4 KiB sends (its service buffer), buffers the rest
     * and sends it a piece per loop turn, and an answer not fully sent
     * when it is finished costs the keep-alive connection. */
    {"http", http_callback, sizeof(struct http_req), 0, 0, NULL, HTTP_HEADERS_MAX + HTTP_CHUNK},
    STREAM_PROTOCOL,
    LISTENER_PROTOCOL,
    DB_ASYNC_PROTOCOL,
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_protocols admin_protocols[] = {
    {"http-admin", admin_callback, 256, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const char *bind_iface(const char *host)
{
    /* lws binds every address when given no interface. */
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "*") == 0)
        return NULL;
    return host;
}

static struct lws_vhost *make_vhost(struct server *srv, const char *name, const char *host,
                                    int port, const struct lws_protocols *protocols, bool tls)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.vhost_name = name;
    info.port = port;
    info.iface = bind_iface(host);
    info.protocols = protocols;
    info.user = srv;
    info.keepalive_timeout = 60;
    info.timeout_secs = (unsigned int) srv->cfg.header_timeout_seconds;
    guard_vhost_options(srv, &info);
    if (protocols == public_protocols) {
        info.retry_and_idle_policy = &srv->ws_retry; /* WebSocket pings */
        /* lws 4.1.6 closes a request with a method it does not know (FOO,
         * TRACE) without an answer; with this option it hands the
         * connection to protocol 0 as a raw socket instead, where http.c
         * answers 400 in JSON and closes (LWS_CALLBACK_RAW_ADOPT). */
        info.options |= LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
    }
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = srv->cfg.tls_cert;
        info.ssl_private_key_filepath = srv->cfg.tls_key;
        tls_vhost_options(&info);
    }
    return lws_create_vhost(srv->context, &info);
}

static int create_context(struct server *srv)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.max_http_header_data2 = (unsigned int) srv->cfg.max_header_bytes;
    /* lws reads its TLS handshake and body-inactivity timers from the
     * context, not the vhost. */
    info.timeout_secs = (unsigned int) srv->cfg.header_timeout_seconds;
    info.user = srv;
    lws_log_sink = &srv->log;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line);
    srv->context = lws_create_context(&info);
    if (!srv->context)
        return -1;
    srv->public_vhost = make_vhost(srv, "public", srv->cfg.listen_host, srv->cfg.listen_port,
                                   public_protocols, srv->cfg.tls_cert != NULL);
    srv->admin_vhost =
        make_vhost(srv, "admin", srv->cfg.admin_host, srv->cfg.admin_port, admin_protocols, false);
    return srv->public_vhost && srv->admin_vhost ? 0 : -1;
}

static void make_boot_id(struct server *srv)
{
    unsigned char r[4] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t) sizeof r)
        memcpy(r, &(uint32_t){(uint32_t) server_now_us()}, 4);
    snprintf(srv->boot_id, sizeof srv->boot_id, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

/* Installs the handlers; called first thing, before anything can block.
 * Until signals_to_loop(), SIGTERM/SIGINT exit with `early_status`. */
static void install_signals(int early_status)
{
    exit_early_status = early_status;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* reload the TLS certificate */
    signal(SIGPIPE, SIG_IGN);
}

/* From now on the service loop handles the signals (a SIGTERM that came
 * meanwhile is not lost: the process has exited already). */
static void signals_to_loop(struct lws_context *context)
{
    signal_context = context;
    exit_early_status = -1;
}

static void handle_signal(struct server *srv)
{
    signal_seen = 0;
    if (hup_seen) {
        hup_seen = 0;
        tls_reload(srv, "SIGHUP");
    }
    if (term_seen) {
        term_seen = 0;
        start_drain(srv);
    }
    if (int_seen) {
        int_seen = 0;
        log_msg(&srv->log, LOG_INFO, "SIGINT: stopping");
        srv->stop = true;
    }
}

static int serve(void)
{
    static struct server srv; /* one per process; lives until exit */
    char cause[512];
    install_signals(0); /* nothing to drain yet: a plain exit */
    if (config_load(&srv.cfg, cause, sizeof cause) < 0) {
        fprintf(stderr, "paytrackr-server: %s\n", cause);
        config_free(&srv.cfg);
        return EXIT_CONFIG;
    }
    if (webhook_config_load(&srv.whcfg, cause, sizeof cause) < 0) {
        fprintf(stderr, "paytrackr-server: %s\n", cause);
        config_free(&srv.cfg);
        return EXIT_CONFIG;
    }
    srv.log.json = srv.cfg.log_format == CONFIG_LOG_JSON;
    srv.log.fd = 2;
    make_boot_id(&srv);
    struct kvrefresh *refresher = NULL;
    if (!srv.cfg.database_url) {
        kv_config kv;
        keyvault_settings(&srv.cfg, &kv);
        if (kv_config_check(&kv, cause, sizeof cause) < 0) {
            fprintf(stderr, "paytrackr-server: %s\n", cause);
            config_free(&srv.cfg);
            return EXIT_CONFIG;
        }
        /* Read by a thread of its own; until it has, requests get 503 and
         * /readyz says not ready. */
        refresher = kvrefresh_start(&kv, &srv.log);
        if (!refresher) {
            fprintf(stderr, "paytrackr-server: cannot start the Key Vault reader\n");
            config_free(&srv.cfg);
            return 1;
        }
    }
    stream_init(&srv);
    if (create_context(&srv) < 0) {
        fprintf(stderr,
                "paytrackr-server: PAYTRACKR_LISTEN: cannot listen on %s:%d or "
                "PAYTRACKR_ADMIN_LISTEN %s:%d (address in use or not local?)\n",
                srv.cfg.listen_host, srv.cfg.listen_port, srv.cfg.admin_host, srv.cfg.admin_port);
        if (srv.context)
            lws_context_destroy(srv.context);
        kvrefresh_stop(refresher);
        config_free(&srv.cfg);
        return EXIT_CONFIG;
    }
    struct db_pool_config pc = {
        .conninfo = srv.cfg.database_url,
        .source = {refresher ? kvrefresh_current : NULL, refresher ? kvrefresh_stale : NULL,
                   refresher},
        .sslrootcert = srv.cfg.db_sslrootcert,
        .size = srv.cfg.db_pool_size,
        .queue_max = srv.cfg.db_queue_size,
        .migrate = srv.cfg.migrate_at_start,
        .prepare = srv.cfg.db_prepare,
        .context = srv.context,
        .log = &srv.log,
    };
    srv.pool = db_pool_start(&pc);
    if (!srv.pool) {
        fprintf(stderr, "paytrackr-server: cannot start the database workers\n");
        lws_context_destroy(srv.context);
        kvrefresh_stop(refresher);
        config_free(&srv.cfg);
        return 1;
    }
    struct db_async_config ac = {
        .connections = srv.cfg.db_read_connections,
        .depth_max = srv.cfg.db_queue_size,
        .prepare = srv.cfg.db_prepare,
        .sslrootcert = srv.cfg.db_sslrootcert,
        .pool = srv.pool,
        .context = srv.context,
        .vhost = srv.public_vhost,
        .log = &srv.log,
    };
    srv.reads = db_async_start(&ac);
    if (!srv.reads) {
        fprintf(stderr, "paytrackr-server: cannot start the database read connections\n");
        db_pool_stop(srv.pool);
        lws_context_destroy(srv.context);
        kvrefresh_stop(refresher);
        config_free(&srv.cfg);
        return 1;
    }
    if (listener_start(&srv) < 0) {
        fprintf(stderr, "paytrackr-server: cannot start the database listener\n");
        db_async_stop(srv.reads);
        db_pool_stop(srv.pool);
        lws_context_destroy(srv.context);
        kvrefresh_stop(refresher);
        config_free(&srv.cfg);
        return 1;
    }
    srv.webhooks = webhook_start(&srv);
    if (!srv.webhooks) {
        fprintf(stderr, "paytrackr-server: cannot start the webhook delivery thread\n");
        listener_stop(&srv);
        db_async_stop(srv.reads);
        db_pool_stop(srv.pool);
        lws_context_destroy(srv.context);
        config_free(&srv.cfg);
        return 1;
    }
    signals_to_loop(srv.context);
    char port[16], admin[16];
    snprintf(port, sizeof port, "%d", srv.cfg.listen_port);
    snprintf(admin, sizeof admin, "%d", srv.cfg.admin_port);
    struct log_field fields[] = {
        {"listen", srv.cfg.listen_host, 0},
        {"port", port, 1},
        {"admin_port", admin, 1},
        {"tls", srv.cfg.tls_cert ? "true" : "false", 1},
        {"auth", srv.cfg.auth == CONFIG_AUTH_OFF ? "off" : "required", 0},
        {NULL, NULL, 0},
    };
    log_fields(&srv.log, LOG_INFO, "listening", fields);
    if (srv.cfg.auth == CONFIG_AUTH_OFF)
        log_msg(&srv.log, LOG_WARN,
                "PAYTRACKR_AUTH=off: every caller is an operator; "
                "for local development only");
    /* Without it (out of memory) each request line is its own write. */
    srv.log_batch = malloc(sizeof *srv.log_batch);
    if (srv.log_batch)
        srv.log_batch->len = 0;
    health_tick(&srv.sul_health);
    housekeeping_start(&srv);
    guard_start(&srv);
    tls_watch_start(&srv);
    while (!srv.stop) {
        if (lws_service(srv.context, 0) < 0)
            break;
        if (signal_seen)
            handle_signal(&srv);
    }
    http_log_flush(&srv);
    lws_sul_cancel(&srv.sul_health);
    lws_sul_cancel(&srv.sul_drain);
    housekeeping_stop(&srv);
    tls_watch_stop(&srv);
    guard_stop(&srv);
    /* Before the pool: the delivery thread reads its connection string. */
    webhook_stop(srv.webhooks);
    srv.webhooks = NULL;
    /* Reads in flight on the loop's connections are answered before the
     * pool goes, which they would fall back to. */
    db_async_stop(srv.reads);
    srv.reads = NULL;
    /* Workers first: their last completions are drained while the
     * connections they belong to still exist. */
    db_pool_stop(srv.pool);
    srv.pool = NULL;
    listener_stop(&srv);
    signal_context = NULL;
    lws_context_destroy(srv.context);
    free(srv.stream_batch);
    /* After everything that reads the connection string. */
    kvrefresh_stop(refresher);
    ratelimit_stop(&srv);
    http_log_flush(&srv);
    log_msg(&srv.log, LOG_INFO, "stopped");
    free(srv.log_batch);
    config_free(&srv.cfg);
    return 0;
}

/* ---- subcommands -------------------------------------------------------------- */

/* Reads one Key Vault secret into *out (malloc'd) when *out is still NULL.
 * Returns 0, -2 for a settings problem, -1 when the read failed. */
static int keyvault_read(const struct config *cfg, const char *secret, char **out, char *cause,
                         size_t cause_len)
{
    if (*out)
        return 0;
    kv_config kv;
    keyvault_settings(cfg, &kv);
    kv.secret_name = secret;
    if (kv_config_check(&kv, cause, cause_len) < 0)
        return -2;
    char *value = NULL;
    if (kv_fetch_secret(&kv, &value, cause, cause_len) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "Key Vault: %s", cause);
        snprintf(cause, cause_len, "%s", msg);
        return -1;
    }
    *out = strdup(value);
    kv_secret_free(value);
    if (!*out) {
        snprintf(cause, cause_len, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The URLs `migrate` needs: the application's (PAYTRACKR_DATABASE_URL or
 * the Key Vault secret) always, and the schema owner's when
 * PAYTRACKR_MIGRATE_DATABASE_URL or PAYTRACKR_MIGRATE_KEYVAULT_SECRET is
 * set. Returns 0, or keyvault_read's -2 or -1 with a cause.
 */
static int migrate_urls(struct config *cfg, char *cause, size_t cause_len)
{
    if (!cfg->migrate_database_url && cfg->migrate_keyvault_secret) {
        int rc = keyvault_read(cfg, cfg->migrate_keyvault_secret, &cfg->migrate_database_url, cause,
                               cause_len);
        if (rc < 0)
            return rc;
    }
    return keyvault_read(cfg, cfg->keyvault_secret, &cfg->database_url, cause, cause_len);
}

static int cmd_migrate(void)
{
    /* An interrupted migration rolls back (each runs in a transaction):
     * stop at once, with the status a shell gives a SIGTERM death. */
    install_signals(128 + SIGTERM);
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    char cause[512];
    struct logger lg = {.json = 1, .fd = 2};
    const char *fmt = getenv("PAYTRACKR_LOG_FORMAT");
    if (fmt && strcmp(fmt, "text") == 0)
        lg.json = 0;
    if (config_load_database(&cfg, cause, sizeof cause) < 0) {
        fprintf(stderr, "paytrackr-server: %s\n", cause);
        config_free(&cfg);
        return EXIT_CONFIG;
    }
    int url_rc = migrate_urls(&cfg, cause, sizeof cause);
    if (url_rc < 0) {
        fprintf(stderr, "paytrackr-server: %s%s\n", url_rc == -2 ? "" : "migrate: ", cause);
        config_free(&cfg);
        return url_rc == -2 ? EXIT_CONFIG : 1;
    }
    /* With an owner's URL, migrate connects as the owner and sets up the
     * application's login (cfg.database_url); otherwise it migrates as the
     * application's role, as before. */
    const char *connect_url =
        cfg.migrate_database_url ? cfg.migrate_database_url : cfg.database_url;
    /* An init container may start before the database accepts
     * connections: retry for up to a minute. */
    PGconn *conn = NULL;
    for (int attempt = 0; attempt < 30; attempt++) {
        /* The same CA file the server's own connections use, so that
         * sslmode=verify-full works here too. */
        const char *keys[] = {"dbname", cfg.db_sslrootcert ? "sslrootcert" : NULL, NULL};
        const char *vals[] = {connect_url, cfg.db_sslrootcert, NULL};
        conn = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(conn) == CONNECTION_OK)
            break;
        log_msg(&lg, LOG_WARN, "migrate: database not reachable yet: %s",
                strtok(PQerrorMessage(conn), "\n"));
        PQfinish(conn);
        conn = NULL;
        sleep(2);
    }
    if (!conn) {
        config_free(&cfg);
        fprintf(stderr, "paytrackr-server: migrate: database unreachable\n");
        return 1;
    }
    int n = migrate_apply(conn, &lg, cause, sizeof cause);
    if (n >= 0 && cfg.migrate_database_url) {
        if (migrate_app_login(conn, cfg.database_url, cause, sizeof cause) < 0)
            n = -1;
        else
            log_msg(&lg, LOG_INFO, "migrate: application login role is set up (paytrackr_app)");
    }
    PQfinish(conn);
    config_free(&cfg);
    if (n < 0) {
        fprintf(stderr, "paytrackr-server: migrate: %s\n", cause);
        return 1;
    }
    log_msg(&lg, LOG_INFO, "migrate: %d migration(s) applied, schema up to date", n);
    return 0;
}

static int cmd_healthcheck(void)
{
    char host[CONFIG_ADDR_MAX], cause[256];
    int port;
    const char *v = getenv("PAYTRACKR_ADMIN_LISTEN");
    if (config_parse_addr("PAYTRACKR_ADMIN_LISTEN", v && *v ? v : "0.0.0.0:9090", host, sizeof host,
                          &port, cause, sizeof cause) < 0) {
        fprintf(stderr, "paytrackr-server: %s\n", cause);
        return EXIT_CONFIG;
    }
    if (!bind_iface(host))
        snprintf(host, sizeof host, "127.0.0.1");
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0)
        return 1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int ok = 0;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
        char resp[64] = "";
        if (write(fd, req, sizeof req - 1) == (ssize_t) (sizeof req - 1) &&
            read(fd, resp, sizeof resp - 1) > 12)
            ok = strncmp(resp + 8, " 200", 4) == 0;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return ok ? 0 : 1;
}

static int cmd_hash_token(void)
{
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "paytrackr-server: hash-token: no token on stdin\n");
        return EXIT_CONFIG;
    }
    char hex[65];
    auth_sha256_hex(buf, n, hex);
    memset(buf, 0, sizeof buf);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    /* libcurl's global state, once, before any thread exists. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "serve") == 0)
        return serve();
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate();
    if (strcmp(cmd, "healthcheck") == 0)
        return cmd_healthcheck();
    if (strcmp(cmd, "hash-token") == 0)
        return cmd_hash_token();
    if (strcmp(cmd, "--version") == 0) {
        printf("paytrackr-server %s\n", PAYTRACKR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return EXIT_CONFIG;
}
