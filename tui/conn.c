/*
 * conn.c - the WebSocket to the server: connect, subscribe, resume, send.
 *
 * One client connection at a time to <prefix>/v1/stream with subprotocol
 * paytrackr.v1 and the token in the Authorization header. Outgoing
 * messages wait in a bounded FIFO and leave one per WRITEABLE callback.
 * Requests carry a request_id; the pending list maps the answer back to
 * what asked (kind + tag), and a dropped connection fails every pending
 * request with status 0 so nobody waits forever. When the connection
 * fails or closes, a timer retries with backoff, and the new subscription
 * resumes with `after` = the last seq the model saw. A host name is looked
 * up before each attempt on a thread of its own (resolve.c), and the
 * addresses it gives are tried in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "pjson.h"
#include "proto.h"
#include "tui.h"

#define QUEUE_MAX_MSGS  512
#define QUEUE_MAX_BYTES (8u << 20)
#define RX_MAX_BYTES    (32u << 20)
#define PENDING_MAX     1024

struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the text */
};

struct pending {
    struct pending *next;
    char id[24];
    enum req_kind kind;
    uint64_t tag;
};

static const uint32_t backoff_ms[] = {250, 500, 1000, 2000, 3000};

static const lws_retry_bo_t idle_policy = {
    .retry_ms_table = backoff_ms,
    .retry_ms_table_count = sizeof backoff_ms / sizeof backoff_ms[0],
    .conceal_count = 0,
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 70,
    .jitter_percent = 20,
};

static struct {
    struct lws_context *ctx;
    const struct args *args;
    struct lws *wsi;
    enum conn_state state;
    bool established;
    struct outmsg *qhead, *qtail;
    size_t qcount, qbytes;
    struct pending *pending;
    size_t npending;
    uint64_t next_id;
    lws_sorted_usec_list_t sul_retry;
    unsigned retries;
    int64_t retry_at;
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_overflow;
    char path[1024];
    char close_why[TUI_ERROR_MAX];
    char tls_why[96]; /* why OpenSSL refused the server's certificate */
    bool shutting_down;
    struct resolve_job *dns; /* the lookup in flight, or NULL */
    char addrs[RESOLVE_ADDRS_MAX][RESOLVE_ADDR_LEN];
    int naddrs, addr_i; /* the addresses of this attempt, and the one tried */
} c;

static int conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

const struct lws_protocols conn_protocol = {
    PT_PROTO_SUBPROTOCOL, conn_callback, 0, 64 * 1024, 0, NULL, 0,
};

const char *conn_state_name(enum conn_state s)
{
    switch (s) {
    case CONN_LIVE:
        return "LIVE";
    case CONN_CONNECTING:
        return "CONNECTING";
    case CONN_OFFLINE:
    default:
        return "OFFLINE";
    }
}

enum conn_state conn_state(void)
{
    return c.state;
}

int64_t conn_retry_in_ms(void)
{
    int64_t left;

    if (c.state != CONN_OFFLINE || c.retry_at == 0)
        return -1;
    left = c.retry_at - util_mono_ms();
    return left < 0 ? 0 : left;
}

static void set_state(enum conn_state s, const char *why)
{
    if (c.state == s && why == NULL)
        return;
    c.state = s;
    app_on_state(s, why);
}

/* Frees every queued message; they were never sent. */
static void queue_drop(void)
{
    while (c.qhead != NULL) {
        struct outmsg *m = c.qhead;

        c.qhead = m->next;
        free(m);
    }
    c.qtail = NULL;
    c.qcount = 0;
    c.qbytes = 0;
}

/* Queues text for sending; 0, or -1 when the queue is full. */
static int queue_text(const char *text)
{
    size_t len = strlen(text);
    struct outmsg *m;

    if (c.qcount >= QUEUE_MAX_MSGS || c.qbytes + len > QUEUE_MAX_BYTES)
        return -1;
    m = malloc(sizeof *m + LWS_PRE + len);
    if (m == NULL)
        return -1;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, text, len);
    if (c.qtail != NULL)
        c.qtail->next = m;
    else
        c.qhead = m;
    c.qtail = m;
    c.qcount++;
    c.qbytes += len;
    if (c.wsi != NULL)
        lws_callback_on_writable(c.wsi);
    return 0;
}

/* Fails every pending request with status 0 (the connection dropped). */
static void pending_fail_all(void)
{
    struct pending *list = c.pending;

    c.pending = NULL;
    c.npending = 0;
    while (list != NULL) {
        struct pending *p = list;

        list = p->next;
        app_on_result(p->kind, p->tag, 0, NULL);
        free(p);
    }
}

/* Removes and returns the pending request with this id, or NULL. */
static struct pending *pending_take(const char *id)
{
    struct pending **pp;

    if (id == NULL)
        return NULL;
    for (pp = &c.pending; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            struct pending *p = *pp;

            *pp = p->next;
            c.npending--;
            return p;
        }
    }
    return NULL;
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    (void) sul;
    c.retry_at = 0;
    conn_start();
}

/* The connection is gone: fail what waited, schedule the next attempt. */
static void conn_lost(const char *why)
{
    unsigned idx;
    uint32_t delay;

    c.wsi = NULL;
    c.established = false;
    queue_drop();
    free(c.rx);
    c.rx = NULL;
    c.rx_len = c.rx_cap = 0;
    c.rx_overflow = false;
    pending_fail_all();
    if (c.shutting_down)
        return;
    idx = c.retries < idle_policy.retry_ms_table_count ? c.retries
                                                       : idle_policy.retry_ms_table_count - 1u;
    delay = backoff_ms[idx];
    delay += (uint32_t) (rand() % (int) (delay / 5 + 1));
    c.retries++;
    c.retry_at = util_mono_ms() + delay;
    lws_sul_schedule(c.ctx, 0, &c.sul_retry, retry_cb, (lws_usec_t) delay * LWS_US_PER_MS);
    set_state(CONN_OFFLINE, why);
}

void conn_init(struct lws_context *ctx, const struct args *args)
{
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.args = args;
    c.state = CONN_OFFLINE;
    snprintf(c.path, sizeof c.path, "%s%s", args->prefix, PT_PROTO_STREAM_PATH);
}

/* Connects to c.addrs[c.addr_i]; the name stays the Host header, the SNI
 * and the name the certificate must carry. */
static void connect_addr(void)
{
    struct lws_client_connect_info i;

    memset(&i, 0, sizeof i);
    i.context = c.ctx;
    i.address = c.addrs[c.addr_i];
    i.port = c.args->port;
    i.path = c.path;
    i.host = c.args->host;
    i.origin = c.args->host;
    i.protocol = PT_PROTO_SUBPROTOCOL;
    i.local_protocol_name = PT_PROTO_SUBPROTOCOL;
    i.ssl_connection = c.args->tls ? LCCSCF_USE_SSL : 0;
    i.alpn = "http/1.1";
    i.retry_and_idle_policy = &idle_policy;
    i.pwsi = &c.wsi;
    set_state(CONN_CONNECTING, NULL);
    if (lws_client_connect_via_info(&i) == NULL && c.state == CONN_CONNECTING) {
        /* Failed before any callback could tell us. */
        c.wsi = NULL;
        conn_lost("cannot start a connection");
    }
}

void conn_start(void)
{
    if (c.wsi != NULL || c.dns != NULL || c.shutting_down)
        return;
    lws_sul_cancel(&c.sul_retry);
    c.retry_at = 0;
    c.close_why[0] = '\0';
    c.tls_why[0] = '\0';
    c.naddrs = c.addr_i = 0;
    if (resolve_is_numeric(c.args->host)) {
        snprintf(c.addrs[0], sizeof c.addrs[0], "%s", c.args->host);
        c.naddrs = 1;
        connect_addr();
        return;
    }
    set_state(CONN_CONNECTING, NULL);
    c.dns = resolve_start(c.ctx, c.args->host);
    if (c.dns == NULL)
        conn_lost("cannot start a name lookup");
}

/* The loop was woken: connects once the lookup in flight is done. */
static void dns_poll(void)
{
    char why[TUI_ERROR_MAX];

    if (c.dns == NULL || !resolve_take(c.dns, c.addrs, &c.naddrs, why, sizeof why))
        return;
    resolve_release(c.dns);
    c.dns = NULL;
    c.addr_i = 0;
    if (c.naddrs == 0)
        conn_lost(why);
    else
        connect_addr();
}

const char *conn_address(void)
{
    if (resolve_is_numeric(c.args->host))
        return c.args->host;
    return c.naddrs > 0 ? c.addrs[c.addr_i] : NULL;
}

void conn_shutdown(void)
{
    c.shutting_down = true;
    lws_sul_cancel(&c.sul_retry);
    resolve_release(c.dns);
    c.dns = NULL;
    queue_drop();
    /* Pending answers will never come; nobody is left to care. */
    while (c.pending != NULL) {
        struct pending *p = c.pending;

        c.pending = p->next;
        free(p);
    }
    c.npending = 0;
    free(c.rx);
    c.rx = NULL;
}

int conn_request(const char *type, cJSON *msg, enum req_kind kind, uint64_t tag)
{
    struct pending *p;
    char *text;
    int rc = -1;

    if (msg == NULL)
        return -1;
    if (c.wsi == NULL || !c.established || c.npending >= PENDING_MAX)
        goto out;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto out;
    snprintf(p->id, sizeof p->id, "t%llu", (unsigned long long) ++c.next_id);
    p->kind = kind;
    p->tag = tag;
    cJSON_DeleteItemFromObjectCaseSensitive(msg, "type");
    cJSON_DeleteItemFromObjectCaseSensitive(msg, "request_id");
    /* type and request_id first: easier to read in a capture */
    if (!cJSON_AddStringToObject(msg, "type", type) ||
        !cJSON_AddStringToObject(msg, "request_id", p->id)) {
        free(p);
        goto out;
    }
    text = cJSON_PrintUnformatted(msg);
    if (text == NULL || queue_text(text) != 0) {
        free(text);
        free(p);
        goto out;
    }
    free(text);
    p->next = c.pending;
    c.pending = p;
    c.npending++;
    rc = 0;
out:
    cJSON_Delete(msg);
    return rc;
}

/* Queues the subscribe message, resuming after the last seq seen. */
static int send_subscribe(void)
{
    cJSON *msg = cJSON_CreateObject();
    int64_t after = app_resume_after();
    char *text;
    int rc;

    if (msg == NULL)
        return -1;
    cJSON_AddStringToObject(msg, "type", "subscribe");
    if (after >= 0)
        cJSON_AddItemToObject(msg, "after", pt_json_int64(after));
    else
        cJSON_AddNullToObject(msg, "after");
    cJSON_AddItemToObject(msg, "filter", cJSON_CreateObject());
    text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text == NULL)
        return -1;
    rc = queue_text(text);
    free(text);
    return rc;
}

/* One complete text message from the server. */
static void handle_message(const char *text, size_t len)
{
    cJSON *msg = cJSON_ParseWithLength(text, len);
    const cJSON *type;

    if (msg == NULL || !cJSON_IsObject(msg)) {
        app_on_server_error("malformed_message", "the server sent something that is not JSON");
        cJSON_Delete(msg);
        return;
    }
    type = cJSON_GetObjectItemCaseSensitive(msg, "type");
    if (!cJSON_IsString(type)) {
        cJSON_Delete(msg);
        return;
    }
    if (strcmp(type->valuestring, "event") == 0) {
        app_on_event(msg);
    } else if (strcmp(type->valuestring, "result") == 0) {
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(msg, "request_id");
        struct pending *p = pending_take(cJSON_IsString(rid) ? rid->valuestring : NULL);
        int64_t status = 0;

        if (p != NULL) {
            pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(msg, "status"), &status);
            app_on_result(p->kind, p->tag, (int) status,
                          cJSON_GetObjectItemCaseSensitive(msg, "body"));
            free(p);
        }
    } else if (strcmp(type->valuestring, "subscribed") == 0) {
        int64_t head = -1;

        pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(msg, "head"), &head);
        c.retries = 0;
        set_state(CONN_LIVE, NULL);
        app_on_subscribed(head);
    } else if (strcmp(type->valuestring, "error") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(msg, "code");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(msg, "message");
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(msg, "request_id");
        struct pending *p = pending_take(cJSON_IsString(rid) ? rid->valuestring : NULL);
        const char *cs = cJSON_IsString(code) ? code->valuestring : "error";
        const char *ms = cJSON_IsString(message) ? message->valuestring : "";

        if (p != NULL) {
            /* An error about one request: answer it like a 400. */
            cJSON *body = cJSON_CreateObject();
            cJSON *err = cJSON_AddObjectToObject(body, "error");

            cJSON_AddStringToObject(err, "code", cs);
            cJSON_AddStringToObject(err, "message", ms);
            app_on_result(p->kind, p->tag, 400, body);
            cJSON_Delete(body);
            free(p);
        } else {
            app_on_server_error(cs, ms);
        }
    }
    cJSON_Delete(msg);
}

/* Appends received bytes to the message being assembled. */
static int rx_append(const void *in, size_t len)
{
    if (c.rx_overflow)
        return 0;
    if (c.rx_len + len + 1 > RX_MAX_BYTES) {
        c.rx_overflow = true;
        return 0;
    }
    if (c.rx_len + len + 1 > c.rx_cap) {
        size_t cap = c.rx_cap ? c.rx_cap : 16384;
        char *nb;

        while (cap < c.rx_len + len + 1)
            cap *= 2;
        nb = realloc(c.rx, cap);
        if (nb == NULL) {
            c.rx_overflow = true;
            return 0;
        }
        c.rx = nb;
        c.rx_cap = cap;
    }
    memcpy(c.rx + c.rx_len, in, len);
    c.rx_len += len;
    c.rx[c.rx_len] = '\0';
    return 0;
}

/* Adds "Authorization: Bearer <token>" to the upgrade request. */
static int add_auth_header(struct lws *wsi, void *in, size_t len)
{
    unsigned char **p = (unsigned char **) in, *end = (*p) + len;
    char value[4200];
    int n;

    if (c.args->token == NULL)
        return 0;
    n = snprintf(value, sizeof value, "Bearer %s", c.args->token);
    if (n < 0 || (size_t) n >= sizeof value)
        return -1;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *) value, n,
                                     p, end))
        return -1;
    memset(value, 0, sizeof value);
    return 0;
}

/* Explains a failed upgrade from the HTTP status, when there was one. */
static void describe_failure(struct lws *wsi, const char *in, char *buf, size_t cap)
{
    unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;

    if (status == 401)
        snprintf(buf, cap, "401 unauthenticated: the token was refused");
    else if (status == 403)
        snprintf(buf, cap, "403 forbidden: the token may not stream");
    else if (status == 404)
        snprintf(buf, cap, "404: no stream at %.120s (check --url)", c.path);
    else if (status == 503)
        snprintf(buf, cap, "503: the server is unavailable");
    else if (status >= 300)
        snprintf(buf, cap, "the server answered %u instead of upgrading", status);
    else if (c.args->tls && c.tls_why[0])
        snprintf(buf, cap, "TLS: certificate refused: %s (--ca-file for a private CA)", c.tls_why);
    else if (c.args->tls && in != NULL && (strstr(in, "SSL") || strstr(in, "certificate")))
        snprintf(buf, cap,
                 "TLS: the server's certificate was not accepted (--ca-file for a "
                 "private CA): %.100s",
                 in);
    else
        snprintf(buf, cap, "%s", in && in[0] ? in : "cannot connect");
}

static int conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    (void) user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (wsi != c.wsi)
            break;
        return add_auth_header(wsi, in, len);

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (wsi != c.wsi)
            return -1;
        c.established = true;
        c.rx_len = 0;
        c.rx_overflow = false;
        if (send_subscribe() != 0) {
            snprintf(c.close_why, sizeof c.close_why, "cannot queue the subscription");
            return -1;
        }
        app_dirty();
        break;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi != c.wsi)
            break;
        if (lws_frame_is_binary(wsi))
            break;
        rx_append(in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (c.rx_overflow)
                app_on_server_error("too_large", "a message from the server was too large");
            else if (c.rx_len > 0)
                handle_message(c.rx, c.rx_len);
            c.rx_len = 0;
            c.rx_overflow = false;
        }
        break;

    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        struct outmsg *m = c.qhead;

        if (wsi != c.wsi || m == NULL)
            break;
        if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int) m->len) {
            snprintf(c.close_why, sizeof c.close_why, "write to the server failed");
            return -1;
        }
        c.qhead = m->next;
        if (c.qhead == NULL)
            c.qtail = NULL;
        c.qcount--;
        c.qbytes -= m->len;
        free(m);
        if (c.qhead != NULL)
            lws_callback_on_writable(wsi);
        break;
    }

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (wsi == c.wsi && len >= 2) {
            const unsigned char *b = in;
            unsigned code = ((unsigned) b[0] << 8) | b[1];

            if (code == 4008)
                snprintf(c.close_why, sizeof c.close_why,
                         "the server dropped us for being slow (4008); resuming");
            else
                snprintf(c.close_why, sizeof c.close_why, "the server closed the stream (%u%s%.*s)",
                         code, len > 2 ? ": " : "", (int) (len > 2 ? len - 2 : 0),
                         (const char *) b + 2);
        }
        break;

    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* OpenSSL's verdict (len: preverify_ok), left as it is. lws reports
         * a refused certificate only as a failed handshake ("SSL err 1"),
         * so the reason (unknown issuer, host name mismatch) is kept here. */
        if (wsi == c.wsi && len == 0 && user != NULL && !c.tls_why[0])
            snprintf(
                c.tls_why, sizeof c.tls_why, "%s",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error((X509_STORE_CTX *) user)));
        break;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[TUI_ERROR_MAX];

        if (wsi != c.wsi && c.wsi != NULL)
            break;
        if (!c.shutting_down && c.addr_i + 1 < c.naddrs && !c.tls_why[0] &&
            (wsi == NULL || lws_http_client_http_response(wsi) == 0)) {
            /* not reached at this address: the name's next one, now */
            c.wsi = NULL;
            c.addr_i++;
            connect_addr();
            break;
        }
        describe_failure(wsi, in, why, sizeof why);
        conn_lost(why);
        break;
    }

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        dns_poll();
        break;

    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi != c.wsi)
            break;
        conn_lost(c.close_why[0] ? c.close_why : "the connection closed");
        break;

    default:
        break;
    }
    return 0;
}
