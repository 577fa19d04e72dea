/*
 * test-pjson.c - payment <-> JSON, exact integers, error bodies, canonical
 * text, and the strict request parser's refusals.
 */
#include <stdlib.h>
#include <string.h>

#include "pjson.h"
#include "tap.h"
#include "validate.h"

/* The contract's example payment. */
static void example(pt_payment *p)
{
    memset(p, 0, sizeof *p);
    strcpy(p->id, "7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11");
    p->amount = 125000;
    strcpy(p->currency, "EUR");
    p->payer = strdup("ACME GmbH");
    p->payee = strdup("Globex Ltd");
    p->reference = strdup("INV-2026-0042");
    p->description = strdup("November invoice");
    p->method = PT_METHOD_BANK_TRANSFER;
    p->status = PT_STATUS_PENDING;
    p->metadata = calloc(1, sizeof *p->metadata);
    p->metadata_count = 1;
    p->metadata[0].key = strdup("cost_center");
    p->metadata[0].value = strdup("42");
    p->version = 1;
    strcpy(p->created_at, "2026-11-24T12:00:00.123Z");
    strcpy(p->updated_at, "2026-11-24T12:00:00.123Z");
}

/* Parses text strictly; true when it is refused as malformed_json. */
static bool refused(const char *text, size_t len)
{
    pt_problem pr = {0};
    cJSON *tree = pt_json_parse_object(text, len, &pr);

    if (tree != NULL) {
        cJSON_Delete(tree);
        return false;
    }
    return pr.code != NULL && strcmp(pr.code, "malformed_json") == 0 && pr.field[0] == '\0' &&
           pr.message[0] != '\0';
}

static void refuses(tap *t, const char *text, const char *what)
{
    tap_ok(t, refused(text, strlen(text)), "parser refuses %s", what);
}

static void accepts(tap *t, const char *text, const char *what)
{
    pt_problem pr = {0};
    cJSON *tree = pt_json_parse_object(text, strlen(text), &pr);

    if (!tap_ok(t, tree != NULL, "parser accepts %s", what))
        printf("#   %s\n", pr.message);
    cJSON_Delete(tree);
}

/* Canonical text of a strictly parsed document (malloc'd), or NULL. */
static char *canon_of(const char *text)
{
    cJSON *tree = pt_json_parse_object(text, strlen(text), NULL);
    char *c = tree ? pt_json_canonical(tree) : NULL;

    cJSON_Delete(tree);
    return c;
}

static void test_payment_json(tap *t)
{
    pt_payment p;
    pt_payment back;
    cJSON *obj;
    char *text;
    cJSON *parsed;

    example(&p);
    obj = pt_payment_to_json(&p);
    text = cJSON_PrintUnformatted(obj);
    tap_is_str(t, text,
               "{\"id\":\"7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11\",\"amount\":125000,"
               "\"currency\":\"EUR\",\"payer\":\"ACME GmbH\",\"payee\":\"Globex Ltd\","
               "\"reference\":\"INV-2026-0042\",\"description\":\"November invoice\","
               "\"method\":\"bank_transfer\",\"status\":\"pending\",\"amount_refunded\":0,"
               "\"metadata\":{\"cost_center\":\"42\"},\"version\":1,"
               "\"created_at\":\"2026-11-24T12:00:00.123Z\","
               "\"updated_at\":\"2026-11-24T12:00:00.123Z\"}",
               "the contract's example encodes exactly");
    tap_ok(t, pt_payment_from_json(obj, &back) == 0 && pt_payment_equal(&p, &back),
           "payment -> json tree -> payment is equal");
    pt_payment_clear(&back);

    /* Through text, as the TUI receives it. */
    parsed = cJSON_Parse(text);
    tap_ok(t, pt_payment_from_json(parsed, &back) == 0 && pt_payment_equal(&p, &back),
           "payment -> text -> cJSON_Parse -> payment is equal");
    pt_payment_clear(&back);
    cJSON_Delete(parsed);
    parsed = pt_json_parse_object(text, strlen(text), NULL);
    tap_ok(t, pt_payment_from_json(parsed, &back) == 0 && pt_payment_equal(&p, &back),
           "payment -> text -> strict parser -> payment is equal");
    pt_payment_clear(&back);
    cJSON_Delete(parsed);
    cJSON_free(text);
    cJSON_Delete(obj);

    /* Optional text absent, large amount and version, unicode. */
    free(p.reference);
    p.reference = NULL;
    free(p.description);
    p.description = NULL;
    free(p.payer);
    p.payer = strdup("M\xc3\xbcller \xe6\x97\xa5\xe6\x9c\xac \"quoted\" \\ back");
    p.amount = INT64_C(999999999999999);
    p.version = INT64_MAX;
    p.status = PT_STATUS_REFUNDED;
    obj = pt_payment_to_json(&p);
    text = cJSON_PrintUnformatted(obj);
    tap_ok(t, strstr(text, "\"reference\":null") && strstr(text, "\"description\":null"),
           "absent reference and description are null");
    tap_ok(t,
           strstr(text, "\"amount\":999999999999999") != NULL &&
               strstr(text, "\"version\":9223372036854775807") != NULL,
           "int64 written exactly: %s", strstr(text, "\"version\""));
    parsed = pt_json_parse_object(text, strlen(text), NULL);
    tap_ok(t, pt_payment_from_json(parsed, &back) == 0 && pt_payment_equal(&p, &back),
           "round trip keeps nulls, unicode, escapes and INT64_MAX exactly");
    pt_payment_clear(&back);
    cJSON_Delete(parsed);
    cJSON_free(text);
    cJSON_Delete(obj);
    pt_payment_clear(&p);

    /* Decoding refuses broken server output and leaves *out zeroed. */
    {
        static const char *const bad[] = {
            "{\"amount\":1,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\",\"method\":"
            "\"cash\",\"status\":\"pending\",\"version\":1,\"created_at\":\"x\",\"updated_at\":"
            "\"x\"}",
            "{\"id\":\"i\",\"amount\":1.5,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\","
            "\"method\":\"cash\",\"status\":\"pending\",\"version\":1,\"created_at\":\"x\","
            "\"updated_at\":\"x\"}",
            "{\"id\":\"i\",\"amount\":1,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\","
            "\"method\":\"cash\",\"status\":\"paid\",\"version\":1,\"created_at\":\"x\","
            "\"updated_at\":\"x\"}",
            "{\"id\":\"7f1c0c1e-3b0a-4c57-9d2e-2f7d6a1b9e11-too-long\",\"amount\":1,\"currency\":"
            "\"EUR\",\"payer\":\"a\",\"payee\":\"b\",\"method\":\"cash\",\"status\":\"pending\","
            "\"version\":1,\"created_at\":\"x\",\"updated_at\":\"x\"}",
            "{\"id\":\"i\",\"amount\":1,\"currency\":\"EUR\",\"payer\":\"a\",\"payee\":\"b\","
            "\"method\":\"cash\",\"status\":\"pending\",\"metadata\":{\"k\":1},\"version\":1,"
            "\"created_at\":\"x\",\"updated_at\":\"x\"}",
            "[]",
        };
        pt_payment zero = {0};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cJSON *tree = cJSON_Parse(bad[i]);
            tap_ok(t,
                   pt_payment_from_json(tree, &back) == -1 &&
                       memcmp(&back, &zero, sizeof back) == 0,
                   "from_json refuses bad server output %zu", i);
            cJSON_Delete(tree);
        }
    }
}

static void test_int64(tap *t)
{
    static const int64_t values[] = {0, 1, -1, 999999999999999, INT64_MAX, INT64_MIN};
    int64_t v = 0;

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cJSON *item = pt_json_int64(values[i]);
        tap_ok(t, pt_json_get_int64(item, &v) && v == values[i], "int64 %" PRId64 " round trip",
               values[i]);
        cJSON_Delete(item);
    }
    {
        cJSON *tree = pt_json_parse_object(
            "{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"over\":"
            "9223372036854775808,\"big\":9007199254740993,\"frac\":1.5,\"exp\":1e3,\"dec\":12.0,"
            "\"str\":\"12\",\"neg0\":-0}",
            strlen("{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"over\":"
                   "9223372036854775808,\"big\":9007199254740993,\"frac\":1.5,\"exp\":1e3,"
                   "\"dec\":12.0,\"str\":\"12\",\"neg0\":-0}"),
            NULL);
        tap_ok(t, tree != NULL, "parsed the integer sample");
        tap_ok(t, pt_json_get_int64(cJSON_GetObjectItem(tree, "max"), &v) && v == INT64_MAX,
               "literal INT64_MAX read exactly");
        tap_ok(t, pt_json_get_int64(cJSON_GetObjectItem(tree, "min"), &v) && v == INT64_MIN,
               "literal INT64_MIN read exactly");
        tap_ok(t, !pt_json_get_int64(cJSON_GetObjectItem(tree, "over"), &v),
               "INT64_MAX + 1 refused");
        tap_ok(t,
               pt_json_get_int64(cJSON_GetObjectItem(tree, "big"), &v) &&
                   v == INT64_C(9007199254740993),
               "2^53 + 1 read exactly from its literal");
        tap_ok(t, !pt_json_get_int64(cJSON_GetObjectItem(tree, "frac"), &v), "1.5 refused");
        tap_ok(t, !pt_json_get_int64(cJSON_GetObjectItem(tree, "exp"), &v),
               "1e3 refused (not written as an integer)");
        tap_ok(t, !pt_json_get_int64(cJSON_GetObjectItem(tree, "dec"), &v), "12.0 refused");
        tap_ok(t, !pt_json_get_int64(cJSON_GetObjectItem(tree, "str"), &v), "a string refused");
        tap_ok(t, pt_json_get_int64(cJSON_GetObjectItem(tree, "neg0"), &v) && v == 0,
               "-0 reads as 0");
        tap_is_str(t, pt_json_number_literal(cJSON_GetObjectItem(tree, "dec")), "12.0",
                   "the literal is kept");
        {
            cJSON *copy = cJSON_Duplicate(tree, 1);
            tap_is_str(t, pt_json_number_literal(cJSON_GetObjectItem(copy, "exp")), "1e3",
                       "cJSON_Duplicate keeps the literal");
            cJSON_Delete(copy);
        }
        cJSON_Delete(tree);
    }
    {
        cJSON *d = cJSON_CreateNumber(9007199254740994.0);
        tap_ok(t, !pt_json_get_int64(d, &v), "a double beyond 2^53 without literal is refused");
        cJSON_Delete(d);
        d = cJSON_CreateNumber(42.0);
        tap_ok(t, pt_json_get_int64(d, &v) && v == 42, "a plain double 42 is read");
        tap_ok(t, pt_json_number_literal(d) == NULL, "cJSON's own numbers have no literal");
        cJSON_Delete(d);
        tap_ok(t, !pt_json_get_int64(NULL, &v), "NULL refused");
    }
}

static void test_error_body(tap *t)
{
    char *b = pt_error_body("validation_failed", "amount must be a positive integer", "amount");
    tap_is_str(t, b,
               "{\"error\":{\"code\":\"validation_failed\",\"message\":\"amount must be a positive "
               "integer\",\"field\":\"amount\"}}",
               "error body with field");
    free(b);
    b = pt_error_body("not_found", "no such payment", NULL);
    tap_is_str(t, b, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such payment\"}}",
               "error body without field (NULL)");
    free(b);
    b = pt_error_body("malformed_json", "bad \"quote\"\n", "");
    tap_is_str(t, b,
               "{\"error\":{\"code\":\"malformed_json\",\"message\":\"bad \\\"quote\\\"\\n\"}}",
               "error body without field (\"\") and escaped message");
    free(b);
}

static void test_canonical(tap *t)
{
    char *a = canon_of("{\"b\":1,\"a\":[1,{\"d\":null,\"c\":true}],\"B\":false}");
    char *b;

    tap_is_str(t, a, "{\"B\":false,\"a\":[1,{\"c\":true,\"d\":null}],\"b\":1}",
               "keys sorted by bytes, recursively, no white space");
    free(a);
    a = canon_of("{\"amount\":1250,\"currency\":\"EUR\",\"payer\":\"A\",\"payee\":\"B\","
                 "\"metadata\":{\"x\":\"1\",\"y\":\"2\"}}");
    b = canon_of(" {\n  \"metadata\" : { \"y\":\"2\", \"x\" : \"1\" },\r\n\t\"payee\":\"B\","
                 "\"payer\":\"A\", \"currency\":\"EUR\",\"amount\": 1250 } ");
    tap_is_str(t, a, b, "same body in another order and spacing is the same text");
    free(b);
    b = canon_of("{\"amount\":1251,\"currency\":\"EUR\",\"payer\":\"A\",\"payee\":\"B\","
                 "\"metadata\":{\"x\":\"1\",\"y\":\"2\"}}");
    tap_ok(t, a && b && strcmp(a, b) != 0, "a different amount is different text");
    free(a);
    free(b);
    a = canon_of("{\"s\":\"\\u00e9\\/\\u0041\\ud83d\\ude00\"}");
    b = canon_of("{\"s\":\"\xc3\xa9/A\xf0\x9f\x98\x80\"}");
    tap_is_str(t, a, b, "escaped and raw spellings of a string are the same");
    free(a);
    free(b);
    a = canon_of("{\"n\":1.0,\"m\":-0,\"e\":1e2}");
    tap_is_str(t, a, "{\"e\":100,\"m\":0,\"n\":1}", "integral numbers in one spelling");
    free(a);
    a = canon_of("{\"c\":\"tab\\tquote\\\"ctl\\u0001\"}");
    tap_is_str(t, a, "{\"c\":\"tab\\tquote\\\"ctl\\u0001\"}", "escapes written one way");
    free(a);
    a = canon_of("{\"big\":12345678901234567890,\"f\":1.5}");
    tap_is_str(t, a, "{\"big\":12345678901234567890,\"f\":1.5}", "big integers kept exactly");
    free(a);
    {
        pt_payment p;
        cJSON *obj;
        example(&p);
        obj = pt_payment_to_json(&p);
        a = pt_json_canonical(obj);
        tap_ok(t,
               a && strstr(a, "\"amount\":125000,") && strstr(a, ",\"version\":1}") != NULL &&
                   strncmp(a, "{\"amount\":125000,\"amount_refunded\":0,\"created_at\":", 50) == 0,
               "canonical of a payment tree with raw integers: %.40s", a ? a : "(null)");
        free(a);
        cJSON_Delete(obj);
        pt_payment_clear(&p);
    }
}

static void test_parser(tap *t)
{
    static const char valid[] =
        "{\"a\":[1,-2.5e-3,true,false,null,\"x\"],\"b\":{\"c\":{}},\"d\":[],\"e\":\"\\u00e9\"}";
    bool all_prefixes = true;

    accepts(t, valid, "every kind of value");
    accepts(t, " \t\r\n{}\n ", "an empty object with white space around");
    accepts(t, "{\"e\":\"\\ud83d\\ude00\"}", "a surrogate pair escape");
    accepts(t, "{\"k\":\"\xe6\x97\xa5\xe6\x9c\xac\"}", "raw UTF-8 text");
    accepts(t, "{\"k\":0,\"l\":-0,\"m\":0.5,\"n\":1E+2}", "number forms");

    /* Every proper prefix of a valid document is truncated text. */
    for (size_t n = 0; n < sizeof valid - 1; n++) {
        if (!refused(valid, n))
            all_prefixes = false;
    }
    tap_ok(t, all_prefixes, "every truncation of a valid body is refused");

    refuses(t, "{\"a\":1,\"a\":2}", "duplicate keys");
    refuses(t, "{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", "nested duplicate keys");
    refuses(t, "{\"a\":1,\"\\u0061\":2}", "duplicate keys spelled differently");
    refuses(t, "{\"a\":\"x\\u0000y\"}", "\\u0000 in a value");
    refuses(t, "{\"a\\u0000\":1}", "\\u0000 in a key");
    refuses(t, "{} x", "trailing garbage");
    refuses(t, "{}{}", "two objects");
    refuses(t, "{},", "a trailing comma after the object");
    tap_ok(t, refused("{}\0", 3), "parser refuses a NUL after the object");
    tap_ok(t, refused("{\"a\":\"b\0c\"}", 10), "parser refuses a raw NUL in a string");
    refuses(t, "[]", "an array at top level");
    refuses(t, "[{\"a\":1}]", "an array of objects at top level");
    refuses(t, "\"str\"", "a string at top level");
    refuses(t, "42", "a number at top level");
    refuses(t, "null", "null at top level");
    refuses(t, "", "empty text");
    refuses(t, "  \n ", "white space only");
    refuses(t, "{\"a\":\"\xff\"}", "an invalid UTF-8 byte in a string");
    refuses(t, "{\"\xc3\":1}", "a truncated UTF-8 sequence in a key");
    refuses(t, "{\"a\":\"\xc0\xaf\"}", "an overlong encoding");
    refuses(t, "{\"a\":\"\xed\xa0\x80\"}", "surrogate bytes");
    refuses(t, "\xef\xbb\xbf{}", "a byte order mark");
    refuses(t, "{\"a\":\"\\ud800\"}", "a lone high surrogate escape");
    refuses(t, "{\"a\":\"\\udc00\"}", "a lone low surrogate escape");
    refuses(t, "{\"a\":\"\\ud800\\u0041\"}", "a high surrogate with a non-surrogate");
    refuses(t, "{\"a\":\"\\ude00\\ud83d\"}", "a reversed surrogate pair");
    refuses(t, "{\"a\":\"tab\there\"}", "a raw tab inside a string");
    refuses(t, "{\"a\":\"\\x41\"}", "an unknown escape");
    refuses(t, "{\"a\":\"\\u12G4\"}", "a bad \\u escape");
    refuses(t, "{\"a\":01}", "a leading zero");
    refuses(t, "{\"a\":1.}", "a number ending in '.'");
    refuses(t, "{\"a\":.5}", "a number starting with '.'");
    refuses(t, "{\"a\":+1}", "a leading '+'");
    refuses(t, "{\"a\":-}", "a lone '-'");
    refuses(t, "{\"a\":1e}", "an empty exponent");
    refuses(t, "{\"a\":NaN}", "NaN");
    refuses(t, "{\"a\":Infinity}", "Infinity");
    refuses(t, "{\"a\":tru}", "a misspelled true");
    refuses(t, "{\"a\":nul}", "a cut null");
    refuses(t, "{\"a\":1,}", "a trailing comma in an object");
    refuses(t, "{\"a\":[1,]}", "a trailing comma in an array");
    refuses(t, "{'a':1}", "single quotes");
    refuses(t, "{a:1}", "a bare key");
    refuses(t, "{\"a\" 1}", "a missing colon");
    refuses(t, "{\"a\":1 \"b\":2}", "a missing comma");
    refuses(t, "{\"a\":1 /* c */}", "a comment");
    refuses(t, "{\"a\":\"unterminated}", "an unterminated string");
    tap_ok(t, refused(NULL, 0), "parser refuses NULL");

    /* Depth: 32 levels are fine, 33 are not. */
    {
        /* Nested arrays inside the top-level object. */
        char text[256];
        for (int depth = 32; depth <= 33; depth++) {
            size_t n = 0;
            n += (size_t) sprintf(text + n, "{\"a\":");
            for (int i = 1; i < depth; i++)
                text[n++] = '[';
            for (int i = 1; i < depth; i++)
                text[n++] = ']';
            text[n++] = '}';
            text[n] = '\0';
            if (depth == 32)
                accepts(t, text, "nesting of 32 levels");
            else
                refuses(t, text, "nesting of 33 levels");
        }
        {
            char *huge = tap_xmalloc(200001);
            memset(huge, '[', 200000);
            huge[0] = '{';
            huge[200000] = '\0';
            tap_ok(t, refused(huge, 200000), "parser refuses 200000 levels without crashing");
            free(huge);
        }
    }
    {
        /* Many keys: the duplicate check is not quadratic, and finds the last pair. */
        size_t cap = 20000 * 12 + 64;
        char *many = tap_xmalloc(cap);
        size_t n = 0;
        many[n++] = '{';
        for (int i = 0; i < 20000; i++)
            n += (size_t) sprintf(many + n, "%s\"k%d\":0", i ? "," : "", i);
        n += (size_t) sprintf(many + n, ",\"k19999\":1}");
        tap_ok(t, refused(many, n), "a duplicate among 20001 keys is found");
        free(many);
    }
}

/* The raw text of the root's object members: byte for byte, escaped
 * keys found by their decoded name, nothing for other items. */
static void test_raw_object(tap *t)
{
    static const char text[] = "{ \"type\" : \"create\", \"pay\\u006dent\" :\t{ \"amount\": 12.0 ,"
                               " \"m\": {\"k\": \"}\\\"{\"} } , \"n\": {} ,\"list\": [{\"x\":1}] }";
    pt_problem pr = {0};
    cJSON *root = pt_json_parse_object(text, strlen(text), &pr);
    tap_ok(t, root != NULL, "a message with an escaped key parses");
    if (!root)
        return;
    const cJSON *payment = cJSON_GetObjectItemCaseSensitive(root, "payment");
    tap_is_str(t, pt_json_raw_object(payment), "{ \"amount\": 12.0 , \"m\": {\"k\": \"}\\\"{\"} }",
               "a member object keeps its exact bytes, white space and literals included");
    tap_is_str(t, pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(root, "n")), "{}",
               "an empty member object keeps its text");
    tap_ok(t, pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(payment, "m")) == NULL,
           "a nested object deeper down keeps none");
    tap_ok(t, pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(root, "type")) == NULL,
           "a string member has none");
    tap_ok(t, pt_json_raw_object(cJSON_GetObjectItemCaseSensitive(root, "list")->child) == NULL,
           "an object inside an array has none");
    tap_ok(t, pt_json_raw_object(root) == NULL, "the root itself has none");
    cJSON_Delete(root);
}

/* The direct writer prints what cJSON prints for the payment's tree. */
static void same_as_tree(tap *t, const pt_payment *p, const char *what)
{
    cJSON *obj = pt_payment_to_json(p);
    char *want = cJSON_PrintUnformatted(obj);
    pt_text b = {0};
    pt_payment_write_json(&b, p);
    char *got = pt_text_finish(&b);
    tap_is_str(t, got, want, "direct writer = cJSON's text: %s", what);
    free(got);
    cJSON_free(want);
    cJSON_Delete(obj);
}

static void test_payment_writer(tap *t)
{
    pt_payment p;
    example(&p);
    same_as_tree(t, &p, "the contract's example");
    free(p.reference);
    p.reference = NULL;
    free(p.description);
    p.description = strdup("tab\there, nl\n, cr\r, bs\b, ff\f, \x01\x1f del\x7f / \"q\" \\");
    free(p.payer);
    p.payer = strdup("M\xc3\xbcller \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x92\xb6");
    p.amount = INT64_C(999999999999999);
    p.amount_refunded = 1;
    p.version = INT64_MAX;
    p.status = PT_STATUS_REFUNDED;
    p.method = PT_METHOD_CARD;
    same_as_tree(t, &p, "controls, quotes, UTF-8, null reference, int64 extremes");
    pt_payment_clear(&p);

    example(&p);
    for (int i = 0; i < p.metadata_count; i++) {
        free(p.metadata[i].key);
        free(p.metadata[i].value);
    }
    free(p.metadata);
    p.metadata = NULL;
    p.metadata_count = 0;
    same_as_tree(t, &p, "no metadata");
    p.metadata = calloc(3, sizeof *p.metadata);
    p.metadata_count = 3;
    p.metadata[0].key = strdup("z");
    p.metadata[0].value = strdup("");
    p.metadata[1].key = strdup("a\"b");
    p.metadata[1].value = strdup("\n");
    p.metadata[2].key = strdup("\xc3\xa9");
    p.metadata[2].value = strdup("x");
    same_as_tree(t, &p, "metadata in input order, escaped keys and values");
    pt_payment_clear(&p);

    pt_text b = {0};
    char *empty = pt_text_finish(&b);
    tap_is_str(t, empty, "", "an empty text is \"\", not NULL");
    free(empty);
    pt_text_json_string(&b, NULL);
    pt_text_put(&b, ",", 1);
    pt_text_json_string(&b, "x");
    char *text = pt_text_finish(&b);
    tap_is_str(t, text, "null,\"x\"", "NULL is written as null");
    free(text);
}

int main(void)
{
    tap t = {0};

    test_payment_json(&t);
    test_payment_writer(&t);
    test_int64(&t);
    test_error_body(&t);
    test_canonical(&t);
    test_parser(&t);
    test_raw_object(&t);
    return tap_done(&t);
}
