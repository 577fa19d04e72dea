/*
 * test-validate.c - the contract's field rules: create and PATCH bodies
 * field by field, and pt_validate_apply's pending-only fields, transitions
 * and "the same value is not a change".
 */
#include <stdlib.h>
#include <string.h>

#include "money.h"
#include "pjson.h"
#include "tap.h"
#include "utf8.h"
#include "validate.h"

/* The minimal valid body's members, in order. */
#define BASE_AMOUNT   "\"amount\":1250"
#define BASE_CURRENCY "\"currency\":\"EUR\""
#define BASE_PAYER    "\"payer\":\"ACME GmbH\""
#define BASE_PAYEE    "\"payee\":\"Globex Ltd\""

/* `unit` repeated n times, malloc'd. */
static char *repeat(const char *unit, int n)
{
    size_t len = strlen(unit);
    char *s = tap_xmalloc(len * (size_t) n + 1);

    for (int i = 0; i < n; i++)
        memcpy(s + len * (size_t) i, unit, len);
    s[len * (size_t) n] = '\0';
    return s;
}

/*
 * A body from member texts: amount, currency, payer, payee (NULL leaves
 * the member out) and `extra` members appended as given. malloc'd.
 */
static char *body(const char *amount, const char *currency, const char *payer, const char *payee,
                  const char *extra)
{
    const char *parts[] = {amount, currency, payer, payee, extra};
    size_t len = 3;
    char *s;

    for (size_t i = 0; i < 5; i++)
        len += parts[i] ? strlen(parts[i]) + 1 : 0;
    s = tap_xmalloc(len);
    strcpy(s, "{");
    for (size_t i = 0; i < 5; i++) {
        if (parts[i] == NULL || parts[i][0] == '\0')
            continue;
        if (s[1] != '\0')
            strcat(s, ",");
        strcat(s, parts[i]);
    }
    strcat(s, "}");
    return s;
}

/* The minimal valid body plus `extra` members. */
static char *base_with(const char *extra)
{
    return body(BASE_AMOUNT, BASE_CURRENCY, BASE_PAYER, BASE_PAYEE, extra);
}

/* Strictly parses then validates `json` as a create. -2 when the parser
 * already refused it. */
static int create_from(const char *json, pt_payment *out, pt_problem *pr)
{
    cJSON *tree = pt_json_parse_object(json, strlen(json), pr);
    int rc;

    memset(out, 0, sizeof *out);
    if (tree == NULL)
        return -2;
    rc = pt_validate_create(tree, json, strlen(json), out, pr);
    cJSON_Delete(tree);
    return rc;
}

static int patch_from(const char *json, pt_payment *out, unsigned *changes, pt_problem *pr)
{
    cJSON *tree = pt_json_parse_object(json, strlen(json), pr);
    int rc;

    memset(out, 0, sizeof *out);
    *changes = 0;
    if (tree == NULL)
        return -2;
    rc = pt_validate_patch(tree, json, strlen(json), out, changes, pr);
    cJSON_Delete(tree);
    return rc;
}

/* Checks that the (malloc'd) body is accepted as a create; frees it. */
static void create_ok(tap *t, char *json, const char *what)
{
    pt_payment p;
    pt_problem pr = {0};
    int rc = create_from(json, &p, &pr);

    if (!tap_ok(t, rc == 0, "create accepts %s", what))
        printf("#   %s: %s (%s)\n", pr.code ? pr.code : "?", pr.message, pr.field);
    pt_payment_clear(&p);
    free(json);
}

/* Checks that the (malloc'd) body is refused with this code and field. */
static void create_fails(tap *t, char *json, const char *code, const char *field, const char *what)
{
    pt_payment p;
    pt_problem pr = {0};
    int rc = create_from(json, &p, &pr);
    /* -2 is the parser's refusal, -1 the validator's: both are refusals,
     * told apart by the code. */
    bool good = rc < 0 && pr.code != NULL && strcmp(pr.code, code) == 0 &&
                strcmp(pr.field, field) == 0 && pr.message[0] != '\0';

    if (!tap_ok(t, good, "create refuses %s (%s, field \"%s\")", what, code, field))
        printf("#   rc %d: %s: %s (field \"%s\")\n", rc, pr.code ? pr.code : "(none)", pr.message,
               pr.field);
    pt_payment_clear(&p);
    free(json);
}

static void patch_fails(tap *t, const char *json, const char *code, const char *field)
{
    pt_payment p;
    pt_problem pr = {0};
    unsigned changes = 0;
    int rc = patch_from(json, &p, &changes, &pr);

    if (!tap_ok(t,
                rc == -1 && pr.code && strcmp(pr.code, code) == 0 && strcmp(pr.field, field) == 0,
                "patch refuses %s (%s, \"%s\")", json, code, field))
        printf("#   rc %d: %s: %s (field \"%s\")\n", rc, pr.code ? pr.code : "(none)", pr.message,
               pr.field);
    pt_payment_clear(&p);
}

static void test_create_fields(tap *t)
{
    pt_payment p;
    pt_problem pr = {0};
    char *json;

    /* Defaults and a full body. */
    json = base_with(NULL);
    tap_ok(t, create_from(json, &p, &pr) == 0, "minimal create is accepted");
    tap_is_i64(t, p.amount, 1250, "amount read");
    tap_is_str(t, p.currency, "EUR", "currency read");
    tap_is_str(t, p.payer, "ACME GmbH", "payer read");
    tap_is_str(t, p.payee, "Globex Ltd", "payee read");
    tap_ok(t, p.method == PT_METHOD_OTHER, "method defaults to other");
    tap_ok(t, p.status == PT_STATUS_PENDING, "status defaults to pending");
    tap_ok(t, p.reference == NULL && p.description == NULL, "optional text absent is NULL");
    tap_ok(t, p.metadata_count == 0 && p.metadata == NULL, "no metadata");
    pt_payment_clear(&p);
    free(json);

    json = base_with("\"reference\":\"INV-2026-0042\",\"description\":\"November invoice\","
                     "\"method\":\"bank_transfer\",\"status\":\"settled\","
                     "\"metadata\":{\"cost_center\":\"42\",\"a\":\"\\u00e9\"}");
    tap_ok(t, create_from(json, &p, &pr) == 0, "full create is accepted");
    tap_is_str(t, p.reference, "INV-2026-0042", "reference read");
    tap_is_str(t, p.description, "November invoice", "description read");
    tap_ok(t, p.method == PT_METHOD_BANK_TRANSFER, "method read");
    tap_ok(t, p.status == PT_STATUS_SETTLED, "create with status settled is allowed");
    tap_ok(t,
           p.metadata_count == 2 && strcmp(p.metadata[0].key, "cost_center") == 0 &&
               strcmp(p.metadata[1].value, "\xc3\xa9") == 0,
           "metadata read in input order");
    pt_payment_clear(&p);
    free(json);

    create_ok(t, base_with("\"reference\":null,\"description\":null,\"metadata\":null"),
              "null reference, description and metadata");
    create_ok(t, base_with("\"status\":\"pending\""), "status pending");
    create_ok(t, base_with("\"reference\":\"\""), "an empty reference");

    /* amount */
    create_ok(t, body("\"amount\":1", BASE_CURRENCY, BASE_PAYER, BASE_PAYEE, NULL), "amount 1");
    create_ok(t, body("\"amount\":999999999999999", BASE_CURRENCY, BASE_PAYER, BASE_PAYEE, NULL),
              "amount 999999999999999");
    {
        static const char *const bad[] = {
            "0",
            "-5",
            "-0",
            "1e3",
            "1E3",
            "12.0",
            "12.5",
            "1000000000000000",
            "99999999999999999999999999",
            "\"12\"",
            "null",
            "true",
            "[]",
            "{}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"amount\":%s", bad[i]);
            create_fails(t, body(member, BASE_CURRENCY, BASE_PAYER, BASE_PAYEE, NULL),
                         "validation_failed", "amount", member);
        }
    }
    create_fails(t, body(NULL, BASE_CURRENCY, BASE_PAYER, BASE_PAYEE, NULL), "validation_failed",
                 "amount", "a missing amount");

    /* amount literal known only from the raw text (a tree from cJSON_Parse) */
    {
        const char *raw = "{\"amount\":12.0,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\"}";
        const char *fine = "{\"amount\":12,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\"}";
        cJSON *tree = cJSON_Parse(raw);
        tap_ok(t,
               pt_validate_create(tree, raw, strlen(raw), &p, &pr) == -1 &&
                   strcmp(pr.field, "amount") == 0,
               "12.0 is refused through the raw text when cJSON parsed the tree");
        pt_payment_clear(&p);
        cJSON_Delete(tree);
        tree = cJSON_Parse(fine);
        tap_ok(t, pt_validate_create(tree, fine, strlen(fine), &p, &pr) == 0 && p.amount == 12,
               "12 is accepted through the raw text");
        pt_payment_clear(&p);
        cJSON_Delete(tree);
        tree =
            cJSON_Parse("{\"amount\":12.5,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\"}");
        tap_ok(t, pt_validate_create(tree, NULL, 0, &p, &pr) == -1,
               "12.5 is refused without raw text");
        pt_payment_clear(&p);
        cJSON_Delete(tree);
    }

    /* currency */
    create_ok(t, body(BASE_AMOUNT, "\"currency\":\"JPY\"", BASE_PAYER, BASE_PAYEE, NULL), "JPY");
    create_ok(t, body(BASE_AMOUNT, "\"currency\":\"KWD\"", BASE_PAYER, BASE_PAYEE, NULL), "KWD");
    {
        static const char *const bad[] = {"\"eur\"", "\"XXX\"", "\"DEM\"", "\"HRK\"",  "\"EURO\"",
                                          "\"\"",    "978",     "null",    "[\"EUR\"]"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"currency\":%s", bad[i]);
            create_fails(t, body(BASE_AMOUNT, member, BASE_PAYER, BASE_PAYEE, NULL),
                         "validation_failed", "currency", member);
        }
    }
    create_fails(t, body(BASE_AMOUNT, NULL, BASE_PAYER, BASE_PAYEE, NULL), "validation_failed",
                 "currency", "a missing currency");

    /* payer and payee: 1..200 code points, no controls */
    {
        char *u200 = repeat("\xc3\xbc", 200); /* 200 code points, 400 bytes */
        char *a201 = repeat("a", 201);
        char *member = NULL;
        free(member);
        member = tap_strdupf("\"payer\":\"%s\"", u200);
        create_ok(t, body(BASE_AMOUNT, BASE_CURRENCY, member, BASE_PAYEE, NULL),
                  "a payer of 200 two-byte characters");
        free(member);
        member = tap_strdupf("\"payee\":\"%s\"", a201);
        create_fails(t, body(BASE_AMOUNT, BASE_CURRENCY, BASE_PAYER, member, NULL),
                     "validation_failed", "payee", "a payee of 201 characters");
        free(member);
        free(u200);
        free(a201);
    }
    {
        static const char *const bad[] = {
            "\"\"",    "\"a\\tb\"", "\"a\\nb\"", "\"\\u0085x\"", "\"\\u007f\"",
            "\"   \"", "null",      "5",         "[\"a\"]",      "{}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"payer\":%s", bad[i]);
            create_fails(t, body(BASE_AMOUNT, BASE_CURRENCY, member, BASE_PAYEE, NULL),
                         "validation_failed", "payer", member);
            snprintf(member, sizeof member, "\"payee\":%s", bad[i]);
            create_fails(t, body(BASE_AMOUNT, BASE_CURRENCY, BASE_PAYER, member, NULL),
                         "validation_failed", "payee", member);
        }
    }
    create_fails(t, body(BASE_AMOUNT, BASE_CURRENCY, NULL, BASE_PAYEE, NULL), "validation_failed",
                 "payer", "a missing payer");
    create_fails(t, body(BASE_AMOUNT, BASE_CURRENCY, BASE_PAYER, NULL, NULL), "validation_failed",
                 "payee", "a missing payee");
    create_ok(t,
              body(BASE_AMOUNT, BASE_CURRENCY, "\"payer\":\"\\u65e5\\u672c \\ud83d\\ude00\"",
                   BASE_PAYEE, NULL),
              "a payer with CJK and an emoji");

    /* reference (max 100) and description (max 1000) */
    {
        char *r100 = repeat("r", 100);
        char *r101 = repeat("\xe2\x82\xac", 101);
        char *d1000 = repeat("d", 1000);
        char *d1001 = repeat("d", 1001);
        char *member = NULL;
        free(member);
        member = tap_strdupf("\"reference\":\"%s\"", r100);
        create_ok(t, base_with(member), "a reference of 100 characters");
        free(member);
        member = tap_strdupf("\"reference\":\"%s\"", r101);
        create_fails(t, base_with(member), "validation_failed", "reference",
                     "a reference of 101 characters");
        free(member);
        member = tap_strdupf("\"description\":\"%s\"", d1000);
        create_ok(t, base_with(member), "a description of 1000 characters");
        free(member);
        member = tap_strdupf("\"description\":\"%s\"", d1001);
        create_fails(t, base_with(member), "validation_failed", "description",
                     "a description of 1001 characters");
        free(member);
        free(r100);
        free(r101);
        free(d1000);
        free(d1001);
    }
    create_fails(t, base_with("\"reference\":5"), "validation_failed", "reference",
                 "a numeric reference");
    create_fails(t, base_with("\"reference\":\"a\\u0001\""), "validation_failed", "reference",
                 "a reference with a control character");
    create_ok(t, base_with("\"description\":\"line\\nbreak\\r\\n\\tindented\""),
              "a description with line breaks and a tab");
    create_fails(t, base_with("\"description\":\"bell\\u0007\""), "validation_failed",
                 "description", "a description with a control character other than layout");
    create_fails(t, base_with("\"description\":\"c1\\u0085\""), "validation_failed", "description",
                 "a description with a C1 control character");
    create_fails(t, base_with("\"reference\":\"two\\nlines\""), "validation_failed", "reference",
                 "a reference with a line break");
    create_fails(t, base_with("\"description\":false"), "validation_failed", "description",
                 "a boolean description");

    /* method */
    {
        static const char *const good[] = {"card", "bank_transfer", "cash", "wallet", "other"};
        for (size_t i = 0; i < 5; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"method\":\"%s\"", good[i]);
            create_ok(t, base_with(member), member);
        }
    }
    create_fails(t, base_with("\"method\":\"CARD\""), "validation_failed", "method", "CARD");
    create_fails(t, base_with("\"method\":\"crypto\""), "validation_failed", "method", "crypto");
    create_fails(t, base_with("\"method\":null"), "validation_failed", "method", "null method");
    create_fails(t, base_with("\"method\":1"), "validation_failed", "method", "numeric method");

    /* status on create: pending or settled only */
    create_fails(t, base_with("\"status\":\"failed\""), "validation_failed", "status",
                 "a new payment that failed");
    create_fails(t, base_with("\"status\":\"cancelled\""), "validation_failed", "status",
                 "a new cancelled payment");
    create_fails(t, base_with("\"status\":\"refunded\""), "validation_failed", "status",
                 "a new refunded payment");
    create_fails(t, base_with("\"status\":\"paid\""), "validation_failed", "status",
                 "an unknown status");
    create_fails(t, base_with("\"status\":null"), "validation_failed", "status", "null status");

    /* metadata */
    {
        char *member = NULL;
        char *k40 = repeat("k", 40);
        char *k41 = repeat("\xc3\xa9", 41);
        char *v500 = repeat("v", 500);
        char *v501 = repeat("v", 501);
        for (int keys = 20; keys <= 21; keys++) {
            char meta[512] = "\"metadata\":{";
            for (int i = 0; i < keys; i++)
                snprintf(meta + strlen(meta), sizeof meta - strlen(meta), "%s\"k%d\":\"v\"",
                         i ? "," : "", i);
            free(member);
            member = tap_strdupf("%s}", meta);
            if (keys == 20)
                create_ok(t, base_with(member), "metadata with 20 keys");
            else
                create_fails(t, base_with(member), "validation_failed", "metadata",
                             "metadata with 21 keys");
        }
        free(member);
        member = tap_strdupf("\"metadata\":{\"%s\":\"x\"}", k40);
        create_ok(t, base_with(member), "a metadata key of 40 characters");
        free(member);
        member = tap_strdupf("\"metadata\":{\"%s\":\"x\"}", k41);
        create_fails(t, base_with(member), "validation_failed", "metadata",
                     "a metadata key of 41 characters");
        free(member);
        member = tap_strdupf("\"metadata\":{\"k\":\"%s\"}", v500);
        create_ok(t, base_with(member), "a metadata value of 500 characters");
        free(member);
        member = tap_strdupf("\"metadata\":{\"k\":\"%s\"}", v501);
        create_fails(t, base_with(member), "validation_failed", "metadata",
                     "a metadata value of 501 characters");
        free(member);
        free(k40);
        free(k41);
        free(v500);
        free(v501);
    }
    {
        static const char *const bad[] = {
            "{\"k\":1}",
            "{\"k\":null}",
            "{\"k\":{}}",
            "{\"k\":true}",
            "{\"k\":[\"v\"]}",
            "{\"\":\"v\"}",
            "[]",
            "\"x\"",
            "5",
            "{\"a\\tb\":\"v\"}",
            "{\"k\":\"a\\u0000\"}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"metadata\":%s", bad[i]);
            /* \u0000 is the parser's to refuse; everything else the validator's */
            create_fails(t, base_with(member),
                         strstr(bad[i], "u0000") ? "malformed_json" : "validation_failed",
                         strstr(bad[i], "u0000") ? "" : "metadata", member);
        }
    }

    /* server-owned and unknown members */
    {
        static const char *const owned[] = {"id", "version", "created_at", "updated_at"};
        for (size_t i = 0; i < 4; i++) {
            char member[64];
            snprintf(member, sizeof member, "\"%s\":\"x\"", owned[i]);
            create_fails(t, base_with(member), "validation_failed", owned[i], member);
        }
    }
    create_fails(t, base_with("\"foo\":1"), "validation_failed", "foo", "an unknown field");
    create_fails(t, base_with("\"Amount\":1"), "validation_failed", "Amount",
                 "a field in the wrong case");
    create_fails(t, base_with("\"deleted\":false"), "validation_failed", "deleted",
                 "another unknown field");
    {
        /* A very long unknown name is reported, cut on a character boundary. */
        char *name = repeat("\xc3\xa9", 100);
        char *member = NULL;
        pt_problem lp = {0};
        free(member);
        member = tap_strdupf("\"%s\":1", name);
        json = base_with(member);
        tap_ok(t,
               create_from(json, &p, &lp) == -1 && strlen(lp.field) <= 63 &&
                   strlen(lp.field) >= 60 && pt_utf8_valid(lp.field, strlen(lp.field)) &&
                   pt_utf8_valid(lp.message, strlen(lp.message)),
               "a long unknown field name is cut to valid UTF-8");
        pt_payment_clear(&p);
        free(json);
        free(member);
        free(name);
    }

    /* The body itself. */
    {
        cJSON *arr = cJSON_CreateArray();
        tap_ok(t,
               pt_validate_create(arr, NULL, 0, &p, &pr) == -1 &&
                   strcmp(pr.code, "validation_failed") == 0,
               "a non-object body is refused");
        cJSON_Delete(arr);
        tap_ok(t, pt_validate_create(NULL, NULL, 0, &p, &pr) == -1, "a NULL body is refused");
        pt_payment_clear(&p);
    }
    {
        /* cJSON_Parse keeps duplicate keys; the validator still catches them. */
        const char *dup = "{\"amount\":1,\"amount\":2,\"currency\":\"EUR\",\"payer\":\"a\","
                          "\"payee\":\"b\"}";
        cJSON *tree = cJSON_Parse(dup);
        tap_ok(t,
               pt_validate_create(tree, NULL, 0, &p, &pr) == -1 && strcmp(pr.field, "amount") == 0,
               "a duplicate member in a lenient tree is refused");
        pt_payment_clear(&p);
        cJSON_Delete(tree);
    }
}

static void test_patch(tap *t)
{
    pt_payment p;
    pt_problem pr = {0};
    unsigned changes = 99;

    tap_ok(t, patch_from("{}", &p, &changes, &pr) == 0 && changes == 0,
           "an empty patch is a valid no-op");
    pt_payment_clear(&p);
    tap_ok(t,
           patch_from("{\"status\":\"refunded\"}", &p, &changes, &pr) == 0 &&
               changes == PT_CHANGE_STATUS && p.status == PT_STATUS_REFUNDED,
           "a patch may name any status (transitions are checked later)");
    pt_payment_clear(&p);
    tap_ok(t,
           patch_from("{\"reference\":null,\"metadata\":null}", &p, &changes, &pr) == 0 &&
               changes == (PT_CHANGE_REFERENCE | PT_CHANGE_METADATA) && p.reference == NULL &&
               p.metadata_count == 0,
           "null clears reference and metadata");
    pt_payment_clear(&p);
    tap_ok(t,
           patch_from("{\"amount\":5,\"currency\":\"JPY\",\"payer\":\"x\",\"payee\":\"y\","
                      "\"description\":\"d\",\"method\":\"cash\",\"metadata\":{\"a\":\"b\"}}",
                      &p, &changes, &pr) == 0 &&
               changes ==
                   (PT_CHANGE_AMOUNT | PT_CHANGE_CURRENCY | PT_CHANGE_PAYER | PT_CHANGE_PAYEE |
                    PT_CHANGE_DESCRIPTION | PT_CHANGE_METHOD | PT_CHANGE_METADATA) &&
               p.amount == 5 && strcmp(p.currency, "JPY") == 0 && p.method == PT_METHOD_CASH,
           "a patch of many fields reports each change bit");
    pt_payment_clear(&p);

    patch_fails(t, "{\"amount\":0}", "validation_failed", "amount");
    patch_fails(t, "{\"amount\":12.5}", "validation_failed", "amount");
    patch_fails(t, "{\"amount\":null}", "validation_failed", "amount");
    patch_fails(t, "{\"currency\":\"usd\"}", "validation_failed", "currency");
    patch_fails(t, "{\"payer\":null}", "validation_failed", "payer");
    patch_fails(t, "{\"payee\":\"\"}", "validation_failed", "payee");
    patch_fails(t, "{\"status\":\"bogus\"}", "validation_failed", "status");
    patch_fails(t, "{\"status\":null}", "validation_failed", "status");
    patch_fails(t, "{\"id\":\"7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11\"}", "validation_failed", "id");
    patch_fails(t, "{\"version\":2}", "validation_failed", "version");
    patch_fails(t, "{\"created_at\":\"2026-11-24T12:00:00.123Z\"}", "validation_failed",
                "created_at");
    patch_fails(t, "{\"updated_at\":null}", "validation_failed", "updated_at");
    patch_fails(t, "{\"colour\":\"red\"}", "validation_failed", "colour");
    patch_fails(t, "{\"metadata\":{\"k\":2}}", "validation_failed", "metadata");
}

/* A stored payment in the given status, for apply tests. */
static void stored(pt_payment *p, pt_status status)
{
    const char *json = "{\"amount\":1250,\"currency\":\"EUR\",\"payer\":\"ACME\",\"payee\":"
                       "\"Globex\",\"reference\":\"R1\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"}}";
    pt_problem pr;

    if (create_from(json, p, &pr) != 0)
        abort();
    p->status = status;
    p->version = 4;
    strcpy(p->id, "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11");
}

/*
 * Applies a PATCH body to a stored payment in `status`. Returns apply's
 * result; *changed and the problem come back; on failure also checks
 * that the payment was left exactly as it was.
 */
static int apply(tap *t, pt_status status, const char *json, int *changed, pt_problem *pr,
                 pt_payment *result)
{
    pt_payment cur;
    pt_payment before;
    pt_payment patch;
    unsigned changes = 0;
    int rc;

    stored(&cur, status);
    if (pt_payment_copy(&before, &cur) != 0 || patch_from(json, &patch, &changes, pr) != 0)
        abort();
    *changed = -1;
    rc = pt_validate_apply(&cur, &patch, changes, changed, pr);
    if (rc != 0)
        tap_ok(t, pt_payment_equal(&cur, &before), "a refused patch %s leaves the payment alone",
               json);
    pt_payment_clear(&before);
    pt_payment_clear(&patch);
    if (result)
        *result = cur;
    else
        pt_payment_clear(&cur);
    return rc;
}

static void test_apply(tap *t)
{
    pt_problem pr = {0};
    pt_payment r;
    int changed;

    tap_ok(t,
           apply(t, PT_STATUS_PENDING, "{\"amount\":999}", &changed, &pr, &r) == 0 &&
               changed == 1 && r.amount == 999 && r.version == 4,
           "pending: amount changes, version untouched");
    pt_payment_clear(&r);
    tap_ok(t,
           apply(t, PT_STATUS_PENDING, "{\"amount\":1250}", &changed, &pr, NULL) == 0 &&
               changed == 0,
           "the same amount is not a change");
    tap_ok(t, apply(t, PT_STATUS_PENDING, "{}", &changed, &pr, NULL) == 0 && changed == 0,
           "an empty patch changes nothing");
    tap_ok(
        t,
        apply(t, PT_STATUS_PENDING,
              "{\"amount\":1250,\"currency\":\"EUR\",\"payer\":\"ACME\",\"payee\":\"Globex\","
              "\"reference\":\"R1\",\"status\":\"pending\",\"metadata\":{\"b\":\"2\",\"a\":\"1\"}}",
              &changed, &pr, NULL) == 0 &&
            changed == 0,
        "every field at its current value (metadata reordered) is not a change");
    tap_ok(t,
           apply(t, PT_STATUS_PENDING, "{\"currency\":\"JPY\",\"payer\":\"New\",\"payee\":\"P\"}",
                 &changed, &pr, &r) == 0 &&
               changed == 1 && strcmp(r.currency, "JPY") == 0 && strcmp(r.payer, "New") == 0 &&
               strcmp(r.payee, "P") == 0,
           "pending: currency, payer and payee change");
    pt_payment_clear(&r);
    tap_ok(t,
           apply(t, PT_STATUS_PENDING, "{\"status\":\"settled\",\"amount\":7}", &changed, &pr,
                 &r) == 0 &&
               r.status == PT_STATUS_SETTLED && r.amount == 7,
           "pending: amount and settle in one patch");
    pt_payment_clear(&r);

    /* Pending-only fields once settled. */
    {
        static const char *const bodies[] = {"{\"amount\":1}", "{\"currency\":\"USD\"}",
                                             "{\"payer\":\"Other\"}", "{\"payee\":\"Other\"}"};
        static const char *const fields[] = {"amount", "currency", "payer", "payee"};
        for (int i = 0; i < 4; i++) {
            int rc = apply(t, PT_STATUS_SETTLED, bodies[i], &changed, &pr, NULL);
            tap_ok(t,
                   rc == -1 && strcmp(pr.code, "validation_failed") == 0 &&
                       strcmp(pr.field, fields[i]) == 0,
                   "settled: %s cannot change", fields[i]);
        }
    }
    tap_ok(t,
           apply(t, PT_STATUS_SETTLED, "{\"amount\":1250,\"payer\":\"ACME\"}", &changed, &pr,
                 NULL) == 0 &&
               changed == 0,
           "settled: sending the current amount and payer is allowed and no change");
    tap_ok(t,
           apply(t, PT_STATUS_SETTLED,
                 "{\"reference\":null,\"description\":\"d\",\"method\":\"card\","
                 "\"metadata\":{\"z\":\"9\"}}",
                 &changed, &pr, &r) == 0 &&
               changed == 1 && r.reference == NULL && strcmp(r.description, "d") == 0 &&
               r.method == PT_METHOD_CARD && r.metadata_count == 1 &&
               strcmp(r.metadata[0].key, "z") == 0,
           "settled: reference, description, method and metadata may change");
    pt_payment_clear(&r);
    tap_ok(t,
           apply(t, PT_STATUS_FAILED, "{\"amount\":5}", &changed, &pr, NULL) == -1 &&
               strcmp(pr.field, "amount") == 0,
           "failed: amount cannot change");

    /* Transitions. */
    {
        static const struct {
            pt_status from;
            const char *to;
            bool ok;
            int changed;
        } cases[] = {
            {PT_STATUS_PENDING, "settled", true, 1},     {PT_STATUS_PENDING, "failed", true, 1},
            {PT_STATUS_PENDING, "cancelled", true, 1},   {PT_STATUS_PENDING, "refunded", false, 0},
            {PT_STATUS_SETTLED, "refunded", true, 1},    {PT_STATUS_SETTLED, "pending", false, 0},
            {PT_STATUS_SETTLED, "failed", false, 0},     {PT_STATUS_FAILED, "settled", false, 0},
            {PT_STATUS_CANCELLED, "pending", false, 0},  {PT_STATUS_REFUNDED, "settled", false, 0},
            {PT_STATUS_REFUNDED, "refunded", true, 0},   {PT_STATUS_SETTLED, "settled", true, 0},
            {PT_STATUS_CANCELLED, "cancelled", true, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char json[64];
            int rc;
            snprintf(json, sizeof json, "{\"status\":\"%s\"}", cases[i].to);
            rc = apply(t, cases[i].from, json, &changed, &pr, NULL);
            if (cases[i].ok)
                tap_ok(t, rc == 0 && changed == cases[i].changed, "%s -> %s allowed (%s)",
                       pt_status_name(cases[i].from), cases[i].to,
                       cases[i].changed ? "a change" : "no change");
            else
                tap_ok(t,
                       rc == -1 && strcmp(pr.code, "invalid_transition") == 0 &&
                           strcmp(pr.field, "status") == 0,
                       "%s -> %s is invalid_transition", pt_status_name(cases[i].from),
                       cases[i].to);
        }
    }
}

static void test_single_fields(tap *t)
{
    pt_problem pr = {0};
    int64_t minor = -1;

    tap_ok(t, pt_validate_name("payer", "ok", &pr) == 0, "name ok");
    tap_ok(t, pt_validate_name("payer", NULL, &pr) == -1 && strcmp(pr.field, "payer") == 0,
           "NULL name refused naming the field");
    tap_ok(t, pt_validate_name("payee", "bad \xff", &pr) == -1 && strcmp(pr.field, "payee") == 0,
           "invalid UTF-8 name refused");
    tap_ok(t, pt_validate_optional_text("reference", NULL, 100, &pr) == 0, "NULL optional ok");
    tap_ok(t, pt_validate_optional_text("reference", "\xed\xa0\x80", 100, &pr) == -1,
           "surrogate bytes refused");
    tap_ok(t, pt_validate_currency("USD", &pr) == 0, "USD ok");
    tap_ok(t, pt_validate_currency("usd", &pr) == -1 && strstr(pr.message, "USD") != NULL,
           "usd refused with a hint: %s", pr.message);
    tap_ok(t, pt_validate_amount(PT_AMOUNT_MAX, &pr) == 0, "amount max ok");
    tap_ok(t, pt_validate_amount(PT_AMOUNT_MAX + 1, &pr) == -1, "amount max + 1 refused");
    tap_ok(t, pt_validate_amount(0, &pr) == -1 && strcmp(pr.field, "amount") == 0, "amount 0");

    tap_ok(t, pt_validate_amount_text("12.50", "EUR", &minor, &pr) == 0 && minor == 1250,
           "form 12.50 EUR is 1250");
    tap_ok(t, pt_validate_amount_text("1,000", "JPY", &minor, &pr) == 0 && minor == 1000,
           "form 1,000 JPY is 1000");
    tap_ok(t, pt_validate_amount_text("1.234", "KWD", &minor, &pr) == 0 && minor == 1234,
           "form 1.234 KWD is 1234");
    tap_ok(t, pt_validate_amount_text("1.2345", "CLF", &minor, &pr) == 0 && minor == 12345,
           "form 1.2345 CLF is 12345");
    tap_ok(t,
           pt_validate_amount_text("9,999,999,999,999.99", "EUR", &minor, &pr) == 0 &&
               minor == PT_AMOUNT_MAX,
           "form maximum");
    minor = -1;
    tap_ok(t,
           pt_validate_amount_text("12.505", "EUR", &minor, &pr) == -1 &&
               strcmp(pr.message, "EUR allows at most 2 decimals") == 0 && minor == -1,
           "form 12.505 EUR: \"%s\"", pr.message);
    tap_ok(t,
           pt_validate_amount_text("1.5", "JPY", &minor, &pr) == -1 &&
               strcmp(pr.message, "JPY allows no decimals") == 0,
           "form 1.5 JPY: \"%s\"", pr.message);
    tap_ok(t, pt_validate_amount_text("10,000,000,000,000", "EUR", &minor, &pr) == -1,
           "form amount over the maximum");
    tap_ok(t, pt_validate_amount_text("0.00", "EUR", &minor, &pr) == -1, "form zero");
    tap_ok(t, pt_validate_amount_text("-1", "EUR", &minor, &pr) == -1, "form negative");
    tap_ok(t, pt_validate_amount_text("", "EUR", &minor, &pr) == -1, "form empty");
    tap_ok(t, pt_validate_amount_text("1,00", "EUR", &minor, &pr) == -1, "form bad grouping");
    tap_ok(t,
           pt_validate_amount_text("12", "XYZ", &minor, &pr) == -1 &&
               strcmp(pr.field, "currency") == 0,
           "form with an unknown currency names currency");

    /* pt_problem_set cuts a long message without splitting a character. */
    {
        char *long_text = repeat("\xe2\x82\xac", 200);
        pt_problem_set(&pr, "validation_failed", "x", "%s", long_text);
        tap_ok(t,
               strlen(pr.message) < sizeof pr.message &&
                   pt_utf8_valid(pr.message, strlen(pr.message)),
               "a long message is cut on a character boundary");
        free(long_text);
        pt_problem_set(NULL, "validation_failed", "x", "ignored");
        tap_ok(t, true, "pt_problem_set accepts a NULL problem");
    }
}

int main(void)
{
    tap t = {0};

    test_create_fields(&t);
    test_patch(&t);
    test_apply(&t);
    test_single_fields(&t);
    return tap_done(&t);
}
