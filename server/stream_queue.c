/*
 * stream_queue.c - the stream's frames and each connection's bounded
 * outgoing queue (see stream_int.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stream_int.h"

/* ---- reference-counted frames --------------------------------------------- */

/* Allocates a message for `payload_len` bytes (refs 1); the payload goes at
 * *payload, then msg_seal(). NULL when out of memory. Any thread. */
static struct stream_msg *msg_alloc(size_t payload_len, unsigned char **payload)
{
    if (payload_len > UINT32_MAX - FRAME_HDR_MAX)
        return NULL;
    struct stream_msg *m = malloc(sizeof *m + LWS_PRE + FRAME_HDR_MAX + payload_len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->answer = false;
    *payload = m->data + LWS_PRE + FRAME_HDR_MAX;
    return m;
}

/* Writes the frame header in front of the payload (FIN, text opcode, the
 * server's frames are never masked). */
static void msg_seal(struct stream_msg *m, size_t payload_len)
{
    unsigned char *payload = m->data + LWS_PRE + FRAME_HDR_MAX;
    size_t hdr = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
    unsigned char *f = payload - hdr;
    f[0] = 0x81;
    if (hdr == 2) {
        f[1] = (unsigned char) payload_len;
    } else if (hdr == 4) {
        f[1] = 126;
        f[2] = (unsigned char) (payload_len >> 8);
        f[3] = (unsigned char) payload_len;
    } else {
        f[1] = 127;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (unsigned char) ((uint64_t) payload_len >> (56 - 8 * i));
    }
    m->frame = f;
    m->len = (uint32_t) (hdr + payload_len);
}

struct stream_msg *stream_msg_text(const char *text, size_t len)
{
    unsigned char *p;
    struct stream_msg *m = msg_alloc(len, &p);
    if (!m)
        return NULL;
    memcpy(p, text, len);
    msg_seal(m, len);
    return m;
}

static size_t put(unsigned char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

struct stream_msg *stream_msg_concat(const char *const parts[], const size_t lens[], int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] > UINT32_MAX - len)
            return NULL;
        len += lens[i];
    }
    unsigned char *p;
    struct stream_msg *m = msg_alloc(len, &p);
    if (!m)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += put(p + o, parts[i], lens[i]);
    msg_seal(m, o);
    return m;
}

void stream_msg_unref(struct stream_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* {"type":"event","event":TYPE,"seq":N,"at":AT,"actor":{...}|null,
 * "payment":{...}[,"refund":{...}]}. The strings come from our own table
 * (type is a CHECKed word, at a formatted timestamp, actor, payment and
 * refund JSON this server wrote), so no escaping is needed. `actor` and
 * `refund` may be NULL. Any thread. */
struct stream_msg *stream_msg_event(int64_t seq, const char *type, const char *at,
                                    const char *actor, const char *payment, size_t payment_len,
                                    const char *refund)
{
    char seqtext[24];
    int seqlen = snprintf(seqtext, sizeof seqtext, "%" PRId64, seq);
    static const char a[] = "{\"type\":\"event\",\"event\":\"",
                      b[] = "\",\"seq\":", c[] = ",\"at\":\"",
                      ac[] = "\",\"actor\":", d[] = ",\"payment\":", rf[] = ",\"refund\":";
    if (!actor)
        actor = "null";
    size_t tlen = strlen(type), atlen = strlen(at), aclen = strlen(actor);
    size_t rflen = refund ? strlen(refund) : 0;
    size_t len = (sizeof a - 1) + tlen + (sizeof b - 1) + (size_t) seqlen + (sizeof c - 1) + atlen +
                 (sizeof ac - 1) + aclen + (sizeof d - 1) + payment_len +
                 (refund ? sizeof rf - 1 + rflen : 0) + 1;
    unsigned char *p;
    struct stream_msg *m = msg_alloc(len, &p);
    if (!m)
        return NULL;
    size_t o = 0;
    o += put(p + o, a, sizeof a - 1);
    o += put(p + o, type, tlen);
    o += put(p + o, b, sizeof b - 1);
    o += put(p + o, seqtext, (size_t) seqlen);
    o += put(p + o, c, sizeof c - 1);
    o += put(p + o, at, atlen);
    o += put(p + o, ac, sizeof ac - 1);
    o += put(p + o, actor, aclen);
    o += put(p + o, d, sizeof d - 1);
    o += put(p + o, payment, payment_len);
    if (refund) {
        o += put(p + o, rf, sizeof rf - 1);
        o += put(p + o, refund, rflen);
    }
    p[o++] = '}';
    msg_seal(m, o);
    return m;
}

/* ---- the outgoing queue -------------------------------------------------------- */

void stream_queue_clear(struct stream_conn *c)
{
    while (c->q_count) {
        stream_msg_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_count--;
    }
    free(c->q);
    c->q = NULL;
    c->q_head = c->q_cap = 0;
    if (c->srv)
        c->srv->metrics.ws_queued_bytes -= c->q_bytes;
    c->q_bytes = 0;
    c->q_answer_bytes = 0;
}

bool stream_queue_over_budget(const struct stream_conn *c, size_t len)
{
    const struct server *srv = c->srv;
    return srv->metrics.ws_queued_bytes + len > srv->cfg.ws_queued_bytes_max;
}

/* Adds a reference to `m` at the tail (ring grown as needed, up to
 * PAYTRACKR_WS_QUEUE_MAX). Returns 0, or -1 when memory ran out. */
static int ring_add(struct stream_conn *c, struct stream_msg *m)
{
    uint32_t max = (uint32_t) c->srv->cfg.ws_queue_max;
    if (c->q_count == c->q_cap) {
        uint32_t ncap = c->q_cap ? c->q_cap * 2 : 8;
        if (ncap > max)
            ncap = max;
        struct stream_msg **nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return -1;
        for (uint32_t i = 0; i < c->q_count; i++)
            nq[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = nq;
        c->q_head = 0;
        c->q_cap = ncap;
    }
    m->refs++;
    c->q[(c->q_head + c->q_count) % c->q_cap] = m;
    c->q_count++;
    c->q_bytes += m->len;
    if (m->answer)
        c->q_answer_bytes += m->len;
    c->srv->metrics.ws_queued_bytes += m->len;
    if (c->q_count == 1)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Queues a reference to `m` (taking a new one). A queue over its lag
 * limits (messages, or bytes other than answers), or the process over its
 * budget, closes the connection with 4008 instead: the client resumes
 * with `after`. */
void stream_queue_push(struct stream_conn *c, struct stream_msg *m)
{
    if (c->close_code)
        return;
    if (c->q_count >= (uint32_t) c->srv->cfg.ws_queue_max ||
        c->q_bytes - c->q_answer_bytes + m->len > STREAM_QUEUE_BYTES_MAX ||
        stream_queue_over_budget(c, m->len)) {
        c->srv->metrics.ws_slow_closed++;
        stream_queue_close(c, STREAM_CLOSE_TOO_SLOW, true);
        return;
    }
    if (ring_add(c, m) < 0)
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
}

void stream_queue_push_answer(struct stream_conn *c, struct stream_msg *m)
{
    if (c->close_code) {
        stream_msg_unref(m);
        return;
    }
    m->answer = true;
    if (c->q_count >= (uint32_t) c->srv->cfg.ws_queue_max) {
        c->srv->metrics.ws_slow_closed++;
        stream_queue_close(c, STREAM_CLOSE_TOO_SLOW, true);
    } else if (ring_add(c, m) < 0) {
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
    }
    stream_msg_unref(m);
}

/* Queues a message made for this connection alone (takes it over). */
void stream_queue_push_own(struct stream_conn *c, struct stream_msg *m)
{
    if (!m) {
        stream_queue_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, true);
        return;
    }
    stream_queue_push(c, m);
    stream_msg_unref(m);
}

static struct stream_msg *queue_pop(struct stream_conn *c)
{
    struct stream_msg *m = c->q[c->q_head];
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_count--;
    c->q_bytes -= m->len;
    if (m->answer)
        c->q_answer_bytes -= m->len;
    c->srv->metrics.ws_queued_bytes -= m->len;
    if (c->q_count == 0) {
        c->q_head = 0;
        if (c->q_cap > 16) { /* an idle connection keeps a small ring */
            free(c->q);
            c->q = NULL;
            c->q_cap = 0;
        }
    }
    return m;
}

/* Writes queued frames, coalesced into one write of at most
 * STREAM_BATCH_BYTES (a longer frame goes alone). Service thread. Returns
 * 0 or -1 (the connection is broken). */
int stream_queue_write(struct stream_conn *c)
{
    if (!c->q_count)
        return 0;
    struct stream_msg *first = c->q[c->q_head];
    int rc;
    unsigned sent = 0;
    /* The coalescing buffer is the server's, allocated on first need and
     * freed at exit; only the service thread writes frames. Without it a
     * frame goes alone. */
    bool coalesce = c->q_count > 1 && first->len <= STREAM_BATCH_BYTES / 2;
    if (coalesce && !c->srv->stream_batch)
        c->srv->stream_batch = malloc(LWS_PRE + STREAM_BATCH_BYTES);
    if (!coalesce || !c->srv->stream_batch) {
        rc = lws_write(c->wsi, first->frame, first->len, LWS_WRITE_RAW) < (int) first->len;
        stream_msg_unref(queue_pop(c));
        sent = 1;
    } else {
        unsigned char *batch = c->srv->stream_batch;
        size_t used = 0;
        while (c->q_count && used + c->q[c->q_head]->len <= STREAM_BATCH_BYTES) {
            struct stream_msg *m = queue_pop(c);
            memcpy(batch + LWS_PRE + used, m->frame, m->len);
            used += m->len;
            stream_msg_unref(m);
            sent++;
        }
        rc = lws_write(c->wsi, batch + LWS_PRE, used, LWS_WRITE_RAW) < (int) used;
    }
    c->srv->metrics.ws_messages_out += sent;
    if (rc)
        return -1;
    if (c->q_count)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Marks the connection for closing with `code`; `drop` discards what is
 * queued (a subscriber that fell behind), else it is sent first. The close
 * itself happens in the writable callback, or by timeout when the peer
 * never reads again. */
void stream_queue_close(struct stream_conn *c, uint16_t code, bool drop)
{
    if (c->close_code)
        return;
    c->close_code = code;
    c->close_drop = drop;
    if (drop)
        stream_queue_clear(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, STREAM_CLOSE_GRACE_S);
    lws_callback_on_writable(c->wsi);
}
