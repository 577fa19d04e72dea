/*
 * store.c - SQL for payments, events, idempotency keys and stats.
 */
#include "store.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth.h"
#include "db_async.h"
#include "pgstmt.h"
#include "pjson.h"
#include "proto.h"
#include "validate.h"

/* Columns of a payment, in the order row_to_payment() reads them.
 * Timestamps are rendered in UTC with milliseconds, as the contract shows. */
#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
#define PAYMENT_COLUMNS                                                                  \
    "id::text, amount, currency, payer, payee, reference, description, method, status, " \
    "metadata::text, version, to_char(created_at AT TIME ZONE 'UTC', " TS_FMT "), "      \
    "to_char(updated_at AT TIME ZONE 'UTC', " TS_FMT "), amount_refunded"
#define PAYMENT_NCOLS 14
/* The cursor key, with microseconds so keyset comparisons are exact. */
#define CURSOR_COLUMN "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* ---- small helpers ---------------------------------------------------- */

static int exec_simple(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

static void rollback(PGconn *conn)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        exec_simple(conn, "ROLLBACK");
}

/* `status` with `text` (malloc'd, taken) as body; 500 when it is NULL
 * (out of memory). */
static void set_body(struct db_result *r, int status, char *text)
{
    if (!text) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    free(r->body);
    r->status = status;
    r->body = text;
}

static void set_body_json(struct db_result *r, int status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    set_body(r, status, text);
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return -1;
    *out = (int64_t) v;
    return 0;
}

static char *dup_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static int metadata_from_text(const char *text, pt_payment *p)
{
    cJSON *obj = cJSON_Parse(text);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return -1;
    }
    int n = cJSON_GetArraySize(obj);
    p->metadata = n ? calloc((size_t) n, sizeof *p->metadata) : NULL;
    if (n && !p->metadata) {
        cJSON_Delete(obj);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (!cJSON_IsString(it) || !it->string)
            break;
        p->metadata[p->metadata_count].key = strdup(it->string);
        p->metadata[p->metadata_count].value = strdup(it->valuestring);
        p->metadata_count++;
        if (!p->metadata[p->metadata_count - 1].key || !p->metadata[p->metadata_count - 1].value)
            break;
    }
    int ok = p->metadata_count == n;
    cJSON_Delete(obj);
    return ok ? 0 : -1;
}

/*
 * Reads a payment row (PAYMENT_COLUMNS starting at `col`). Rows are input
 * too: anything that does not fit the model is refused, not passed on.
 */
static int row_to_payment(PGresult *res, int row, int col, pt_payment *p)
{
    memset(p, 0, sizeof *p);
    const char *id = PQgetvalue(res, row, col);
    const char *cur = PQgetvalue(res, row, col + 2);
    if (strlen(id) != PT_ID_LEN || strlen(cur) != 3)
        return -1;
    memcpy(p->id, id, PT_ID_LEN + 1);
    memcpy(p->currency, cur, 4);
    if (parse_int64(PQgetvalue(res, row, col + 1), &p->amount) < 0 ||
        parse_int64(PQgetvalue(res, row, col + 10), &p->version) < 0)
        return -1;
    p->payer = dup_or_null(res, row, col + 3);
    p->payee = dup_or_null(res, row, col + 4);
    p->reference = dup_or_null(res, row, col + 5);
    p->description = dup_or_null(res, row, col + 6);
    if (!p->payer || !p->payee)
        return -1;
    if (!pt_method_parse(PQgetvalue(res, row, col + 7), &p->method) ||
        !pt_status_parse(PQgetvalue(res, row, col + 8), &p->status))
        return -1;
    if (metadata_from_text(PQgetvalue(res, row, col + 9), p) < 0)
        return -1;
    snprintf(p->created_at, sizeof p->created_at, "%s", PQgetvalue(res, row, col + 11));
    snprintf(p->updated_at, sizeof p->updated_at, "%s", PQgetvalue(res, row, col + 12));
    if (parse_int64(PQgetvalue(res, row, col + 13), &p->amount_refunded) < 0 ||
        p->amount_refunded < 0 || p->amount_refunded > p->amount)
        return -1;
    return 0;
}

static void set_etag(struct db_result *r, int64_t version)
{
    snprintf(r->etag, sizeof r->etag, "\"%" PRId64 "\"", version);
}

/* 200/201 with the payment as body and its ETag. Changes print it from
 * its cJSON tree: they are bound by their commit, not by this, and the
 * tree's printer is where tests/integration/hooks/fail_answer.c makes an
 * answer fail after the change was written. Reads use result_read. */
static void result_payment(struct db_result *r, int status, const pt_payment *p)
{
    set_body_json(r, status, pt_payment_to_json(p));
    if (r->status == status)
        set_etag(r, p->version);
}

/* 200 with the payment as body and its ETag, written straight as text
 * (the same bytes as result_payment's; no tree to allocate). */
static void result_read(struct db_result *r, const pt_payment *p)
{
    pt_text body = {0};
    pt_payment_write_json(&body, p);
    set_body(r, 200, pt_text_finish(&body));
    if (r->status == 200)
        set_etag(r, p->version);
}

static char *metadata_text(const pt_payment *p)
{
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; obj && i < p->metadata_count; i++)
        cJSON_AddStringToObject(obj, p->metadata[i].key, p->metadata[i].value);
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return text;
}

/*
 * Inserts the event for `p` (already written in this transaction) and
 * NOTIFYs listeners; the notification is delivered only if the transaction
 * commits. In the same statement it announces the seq it drew with a
 * transaction-scoped advisory lock on (seq >> 32, low 32 bits), so that
 * paytrackr_stream_bounds() holds readers back only at this seq while the
 * transaction commits (migration 0002, docs/stream.md). Insert the event
 * last, just before COMMIT: readers wait for it meanwhile. Returns 0 or -1
 * (the query failed; result filled).
 */
static int insert_event(PGconn *conn, struct db_result *r, const char *type, const pt_payment *p,
                        const char *actor, const char *refund)
{
    char *payment = NULL;
    cJSON *json = pt_payment_to_json(p);
    if (json)
        payment = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!payment) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return -1;
    }
    const char *params[6] = {type, p->id, p->updated_at, payment, actor, refund};
    PGresult *res = pgstmt_exec(
        conn,
        "WITH e AS (INSERT INTO payment_events (type, payment_id, at, payment, actor, refund) "
        "VALUES ($1, $2::uuid, $3::timestamptz, $4::json, $5::json, $6::json) RETURNING seq) "
        "SELECT pg_notify('" STORE_NOTIFY_CHANNEL "', seq::text), "
        "pg_advisory_xact_lock((seq >> 32)::int, ((seq << 32) >> 32)::int) FROM e",
        6, params);
    free(payment);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Runs a transaction-control statement ("BEGIN", "COMMIT"); a failure
 * becomes `r`'s answer. */
static int transaction_step(PGconn *conn, const char *sql, struct db_result *r)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    PQclear(res);
    return 0;
}

static int begin(PGconn *conn, struct db_result *r)
{
    return transaction_step(conn, "BEGIN", r);
}

static int commit(PGconn *conn, struct db_result *r)
{
    return transaction_step(conn, "COMMIT", r);
}

/* ---- create ------------------------------------------------------------ */

/* The advisory lock key for one caller's idempotency key: 64 bits of
 * SHA-256, so unrelated keys practically never share a lock. */
static void idempotency_lock_key(const struct store_idempotency *in, char out[24])
{
    unsigned char h[32];
    size_t cl = strlen(in->caller), kl = strlen(in->key);
    char *buf = malloc(cl + kl + 2);
    if (!buf) {
        snprintf(out, 24, "0");
        return;
    }
    memcpy(buf, in->caller, cl + 1);
    memcpy(buf + cl + 1, in->key, kl + 1);
    auth_sha256(buf, cl + kl + 2, h);
    free(buf);
    int64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = (int64_t) ((uint64_t) k << 8 | h[i]);
    snprintf(out, 24, "%" PRId64, k);
}

/*
 * With an Idempotency-Key: takes the key's advisory lock for this
 * transaction (another request holding it means "in progress": 409), then
 * looks for a stored answer. Returns 1 when `r` now holds the answer (a
 * replay, a reuse error, or a failure), 0 to go on and create.
 */
static int idempotency_check(PGconn *conn, const struct store_idempotency *in, struct db_result *r)
{
    char lock_key[24];
    idempotency_lock_key(in, lock_key);
    const char *lp[1] = {lock_key};
    PGresult *res = pgstmt_exec(conn, "SELECT pg_try_advisory_xact_lock($1::bigint)", 1, lp);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return 1;
    }
    int locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!locked) {
        db_result_error(r, 409, "idempotency_in_progress",
                        "a request with this Idempotency-Key is still being processed; retry",
                        NULL);
        return 1;
    }
    const char *params[2] = {in->caller, in->key};
    res = pgstmt_exec(conn,
                      "SELECT request_hash, status, body, location, etag FROM idempotency_keys "
                      "WHERE caller = $1 AND key = $2 "
                      "AND created_at > now() - interval '24 hours'",
                      2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return 1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    if (strcmp(PQgetvalue(res, 0, 0), in->request_hash) != 0) {
        PQclear(res);
        db_result_error(r, 422, "idempotency_key_reused",
                        "this Idempotency-Key was used for another request (a different body "
                        "or another route)",
                        NULL);
        return 1;
    }
    r->status = atoi(PQgetvalue(res, 0, 1));
    r->body = strdup(PQgetvalue(res, 0, 2));
    snprintf(r->location, sizeof r->location, "%s", PQgetvalue(res, 0, 3));
    snprintf(r->etag, sizeof r->etag, "%s", PQgetvalue(res, 0, 4));
    r->replayed = true;
    PQclear(res);
    if (!r->body)
        db_result_error(r, 500, "internal", "out of memory", NULL);
    return 1;
}

static int idempotency_store(PGconn *conn, const struct store_idempotency *in, struct db_result *r)
{
    char status[8];
    snprintf(status, sizeof status, "%d", r->status);
    const char *params[7] = {in->caller, in->key,     in->request_hash, status,
                             r->body,    r->location, r->etag};
    /* An expired row for the same key is replaced. */
    PGresult *res = pgstmt_exec(
        conn,
        "INSERT INTO idempotency_keys (caller, key, request_hash, status, body, location, etag) "
        "VALUES ($1, $2, $3, $4::int, $5, $6, $7) ON CONFLICT (caller, key) DO UPDATE SET "
        "request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, body = EXCLUDED.body, "
        "location = EXCLUDED.location, etag = EXCLUDED.etag, created_at = now()",
        7, params);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Reads the one payment a write RETURNed, and clears `res`. Returns 0, or
 * -1 with the result filled (the query failed, or the row did not fit). */
static int returned_payment(PGconn *conn, PGresult *res, pt_payment *out, struct db_result *r)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    int rc = row_to_payment(res, 0, 0, out);
    PQclear(res);
    if (rc < 0)
        db_result_error(r, 500, "internal", "stored payment could not be read back", NULL);
    return rc;
}

static int insert_payment(PGconn *conn, const char *id, const pt_payment *in, pt_payment *out,
                          struct db_result *r)
{
    char amount[24];
    snprintf(amount, sizeof amount, "%" PRId64, in->amount);
    char *meta = metadata_text(in);
    if (!meta) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return -1;
    }
    const char *params[10] = {id,
                              amount,
                              in->currency,
                              in->payer,
                              in->payee,
                              in->reference,
                              in->description,
                              pt_method_name(in->method),
                              pt_status_name(in->status),
                              meta};
    PGresult *res = pgstmt_exec(
        conn,
        "WITH t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts) "
        "INSERT INTO payments (id, amount, currency, payer, payee, reference, description, "
        "method, status, metadata, created_at, updated_at) "
        "SELECT $1::uuid, $2::bigint, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, t.ts, t.ts FROM t "
        "RETURNING " PAYMENT_COLUMNS,
        10, params);
    free(meta);
    return returned_payment(conn, res, out, r);
}

/* jsonb keeps an object's keys shorter first, then bytewise: the order
 * in which a stored payment's metadata reads back. */
static int jsonb_key_order(const void *a, const void *b)
{
    const pt_meta_entry *x = a, *y = b;
    size_t lx = strlen(x->key), ly = strlen(y->key);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return memcmp(x->key, y->key, lx);
}

/*
 * The created event's payment JSON up to (without) its timestamps: the
 * payment as it will read back (version 1, nothing refunded, metadata in
 * jsonb's order), with the closing brace cut off, for the statement to
 * append "created_at" and "updated_at" from the database's clock. The
 * members come out in pt_payment_to_json's order, which ends with those
 * two. Returns malloc'd text, or NULL when out of memory.
 */
static char *created_event_prefix(const char *id, const pt_payment *in)
{
    pt_payment p = *in; /* shallow: nothing of it is freed here */
    pt_meta_entry *sorted = NULL;
    if (in->metadata_count > 0) {
        sorted = malloc((size_t) in->metadata_count * sizeof *sorted);
        if (!sorted)
            return NULL;
        memcpy(sorted, in->metadata, (size_t) in->metadata_count * sizeof *sorted);
        qsort(sorted, (size_t) in->metadata_count, sizeof *sorted, jsonb_key_order);
        p.metadata = sorted;
    }
    snprintf(p.id, sizeof p.id, "%s", id);
    p.version = 1;
    p.amount_refunded = 0;
    cJSON *json = pt_payment_to_json(&p);
    free(sorted);
    if (json) {
        cJSON_DeleteItemFromObjectCaseSensitive(json, "created_at");
        cJSON_DeleteItemFromObjectCaseSensitive(json, "updated_at");
    }
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    size_t n = text ? strlen(text) : 0;
    if (n > 0 && text[n - 1] == '}')
        text[n - 1] = '\0';
    return text;
}

/*
 * A create without an Idempotency-Key in one statement, and so in one
 * round trip: run alone it is its own transaction. It inserts the payment
 * and then (reading the payment's rows, so the transaction has its xid
 * before it draws a seq, as paytrackr_stable_seq() needs) its event, whose
 * JSON is the prefix built here and the timestamps the database chose;
 * then NOTIFYs and announces the seq as insert_event() does. Returns 0 or
 * -1 (result filled).
 */
static int create_in_one_statement(PGconn *conn, const struct store_create *in, pt_payment *out,
                                   struct db_result *r)
{
    const pt_payment *pay = &in->payment;
    char amount[24];
    snprintf(amount, sizeof amount, "%" PRId64, pay->amount);
    char *meta = metadata_text(pay);
    char *prefix = created_event_prefix(in->id, pay);
    if (!meta || !prefix) {
        free(meta);
        free(prefix);
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return -1;
    }
    const char *params[13] = {in->id,
                              amount,
                              pay->currency,
                              pay->payer,
                              pay->payee,
                              pay->reference,
                              pay->description,
                              pt_method_name(pay->method),
                              pt_status_name(pay->status),
                              meta,
                              pt_event_name(PT_EVENT_CREATED),
                              prefix,
                              in->actor[0] ? in->actor : NULL};
    PGresult *res = pgstmt_exec(
        conn,
        "WITH t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts), "
        "p AS (INSERT INTO payments (id, amount, currency, payer, payee, reference, description, "
        "method, status, metadata, created_at, updated_at) "
        "SELECT $1::uuid, $2::bigint, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, t.ts, t.ts FROM t "
        "RETURNING *), "
        "e AS (INSERT INTO payment_events (type, payment_id, at, payment, actor) "
        "SELECT $11, p.id, p.updated_at, ($12 || ',\"created_at\":\"' || "
        "to_char(p.created_at AT TIME ZONE 'UTC', " TS_FMT ") || '\",\"updated_at\":\"' || "
        "to_char(p.updated_at AT TIME ZONE 'UTC', " TS_FMT ") || '\"}')::json, $13::json "
        "FROM p RETURNING seq) "
        "SELECT " PAYMENT_COLUMNS ", pg_notify('" STORE_NOTIFY_CHANNEL "', e.seq::text), "
        "pg_advisory_xact_lock((e.seq >> 32)::int, ((e.seq << 32) >> 32)::int) FROM p, e",
        13, params);
    free(meta);
    free(prefix);
    return returned_payment(conn, res, out, r);
}

/* A random (version 4) UUID in its text form. */
static int new_payment_id(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t) sizeof b)
        return -1;
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/*
 * The COMMIT of a create failed: whether it took effect is unknown when
 * the connection went away while committing (or the server shut the
 * backend down). The answer must not invite a retry that would record the
 * payment twice, so the pool reconnects and store_resolve_create looks.
 */
static bool commit_outcome_unknown(PGconn *conn, const struct db_result *r)
{
    return r->status == 503 || PQstatus(conn) != CONNECTION_OK;
}

/* A create without an Idempotency-Key: one statement, its own
 * transaction. A connection lost while it ran leaves the outcome unknown,
 * as a lost COMMIT does. */
static void run_create_alone(struct db_job *job, PGconn *conn, pt_payment *p)
{
    struct store_create *in = job->arg;
    struct db_result *r = &job->result;
    in->backend_pid = PQbackendPID(conn);
    if (create_in_one_statement(conn, in, p, r) < 0) {
        if (commit_outcome_unknown(conn, r))
            job->resolve = store_resolve_create;
        return;
    }
    result_payment(r, 201, p);
    if (r->status == 201)
        snprintf(r->location, sizeof r->location, "/v1/payments/%s", p->id);
}

void store_run_create(struct db_job *job, PGconn *conn)
{
    struct store_create *in = job->arg;
    struct db_result *r = &job->result;
    pt_payment p = {0};
    if (!in->id[0] && new_payment_id(in->id) < 0) {
        db_result_error(r, 500, "internal", "no random bytes for a payment id", NULL);
        return;
    }
    if (!in->idem.key) {
        run_create_alone(job, conn, &p);
        pt_payment_clear(&p);
        return;
    }
    if (begin(conn, r) < 0)
        return;
    if (idempotency_check(conn, &in->idem, r))
        goto done;
    if (insert_payment(conn, in->id, &in->payment, &p, r) < 0 ||
        insert_event(conn, r, pt_event_name(PT_EVENT_CREATED), &p, in->actor, NULL) < 0)
        goto done;
    result_payment(r, 201, &p);
    if (r->status != 201)
        goto done;
    snprintf(r->location, sizeof r->location, "/v1/payments/%s", p.id);
    if (in->idem.key && idempotency_store(conn, &in->idem, r) < 0)
        goto done;
    in->backend_pid = PQbackendPID(conn);
    if (commit(conn, r) < 0) {
        if (commit_outcome_unknown(conn, r))
            job->resolve = store_resolve_create;
        goto done;
    }
    pt_payment_clear(&p);
    return;
done:
    rollback(conn);
    pt_payment_clear(&p);
}

/* Whether backend `pid` still runs: 1, 0, or -1 when the query failed. */
static int backend_alive(PGconn *conn, int pid)
{
    char num[16];
    snprintf(num, sizeof num, "%d", pid);
    const char *params[1] = {num};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int", 1,
                                 NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
    PQclear(res);
    return rc;
}

/* The pool gave up reconnecting: say what is known, and how to find out
 * the rest, without inviting a retry. */
static void outcome_unknown(struct db_job *job)
{
    struct store_create *in = job->arg;
    struct db_result *r = &job->result;
    char msg[224];
    snprintf(msg, sizeof msg,
             "the database went away while recording payment %s, and whether it was recorded is "
             "not known yet: GET /v1/payments/%s before sending it again",
             in->id, in->id);
    db_result_error(r, 503, "unavailable", msg, NULL);
    r->retry_after = 0;
    snprintf(r->location, sizeof r->location, "/v1/payments/%s", in->id);
    job->resolve = NULL;
}

void store_resolve_create(struct db_job *job, PGconn *conn)
{
    struct store_create *in = job->arg;
    struct db_result *r = &job->result;
    if (!conn) {
        outcome_unknown(job);
        return;
    }
    /* A backend still finishing the COMMIT could make the row visible only
     * after the look-up: wait (briefly) until it is gone. After a restart
     * of the database it is gone at once. */
    for (int i = 0; i < 50; i++) {
        int alive = backend_alive(conn, in->backend_pid);
        if (alive < 0)
            return; /* lost again: the pool tries once more */
        if (!alive)
            break;
        if (i == 49)
            return;
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    }
    const char *params[1] = {in->id};
    PGresult *res = pgstmt_exec(
        conn, "SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1::uuid", 1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return;
    }
    job->resolve = NULL;
    if (PQntuples(res) == 0) {
        PQclear(res);
        /* Not committed: nothing was recorded, a retry is safe. */
        db_result_error(r, 503, "unavailable",
                        "the database went away before the payment was recorded; retry later",
                        NULL);
        return;
    }
    pt_payment p = {0};
    if (row_to_payment(res, 0, 0, &p) < 0) {
        PQclear(res);
        db_result_error(r, 500, "internal", "stored payment could not be read", NULL);
        return;
    }
    PQclear(res);
    /* It committed: the answer the client should have had. */
    result_payment(r, 201, &p);
    snprintf(r->location, sizeof r->location, "/v1/payments/%s", p.id);
    pt_payment_clear(&p);
}

void store_create_free(void *arg)
{
    struct store_create *in = arg;
    if (!in)
        return;
    free(in->idem.key);
    pt_payment_clear(&in->payment);
    free(in);
}

/* ---- get ----------------------------------------------------------------- */

static void not_found(struct db_result *r)
{
    db_result_error(r, 404, "not_found", "no payment with this id", NULL);
}

/* The payment of a one-row result: 1, 0 when there is no row (404 set),
 * -1 when the row does not fit the model (500 set). */
static int payment_from_rows(PGresult *res, pt_payment *p, struct db_result *r)
{
    if (PQntuples(res) == 0) {
        not_found(r);
        return 0;
    }
    if (row_to_payment(res, 0, 0, p) < 0) {
        db_result_error(r, 500, "internal", "stored payment could not be read", NULL);
        return -1;
    }
    return 1;
}

#define GET_SQL \
    "SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1::uuid AND deleted_at IS NULL"
static const char get_sql[] = GET_SQL;
static const char get_locked_sql[] = GET_SQL " FOR UPDATE";

/* Loads one live payment, optionally locking it. Returns 1 found, 0 not
 * found (404 set), -1 failed (result set). */
static int load_payment(PGconn *conn, const char *id, int lock, pt_payment *p, struct db_result *r)
{
    const char *params[1] = {id};
    PGresult *res = pgstmt_exec(conn, lock ? get_locked_sql : get_sql, 1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    int rc = payment_from_rows(res, p, r);
    PQclear(res);
    return rc;
}

static void answer_get(struct db_job *job, PGresult *res)
{
    pt_payment p = {0};
    if (payment_from_rows(res, &p, &job->result) == 1)
        result_read(&job->result, &p);
    pt_payment_clear(&p);
}

void store_run_get(struct db_job *job, PGconn *conn)
{
    struct store_get *in = job->arg;
    pt_payment p = {0};
    if (load_payment(conn, in->id, 0, &p, &job->result) == 1)
        result_read(&job->result, &p);
    pt_payment_clear(&p);
}

void store_get_statement(const struct store_get *in, struct db_async_stmt *st)
{
    st->sql = get_sql;
    st->nparams = 1;
    st->params[0] = in->id;
    st->answer = answer_get;
}

/* ---- patch and delete ------------------------------------------------- */

static int check_if_match(int64_t if_match, const pt_payment *p, struct db_result *r)
{
    if (if_match >= 0 && if_match != p->version) {
        char msg[128];
        snprintf(msg, sizeof msg, "the payment is at version %" PRId64 ", not %" PRId64, p->version,
                 if_match);
        db_result_error(r, 412, "version_mismatch", msg, NULL);
        return -1;
    }
    return 0;
}

static int update_payment(PGconn *conn, const pt_payment *np, pt_payment *out, struct db_result *r)
{
    char amount[24];
    snprintf(amount, sizeof amount, "%" PRId64, np->amount);
    char *meta = metadata_text(np);
    if (!meta) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return -1;
    }
    char refunded[24];
    snprintf(refunded, sizeof refunded, "%" PRId64, np->amount_refunded);
    const char *params[11] = {np->id,
                              amount,
                              np->currency,
                              np->payer,
                              np->payee,
                              np->reference,
                              np->description,
                              pt_method_name(np->method),
                              pt_status_name(np->status),
                              meta,
                              refunded};
    PGresult *res = pgstmt_exec(
        conn,
        "UPDATE payments SET amount = $2::bigint, currency = $3, payer = $4, payee = $5, "
        "reference = $6, description = $7, method = $8, status = $9, metadata = $10::jsonb, "
        "amount_refunded = $11::bigint, version = version + 1, "
        "updated_at = greatest(date_trunc('milliseconds', clock_timestamp()), updated_at) "
        "WHERE id = $1::uuid AND deleted_at IS NULL RETURNING " PAYMENT_COLUMNS,
        11, params);
    free(meta);
    return returned_payment(conn, res, out, r);
}

/* ---- refunds ------------------------------------------------------------- */

#define REFUND_COLUMNS                                                                           \
    "id::text, payment_id::text, amount::text, currency, reason, note, actor_name, actor_role, " \
    "to_char(created_at AT TIME ZONE 'UTC', " TS_FMT ")"

/* A refund row as the contract's JSON (caller owns), NULL when out of
 * memory. The row is this server's own writing, CHECKed by the schema. */
static cJSON *refund_from_row(PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *actor = cJSON_CreateObject();
    if (!o || !actor) {
        cJSON_Delete(o);
        cJSON_Delete(actor);
        return NULL;
    }
    cJSON_AddStringToObject(o, "id", PQgetvalue(res, row, 0));
    cJSON_AddStringToObject(o, "payment_id", PQgetvalue(res, row, 1));
    cJSON_AddItemToObject(o, "amount", cJSON_CreateRaw(PQgetvalue(res, row, 2)));
    cJSON_AddStringToObject(o, "currency", PQgetvalue(res, row, 3));
    cJSON_AddStringToObject(o, "reason", PQgetvalue(res, row, 4));
    if (PQgetisnull(res, row, 5))
        cJSON_AddNullToObject(o, "note");
    else
        cJSON_AddStringToObject(o, "note", PQgetvalue(res, row, 5));
    cJSON_AddStringToObject(actor, "name", PQgetvalue(res, row, 6));
    cJSON_AddStringToObject(actor, "role", PQgetvalue(res, row, 7));
    cJSON_AddItemToObject(o, "actor", actor);
    cJSON_AddStringToObject(o, "created_at", PQgetvalue(res, row, 8));
    return o;
}

/*
 * Records a refund of `amount` from `p` (locked, settled, with that much
 * left) in this transaction. Returns the refund's JSON text (malloc'd), or
 * NULL with the result filled.
 */
static char *insert_refund(PGconn *conn, const pt_payment *p, int64_t amount,
                           pt_refund_reason reason, const char *note, const char *actor_name,
                           const char *actor_role, struct db_result *r)
{
    char amt[24];
    snprintf(amt, sizeof amt, "%" PRId64, amount);
    const char *params[7] = {p->id, amt,        p->currency, pt_reason_name(reason),
                             note,  actor_name, actor_role};
    PGresult *res = pgstmt_exec(
        conn,
        "INSERT INTO refunds (payment_id, amount, currency, reason, note, actor_name, actor_role, "
        "created_at) VALUES ($1::uuid, $2::bigint, $3, $4, $5, $6, $7, "
        "date_trunc('milliseconds', clock_timestamp())) RETURNING " REFUND_COLUMNS,
        7, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        db_result_from_pg(r, conn, res);
        return NULL;
    }
    cJSON *json = refund_from_row(res, 0);
    PQclear(res);
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text)
        db_result_error(r, 500, "internal", "out of memory", NULL);
    return text;
}

/*
 * The refund itself, on `cur` (locked): the refund row, the payment's
 * amount_refunded (and status, when nothing is left) with a new version,
 * and one payment.updated event carrying the refund. Returns the refund's
 * JSON text (malloc'd) with *updated filled, or NULL with the result set.
 */
static char *apply_refund(PGconn *conn, pt_payment *cur, int64_t amount, pt_refund_reason reason,
                          const char *note, const char *actor_json, const char *actor_name,
                          const char *actor_role, pt_payment *updated, struct db_result *r)
{
    char *refund = insert_refund(conn, cur, amount, reason, note, actor_name, actor_role, r);
    if (!refund)
        return NULL;
    cur->amount_refunded += amount;
    if (cur->amount_refunded == cur->amount)
        cur->status = PT_STATUS_REFUNDED;
    if (update_payment(conn, cur, updated, r) < 0 ||
        insert_event(conn, r, pt_event_name(PT_EVENT_UPDATED), updated, actor_json, refund) < 0) {
        free(refund);
        return NULL;
    }
    return refund;
}

/* 409 unless `p` can be refunded (settled); 422 naming amount unless
 * `amount` (0: what is left) fits what is left. Sets *amount. */
static int check_refundable(const pt_payment *p, int64_t *amount, struct db_result *r)
{
    if (p->status != PT_STATUS_SETTLED) {
        char msg[128];
        snprintf(msg, sizeof msg, "only a settled payment can be refunded; this one is %s",
                 pt_status_name(p->status));
        db_result_error(r, 409, "invalid_transition", msg, "status");
        return -1;
    }
    int64_t left = p->amount - p->amount_refunded;
    if (*amount == 0)
        *amount = left;
    if (*amount < 1 || *amount > left) {
        char msg[128];
        snprintf(msg, sizeof msg, "amount must be an integer from 1 to %" PRId64 " (what is left)",
                 left);
        db_result_error(r, 422, "validation_failed", msg, "amount");
        return -1;
    }
    return 0;
}

void store_run_refund(struct db_job *job, PGconn *conn)
{
    struct store_refund *in = job->arg;
    struct db_result *r = &job->result;
    pt_payment cur = {0}, updated = {0};
    char *refund = NULL;
    if (begin(conn, r) < 0)
        return;
    if (in->idem.key && idempotency_check(conn, &in->idem, r))
        goto done;
    /* FOR UPDATE: concurrent refunds of one payment take turns, each
     * seeing what the one before it left. */
    if (load_payment(conn, in->id, 1, &cur, r) != 1 || check_if_match(in->if_match, &cur, r) < 0)
        goto done;
    int64_t amount = in->req.has_amount ? in->req.amount : 0;
    if (check_refundable(&cur, &amount, r) < 0)
        goto done;
    refund = apply_refund(conn, &cur, amount, in->req.reason, in->req.note, in->actor,
                          in->actor_name, in->actor_role, &updated, r);
    if (!refund)
        goto done;
    free(r->body);
    r->status = 201;
    r->body = refund;
    refund = NULL;
    /* the new refund's id is the body's first member */
    snprintf(r->location, sizeof r->location, "/v1/payments/%s/refunds/%.36s", cur.id, r->body + 7);
    if (in->idem.key && idempotency_store(conn, &in->idem, r) < 0)
        goto done;
    if (commit(conn, r) < 0)
        goto done;
    pt_payment_clear(&cur);
    pt_payment_clear(&updated);
    return;
done:
    rollback(conn);
    free(refund);
    pt_payment_clear(&cur);
    pt_payment_clear(&updated);
}

void store_run_refunds(struct db_job *job, PGconn *conn)
{
    struct store_get *in = job->arg;
    struct db_result *r = &job->result;
    pt_payment p = {0};
    int found = load_payment(conn, in->id, 0, &p, r);
    pt_payment_clear(&p);
    if (found != 1)
        return;
    const char *params[2] = {in->id, in->refund_id[0] ? in->refund_id : NULL};
    PGresult *res =
        pgstmt_exec(conn,
                    "SELECT " REFUND_COLUMNS " FROM refunds WHERE payment_id = $1::uuid "
                    "AND ($2::uuid IS NULL OR id = $2::uuid) "
                    "ORDER BY refunds.created_at, refunds.id",
                    2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    if (in->refund_id[0]) {
        if (PQntuples(res) == 1)
            set_body_json(r, 200, refund_from_row(res, 0));
        else
            db_result_error(r, 404, "not_found", "no refund with this id", NULL);
        PQclear(res);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(body, "data");
    for (int i = 0; data && i < PQntuples(res); i++)
        cJSON_AddItemToArray(data, refund_from_row(res, i));
    PQclear(res);
    set_body_json(r, 200, body);
}

void store_refund_free(void *arg)
{
    struct store_refund *in = arg;
    if (!in)
        return;
    free(in->idem.key);
    pt_refund_request_clear(&in->req);
    free(in);
}

/* ---- patch and delete, continued ---------------------------------------- */

void store_run_patch(struct db_job *job, PGconn *conn)
{
    struct store_change *in = job->arg;
    struct db_result *r = &job->result;
    pt_payment cur = {0}, updated = {0};
    if (begin(conn, r) < 0)
        return;
    if (load_payment(conn, in->id, 1, &cur, r) != 1 || check_if_match(in->if_match, &cur, r) < 0)
        goto done;
    int changed = 0;
    pt_problem problem;
    pt_status was = cur.status;
    if (pt_validate_apply(&cur, &in->patch, in->changes, &changed, &problem) < 0) {
        int status = strcmp(problem.code, "invalid_transition") == 0 ? 409 : 422;
        db_result_error(r, status, problem.code, problem.message,
                        problem.field[0] ? problem.field : NULL);
        goto done;
    }
    if (!changed) {
        /* Nothing differs: no new version, no event. */
        rollback(conn);
        result_payment(r, 200, &cur);
        pt_payment_clear(&cur);
        return;
    }
    if (was == PT_STATUS_SETTLED && cur.status == PT_STATUS_REFUNDED) {
        /* The v1 shortcut is a refund of what is left, reason other: the
         * same rows and event as POST .../refunds (with the PATCH's other
         * changes in the same new version). */
        cur.status = PT_STATUS_SETTLED;
        int64_t amount = 0;
        char *refund = check_refundable(&cur, &amount, r) < 0
                           ? NULL
                           : apply_refund(conn, &cur, amount, PT_REASON_OTHER, NULL, in->actor,
                                          in->actor_name, in->actor_role, &updated, r);
        if (!refund)
            goto done;
        free(refund);
    } else if (update_payment(conn, &cur, &updated, r) < 0 ||
               insert_event(conn, r, pt_event_name(PT_EVENT_UPDATED), &updated, in->actor, NULL) <
                   0) {
        goto done;
    }
    result_payment(r, 200, &updated);
    if (r->status != 200 || commit(conn, r) < 0)
        goto done; /* no answer to give: the change is not kept either */
    pt_payment_clear(&cur);
    pt_payment_clear(&updated);
    return;
done:
    rollback(conn);
    pt_payment_clear(&cur);
    pt_payment_clear(&updated);
}

void store_run_delete(struct db_job *job, PGconn *conn)
{
    struct store_change *in = job->arg;
    struct db_result *r = &job->result;
    pt_payment cur = {0}, deleted = {0};
    if (begin(conn, r) < 0)
        return;
    if (load_payment(conn, in->id, 1, &cur, r) != 1 || check_if_match(in->if_match, &cur, r) < 0)
        goto done;
    const char *params[1] = {in->id};
    PGresult *res = pgstmt_exec(
        conn,
        "UPDATE payments SET deleted_at = clock_timestamp(), version = version + 1, "
        "updated_at = greatest(date_trunc('milliseconds', clock_timestamp()), updated_at) "
        "WHERE id = $1::uuid AND deleted_at IS NULL RETURNING " PAYMENT_COLUMNS,
        1, params);
    if (returned_payment(conn, res, &deleted, r) < 0)
        goto done;
    if (insert_event(conn, r, pt_event_name(PT_EVENT_DELETED), &deleted, in->actor, NULL) < 0 ||
        commit(conn, r) < 0)
        goto done;
    r->status = 204;
    pt_payment_clear(&cur);
    pt_payment_clear(&deleted);
    return;
done:
    rollback(conn);
    pt_payment_clear(&cur);
    pt_payment_clear(&deleted);
}

void store_change_free(void *arg)
{
    struct store_change *in = arg;
    if (!in)
        return;
    pt_payment_clear(&in->patch);
    free(in);
}

/* ---- list ------------------------------------------------------------- */

/* Every filter is a parameter that is NULL when unused: one fixed SQL text
 * per order, and the planner folds the unused conditions away (unnamed
 * statements are planned with their actual values). */
#define LIST_WHERE                                                          \
    "WHERE deleted_at IS NULL "                                             \
    "AND ($1::text IS NULL OR status = $1) "                                \
    "AND ($2::text IS NULL OR currency = $2) "                              \
    "AND ($3::text IS NULL OR payer = $3) "                                 \
    "AND ($4::text IS NULL OR payee = $4) "                                 \
    "AND ($5::text IS NULL OR method = $5) "                                \
    "AND ($6::text IS NULL OR lower(payer || chr(1) || payee || chr(1) || " \
    "coalesce(reference, '')) LIKE lower($6)) "                             \
    "AND ($7::bigint IS NULL OR amount >= $7) "                             \
    "AND ($8::bigint IS NULL OR amount <= $8) "                             \
    "AND ($9::timestamptz IS NULL OR created_at >= $9) "                    \
    "AND ($10::timestamptz IS NULL OR created_at < $10) "

/* The list filters' values as the parameters of LIST_WHERE ($1..$10);
 * min/max are buffers of 24 bytes for the amount bounds' text. */
static void filter_params(const struct list_query *q, char *min, char *max, const char *params[10])
{
    snprintf(min, 24, "%" PRId64, q->min_amount);
    snprintf(max, 24, "%" PRId64, q->max_amount);
    params[0] = q->status;
    params[1] = q->currency;
    params[2] = q->payer;
    params[3] = q->payee;
    params[4] = q->method;
    params[5] = q->q_pattern;
    params[6] = q->has_min ? min : NULL;
    params[7] = q->has_max ? max : NULL;
    params[8] = q->created_gte[0] ? q->created_gte : NULL;
    params[9] = q->created_lt[0] ? q->created_lt : NULL;
}

static const char list_desc_sql[] =
    "SELECT " PAYMENT_COLUMNS ", " CURSOR_COLUMN " FROM payments " LIST_WHERE
    "AND ($11::timestamptz IS NULL OR (created_at, id) < ($11, $12::uuid)) "
    "ORDER BY payments.created_at DESC, payments.id DESC LIMIT $13";
static const char list_asc_sql[] =
    "SELECT " PAYMENT_COLUMNS ", " CURSOR_COLUMN " FROM payments " LIST_WHERE
    "AND ($11::timestamptz IS NULL OR (created_at, id) > ($11, $12::uuid)) "
    "ORDER BY payments.created_at ASC, payments.id ASC LIMIT $13";

/* The list's statement and parameters for a page of `limit` rows; the
 * numbers are formatted into `scratch` (3 buffers). */
static const char *list_statement(const struct list_query *q, int limit, char scratch[][32],
                                  const char *params[13])
{
    filter_params(q, scratch[0], scratch[1], params);
    snprintf(scratch[2], 32, "%d", limit);
    params[10] = q->has_cursor ? q->cursor_time : NULL;
    params[11] = q->has_cursor ? q->cursor_id : NULL;
    params[12] = scratch[2];
    return q->asc ? list_asc_sql : list_desc_sql;
}

/* A page of the list from its rows: one more than asked tells whether
 * another page exists. */
static void answer_list(struct db_job *job, PGresult *res)
{
    const struct list_query *q = job->arg;
    struct db_result *r = &job->result;
    int rows = PQntuples(res);
    int shown = rows > q->limit ? q->limit : rows;
    pt_text page = {0};
    pt_text_puts(&page, "{\"data\":[");
    for (int i = 0; i < shown; i++) {
        pt_payment p = {0};
        if (row_to_payment(res, i, 0, &p) < 0) {
            pt_payment_clear(&p);
            free(pt_text_finish(&page));
            db_result_error(r, 500, "internal", "stored payment could not be read", NULL);
            return;
        }
        if (i > 0)
            pt_text_put(&page, ",", 1);
        pt_payment_write_json(&page, &p);
        pt_payment_clear(&p);
    }
    pt_text_puts(&page, rows > q->limit ? "],\"has_more\":true,\"next_cursor\":"
                                        : "],\"has_more\":false,\"next_cursor\":");
    if (rows > q->limit && shown > 0) {
        char cursor[160];
        query_cursor_encode(q->asc, PQgetvalue(res, shown - 1, PAYMENT_NCOLS),
                            PQgetvalue(res, shown - 1, 0), cursor, sizeof cursor);
        pt_text_json_string(&page, cursor);
    } else {
        pt_text_puts(&page, "null");
    }
    pt_text_put(&page, "}", 1);
    set_body(r, 200, pt_text_finish(&page));
}

void store_run_list(struct db_job *job, PGconn *conn)
{
    const struct list_query *q = job->arg;
    char scratch[3][32];
    const char *params[13];
    const char *sql = list_statement(q, q->limit + 1, scratch, params);
    PGresult *res = pgstmt_exec(conn, sql, 13, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        db_result_from_pg(&job->result, conn, res);
    else
        answer_list(job, res);
    PQclear(res);
}

void store_list_statement(const struct list_query *q, struct db_async_stmt *st)
{
    st->sql = list_statement(q, q->limit + 1, st->scratch, st->params);
    st->nparams = 13;
    st->answer = answer_list;
}

int store_list_rows(PGconn *conn, const struct list_query *q, store_row_fn row, void *ctx,
                    struct db_result *r)
{
    char scratch[3][32];
    const char *params[13];
    const char *sql = list_statement(q, q->limit, scratch, params);
    PGresult *res = pgstmt_exec(conn, sql, 13, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    int rows = PQntuples(res), n = 0;
    for (int i = 0; i < rows; i++) {
        pt_payment p = {0};
        if (row_to_payment(res, i, 0, &p) < 0) {
            pt_payment_clear(&p);
            PQclear(res);
            db_result_error(r, 500, "internal", "stored payment could not be read", NULL);
            return -1;
        }
        int stop = row(ctx, &p, PQgetvalue(res, i, PAYMENT_NCOLS));
        pt_payment_clear(&p);
        if (stop < 0) {
            PQclear(res);
            db_result_error(r, 500, "internal", "out of memory", NULL);
            return -1;
        }
        n++;
        if (stop)
            break;
    }
    PQclear(res);
    return n;
}

void store_list_free(void *arg)
{
    struct list_query *q = arg;
    if (!q)
        return;
    query_free(q);
    free(q);
}

/* ---- events ------------------------------------------------------------- */

#define EVENT_COLUMNS                                                                           \
    "seq::text, type, to_char(at AT TIME ZONE 'UTC', " TS_FMT "), payment::text, actor::text, " \
    "refund::text"

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/*
 * {"data":[{"seq":…,"type":…,"at":…,"actor":…,"payment":{…}[,"refund":{…}]},…],
 * "next_after":N}, written straight from the rows (EVENT_COLUMNS) into one
 * buffer: the events are held once as rows and once as the body, never as
 * a tree in between. The texts come from our own table (a CHECKed type, a
 * formatted timestamp, actor, payment and refund JSON this server wrote):
 * no escaping is needed. The actor is null for events before v1.1, and
 * "refund" appears only on a refund's event.
 */
static void result_events(struct db_result *r, PGresult *res, const char *next_after)
{
    static const char head[] = "{\"data\":[",
                      tail[] = "],\"next_after\":", a[] = "{\"seq\":", b[] = ",\"type\":\"",
                      c[] = "\",\"at\":\"", ac[] = "\",\"actor\":", d[] = ",\"payment\":",
                      rf[] = ",\"refund\":", null[] = "null";
    int n = PQntuples(res);
    size_t len = sizeof head + sizeof tail + strlen(next_after) + 2;
    for (int i = 0; i < n; i++) {
        len += sizeof a + sizeof b + sizeof c + sizeof ac + sizeof d + sizeof rf + sizeof null + 2;
        for (int col = 0; col < 6; col++)
            len += (size_t) PQgetlength(res, i, col);
    }
    char *body = malloc(len);
    if (!body) {
        db_result_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    size_t o = put(body, head, sizeof head - 1);
    for (int i = 0; i < n; i++) {
        if (i)
            body[o++] = ',';
        o += put(body + o, a, sizeof a - 1);
        o += put(body + o, PQgetvalue(res, i, 0), (size_t) PQgetlength(res, i, 0));
        o += put(body + o, b, sizeof b - 1);
        o += put(body + o, PQgetvalue(res, i, 1), (size_t) PQgetlength(res, i, 1));
        o += put(body + o, c, sizeof c - 1);
        o += put(body + o, PQgetvalue(res, i, 2), (size_t) PQgetlength(res, i, 2));
        o += put(body + o, ac, sizeof ac - 1);
        if (PQgetisnull(res, i, 4))
            o += put(body + o, null, sizeof null - 1);
        else
            o += put(body + o, PQgetvalue(res, i, 4), (size_t) PQgetlength(res, i, 4));
        o += put(body + o, d, sizeof d - 1);
        o += put(body + o, PQgetvalue(res, i, 3), (size_t) PQgetlength(res, i, 3));
        if (!PQgetisnull(res, i, 5)) {
            o += put(body + o, rf, sizeof rf - 1);
            o += put(body + o, PQgetvalue(res, i, 5), (size_t) PQgetlength(res, i, 5));
        }
        body[o++] = '}';
    }
    o += put(body + o, tail, sizeof tail - 1);
    o += put(body + o, next_after, strlen(next_after));
    body[o++] = '}';
    body[o] = '\0';
    free(r->body);
    r->status = 200;
    r->body = body;
}

/* 1 when the payment ever had an event (it exists or existed), 0 when
 * not, -1 when the query failed (result filled). */
static int payment_has_events(PGconn *conn, const char *id, struct db_result *r)
{
    const char *params[1] = {id};
    PGresult *res = pgstmt_exec(
        conn, "SELECT EXISTS (SELECT 1 FROM payment_events WHERE payment_id = $1::uuid)", 1,
        params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    int yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return yes;
}

void store_run_payment_events(struct db_job *job, PGconn *conn)
{
    const struct store_events *in = job->arg;
    struct db_result *r = &job->result;
    char after[24], limit[16];
    snprintf(after, sizeof after, "%" PRId64, in->after);
    snprintf(limit, sizeof limit, "%d", in->limit);
    const char *params[3] = {in->id, after, limit};
    /* One payment's events commit in seq order (each change holds the
     * payment's row lock while it draws its seq), so no stable bound is
     * needed here, unlike the feed. */
    PGresult *res = pgstmt_exec(conn,
                                "SELECT " EVENT_COLUMNS " FROM payment_events "
                                "WHERE payment_id = $1::uuid AND seq > $2::bigint "
                                "ORDER BY payment_events.seq LIMIT $3::int",
                                3, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    int n = PQntuples(res);
    /* An empty page: of a payment that exists, or of no payment at all. */
    int known = n ? 1 : payment_has_events(conn, in->id, r);
    if (known == 0)
        not_found(r);
    else if (known == 1)
        result_events(r, res, n ? PQgetvalue(res, n - 1, 0) : after);
    PQclear(res);
}

void store_run_feed(struct db_job *job, PGconn *conn)
{
    const struct store_events *in = job->arg;
    struct db_result *r = &job->result;
    /* Serve only up to the stable seq, so a poller that resumes after the
     * last seq it saw can never miss one that commits later. */
    PGresult *res = PQexec(conn, "SELECT paytrackr_stable_seq()::text");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    char stable[24];
    snprintf(stable, sizeof stable, "%s", PQgetisnull(res, 0, 0) ? "0" : PQgetvalue(res, 0, 0));
    PQclear(res);
    char after[24], limit[16];
    snprintf(after, sizeof after, "%" PRId64, in->after);
    snprintf(limit, sizeof limit, "%d", in->limit);
    const char *params[3] = {after, stable, limit};
    res = pgstmt_exec(conn,
                      "SELECT " EVENT_COLUMNS " FROM payment_events "
                      "WHERE seq > $1::bigint AND seq <= $2::bigint "
                      "ORDER BY payment_events.seq LIMIT $3::int",
                      3, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    int n = PQntuples(res);
    result_events(r, res, n ? PQgetvalue(res, n - 1, 0) : after);
    PQclear(res);
}

int store_read_event_page(PGconn *conn, const struct store_event_page *in, store_event_fn fn,
                          void *ctx, struct db_result *r)
{
    char after[24], bound[24], limit[16];
    snprintf(after, sizeof after, "%" PRId64, in->after);
    snprintf(bound, sizeof bound, "%" PRId64, in->bound);
    snprintf(limit, sizeof limit, "%d", in->limit);
    const char *params[7] = {after, bound, in->status, in->currency, in->payer, in->payee, limit};
    /* ORDER BY payment_events.seq: a bare `seq` would sort by the text
     * output column ("10" < "9"). */
    PGresult *res = PQexecParams(
        conn,
        "SELECT seq::text, type, "
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payment::text, "
        "actor::text, refund::text FROM payment_events WHERE seq > $1::bigint AND seq <= "
        "$2::bigint "
        "AND ($3::text IS NULL OR payment->>'status' = $3) "
        "AND ($4::text IS NULL OR payment->>'currency' = $4) "
        "AND ($5::text IS NULL OR payment->>'payer' = $5) "
        "AND ($6::text IS NULL OR payment->>'payee' = $6) "
        "ORDER BY payment_events.seq LIMIT $7::int",
        7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return -1;
    }
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (fn(ctx, seq, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
               PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), PQgetvalue(res, i, 3),
               (size_t) PQgetlength(res, i, 3),
               PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5)) < 0) {
            PQclear(res);
            db_result_error(r, 500, "internal", "out of memory", NULL);
            return -1;
        }
    }
    PQclear(res);
    return rows;
}

/* ---- stats and ping ----------------------------------------------------- */

/* Totals for a filter (v1.1): count and sums per currency and status, and
 * the total count. Sums can pass 2^53: written as exact integer text. */
void store_run_stats(struct db_job *job, PGconn *conn)
{
    const struct list_query *q = job->arg;
    struct db_result *r = &job->result;
    char min[24], max[24];
    const char *params[10];
    filter_params(q, min, max, params);
    /* Only status and currency (or nothing): the running totals that the
     * writers keep (migration 0004) answer without reading the payments.
     * Any other filter reads the matching payments, planned for the
     * filters at hand (not prepared: a generic plan would serve none of
     * them well). */
    bool totals = !q->payer && !q->payee && !q->method && !q->q_pattern && !q->has_min &&
                  !q->has_max && !q->created_gte[0] && !q->created_lt[0];
    PGresult *res =
        totals ? pgstmt_exec(conn,
                             "SELECT currency, status, sum(count)::text, sum(amount)::text, "
                             "sum(amount_refunded)::text FROM payment_totals "
                             "WHERE ($1::text IS NULL OR status = $1) "
                             "AND ($2::text IS NULL OR currency = $2) "
                             "GROUP BY currency, status HAVING sum(count) > 0 "
                             "ORDER BY currency, status",
                             2, params)
               : PQexecParams(conn,
                              "SELECT currency, status, count(*)::text, sum(amount)::text, "
                              "sum(amount_refunded)::text FROM payments " LIST_WHERE
                              "GROUP BY currency, status ORDER BY currency, status",
                              10, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(r, conn, res);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *data = cJSON_CreateArray();
    int64_t total = 0;
    for (int i = 0; data && i < PQntuples(res); i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "currency", PQgetvalue(res, i, 0));
        cJSON_AddStringToObject(row, "status", PQgetvalue(res, i, 1));
        cJSON_AddItemToObject(row, "count", cJSON_CreateRaw(PQgetvalue(res, i, 2)));
        cJSON_AddItemToObject(row, "amount", cJSON_CreateRaw(PQgetvalue(res, i, 3)));
        cJSON_AddItemToObject(row, "amount_refunded", cJSON_CreateRaw(PQgetvalue(res, i, 4)));
        cJSON_AddItemToArray(data, row);
        total += strtoll(PQgetvalue(res, i, 2), NULL, 10);
    }
    PQclear(res);
    char count[24];
    snprintf(count, sizeof count, "%" PRId64, total);
    cJSON_AddItemToObject(body, "count", cJSON_CreateRaw(count));
    cJSON_AddItemToObject(body, "data", data);
    set_body_json(r, 200, body);
}

void store_run_ping(struct db_job *job, PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_result_from_pg(&job->result, conn, res);
        return;
    }
    PQclear(res);
    job->result.status = 200;
}

void store_run_expire_keys(struct db_job *job, PGconn *conn)
{
    struct store_expire *in = job->arg;
    char batch[16];
    snprintf(batch, sizeof batch, "%d", STORE_EXPIRE_BATCH);
    const char *params[1] = {batch};
    /* Kept 25 hours: a key is promised for 24. */
    PGresult *res = PQexecParams(
        conn,
        "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
        "WHERE created_at < now() - interval '25 hours' LIMIT $1::int)",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_result_from_pg(&job->result, conn, res);
        return;
    }
    in->deleted = atoi(PQcmdTuples(res));
    PQclear(res);
    job->result.status = 200;
}
