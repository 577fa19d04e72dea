/*
 * fuzz-wsmsg.c - libFuzzer target for client messages on the WebSocket
 * stream (GET /v1/stream, protocol paytrackr.v1).
 *
 * server/stream.c answers through the lws connection and the database
 * pool, so this target drives the pure functions its handler is made of,
 * on whole messages, the way the handler uses them:
 * - pt_json_parse_object on the message text;
 * - "type" dispatch and the request_id rule (a string of 1 to 200 bytes),
 *   mirrored here;
 * - subscribe: "after" (null or an int64 >= 0), and the filter through
 *   wsmsg_read_filter (server/wsmsg.c, stream.c's own code): an accepted
 *   filter holds only values its rules take, and is NULL when empty;
 * - create / update: the "payment" / "changes" object as the raw text the
 *   parser kept (pt_json_raw_object, what stream.c hands on), checked to
 *   parse to the member's own value, then through pt_json_parse_object
 *   and pt_validate_create / pt_validate_patch;
 *   "if_version" with pt_json_get_int64;
 * - list: the "query" through wsmsg_read_list_args (stream.c's own code),
 *   then the pairs through query_parse, as api_prepare_list does.
 *
 * Besides crashes and leaks (ASan, UBSan) it checks that every refusal
 * carries a problem, and that the canonical text of any member parses
 * back to the same canonical text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "payment.h"
#include "pjson.h"
#include "query.h"
#include "validate.h"
#include "wsmsg.h"

#define WSMSG_REQUEST_ID_MAX 200 /* stream.c REQUEST_ID_MAX */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Canonical text of `item`, checked to be a fixed point; caller frees. */
static char *canonical(const cJSON *item)
{
    pt_problem pr = {0};
    char *once = pt_json_canonical(item);
    char *twice;
    cJSON *again;

    if (once == NULL)
        abort();
    if (!cJSON_IsObject(item))
        return once;
    again = pt_json_parse_object(once, strlen(once), &pr);
    if (again == NULL)
        abort();
    twice = pt_json_canonical(again);
    if (twice == NULL || strcmp(once, twice) != 0)
        abort();
    free(twice);
    cJSON_Delete(again);
    return once;
}

/* query_parse over `n` pairs; a refusal must be a bad_request. */
static void parse_pairs(const char *const *keys, const char *const *values, int n)
{
    struct list_query q;
    pt_problem pr = {0};

    if (query_parse(keys, values, n, &q, &pr) != 0 &&
        (pr.code == NULL || strcmp(pr.code, "bad_request") != 0))
        abort();
    query_free(&q);
}

/* A field of an accepted filter: absent, or a value the rule for it
 * takes. */
static void check_filter_field(const char *value, int kind)
{
    pt_status st;
    size_t n;

    if (value == NULL)
        return;
    n = strlen(value);
    if ((kind == 0 && !pt_status_parse(value, &st)) ||
        (kind == 1 && pt_currency_find(value) == NULL) ||
        (kind == 2 && (n < 1 || n > WSMSG_FILTER_TEXT_MAX)))
        abort();
}

static void on_subscribe(const cJSON *root)
{
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(root, "after");
    struct stream_filter *f = NULL;
    const char *bad = NULL;
    int64_t from = -1;
    int rc;

    if (after && !cJSON_IsNull(after) && (!pt_json_get_int64(after, &from) || from < 0))
        return; /* bad_request */
    rc = wsmsg_read_filter(cJSON_GetObjectItemCaseSensitive(root, "filter"), &f, &bad);
    if (rc == -1 && (bad == NULL || f != NULL))
        abort(); /* a refusal says why and keeps nothing */
    if (rc != 0)
        return;
    if (f != NULL) {
        if (!f->status && !f->currency && !f->payer && !f->payee)
            abort(); /* an empty filter is "every event": NULL */
        check_filter_field(f->status, 0);
        check_filter_field(f->currency, 1);
        check_filter_field(f->payer, 2);
        check_filter_field(f->payee, 2);
    }
    wsmsg_filter_free(f);
}

/*
 * The body of create ("payment") or update ("changes"): the raw text the
 * parser kept (pt_json_raw_object), which stream.c hands on as the body.
 * It must be there for every object member, and parse to the same tree.
 */
static void on_body(const cJSON *root, const char *member, int create)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, member);
    pt_problem pr = {0};
    pt_payment p;
    unsigned changes = 0;
    const char *body;
    char *want, *got;
    cJSON *tree;
    int rc;

    if (!cJSON_IsObject(obj))
        return; /* bad_request */
    body = pt_json_raw_object(obj);
    if (body == NULL)
        abort(); /* every object member of the message keeps its text */
    tree = pt_json_parse_object(body, strlen(body), &pr);
    if (tree == NULL)
        abort(); /* the text of a parsed member always parses */
    want = canonical(obj);
    got = canonical(tree);
    if (strcmp(want, got) != 0)
        abort(); /* ...to the same value */
    free(want);
    free(got);
    pr.code = NULL;
    if (create)
        rc = pt_validate_create(tree, body, strlen(body), &p, &pr);
    else
        rc = pt_validate_patch(tree, body, strlen(body), &p, &changes, &pr);
    if (rc != 0 && pr.code == NULL)
        abort();
    pt_payment_clear(&p);
    cJSON_Delete(tree);
}

static void on_update(const cJSON *root)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "if_version");
    int64_t if_version = -1;

    if (!cJSON_IsString(id))
        return;
    if (ver && !cJSON_IsNull(ver) && (!pt_json_get_int64(ver, &if_version) || if_version < 0))
        return;
    (void) query_valid_uuid(id->valuestring);
    on_body(root, "changes", 0);
}

static void on_list(const cJSON *root)
{
    struct wsmsg_list_args args;
    const char *bad = NULL, *field = NULL;
    int rc =
        wsmsg_read_list_args(cJSON_GetObjectItemCaseSensitive(root, "query"), &args, &bad, &field);

    if (rc != 0) {
        if (bad == NULL)
            abort(); /* a refusal says why */
        return;
    }
    if (args.n < 0 || args.n > WSMSG_LIST_ARGS_MAX)
        abort();
    parse_pairs(args.keys, args.values, args.n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_problem pr = {0};
    cJSON *root = pt_json_parse_object((const char *) data, size, &pr);
    const cJSON *type;
    const cJSON *rid;
    const char *t;

    if (root == NULL) {
        if (pr.code == NULL ||
            (strcmp(pr.code, "malformed_json") != 0 && strcmp(pr.code, "internal") != 0))
            abort();
        return 0;
    }
    free(canonical(root));
    type = cJSON_GetObjectItemCaseSensitive(root, "type");
    rid = cJSON_GetObjectItemCaseSensitive(root, "request_id");
    t = cJSON_IsString(type) ? type->valuestring : NULL;
    if (t != NULL && strcmp(t, "subscribe") == 0) {
        on_subscribe(root);
    } else if (t != NULL &&
               (strcmp(t, "create") == 0 || strcmp(t, "update") == 0 || strcmp(t, "list") == 0)) {
        if (cJSON_IsString(rid) && rid->valuestring[0] &&
            strlen(rid->valuestring) <= WSMSG_REQUEST_ID_MAX) {
            if (t[0] == 'c')
                on_body(root, "payment", 1);
            else if (t[0] == 'u')
                on_update(root);
            else
                on_list(root);
        }
    }
    cJSON_Delete(root);
    return 0;
}
