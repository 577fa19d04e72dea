/*
 * pjson_parse.c - JSON decoding: the strict request parser, exact integer
 * reads and the payment as the server sends it.
 *
 * cJSON is too lenient to read request bodies: it keeps duplicate keys,
 * cuts strings at "\u0000", takes any bytes as text and forgets how a
 * number was written. So request text is read by the small
 * recursive-descent parser at the end of this file, which checks all of
 * that and builds an ordinary cJSON tree. Each number it creates also
 * carries its literal text (see pt_json_number_literal), so callers can
 * tell 12 from 12.0 and read integers beyond 2^53 exactly.
 */
#include "pjson_parse.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Nesting the request parser accepts (the top-level object is level 1). */
#define PARSE_DEPTH_MAX 32

/* ---- integers ---------------------------------------------------------- */

/* Parses exactly `n` bytes as a JSON integer literal (-?(0|[1-9][0-9]*))
 * into *out; false on any other syntax or outside int64. */
static bool parse_int_literal(const char *s, size_t n, int64_t *out)
{
    bool negative = false;
    uint64_t limit;
    uint64_t v = 0;
    size_t i = 0;

    if (n > 0 && s[0] == '-') {
        negative = true;
        i = 1;
    }
    if (i >= n)
        return false;
    if (s[i] == '0' && n - i > 1)
        return false; /* leading zero */
    /* INT64_MIN's magnitude is one more than INT64_MAX's. */
    limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    for (; i < n; i++) {
        uint64_t d;
        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (uint64_t) (s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (out) {
        if (negative)
            *out = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
        else
            *out = (int64_t) v;
    }
    return true;
}

const char *pt_json_raw_object(const cJSON *item)
{
    return cJSON_IsObject(item) ? item->valuestring : NULL;
}

const char *pt_json_number_literal(const cJSON *item)
{
    /* Only the request parser puts text on a number item; trees from
     * cJSON_Parse or cJSON_CreateNumber have valuestring NULL there. */
    if (item == NULL || !cJSON_IsNumber(item))
        return NULL;
    return item->valuestring;
}

int pt_json_get_int64(const cJSON *item, int64_t *out)
{
    const char *lit;
    double d;

    if (item == NULL)
        return 0;
    if (cJSON_IsRaw(item)) {
        /* What pt_json_int64 made, or any raw text that is an integer. */
        if (item->valuestring == NULL)
            return 0;
        return parse_int_literal(item->valuestring, strlen(item->valuestring), out);
    }
    if (!cJSON_IsNumber(item))
        return 0;
    lit = pt_json_number_literal(item);
    if (lit != NULL)
        return parse_int_literal(lit, strlen(lit), out);
    /* No literal: all we have is a double. Accept it only where it is
     * certainly the integer that was written. */
    d = item->valuedouble;
    if (!isfinite(d) || d < -PT_JSON_EXACT_DOUBLE_MAX || d > PT_JSON_EXACT_DOUBLE_MAX)
        return 0;
    if (d != (double) (int64_t) d)
        return 0;
    if (out)
        *out = (int64_t) d;
    return 1;
}
/* ---- payment decoding -------------------------------------------------- */

/* The string member `name`, or NULL when absent or not a string. */
static const char *member_string(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

/* Copies a required string member into a fixed buffer of `cap` bytes;
 * false when missing, not a string, or too long. */
static bool copy_fixed(const cJSON *obj, const char *name, char *dst, size_t cap)
{
    const char *s = member_string(obj, name);
    size_t n;

    if (s == NULL)
        return false;
    n = strlen(s);
    if (n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* Copies a required string member to the heap; false when missing, not a
 * string, or out of memory. */
static bool copy_required(const cJSON *obj, const char *name, char **dst)
{
    const char *s = member_string(obj, name);

    if (s == NULL)
        return false;
    *dst = strdup(s);
    return *dst != NULL;
}

/* Copies an optional string member: absent or null leave *dst NULL. */
static bool copy_optional(const cJSON *obj, const char *name, char **dst)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (item == NULL || cJSON_IsNull(item))
        return true;
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return false;
    *dst = strdup(item->valuestring);
    return *dst != NULL;
}

/* Reads a metadata object of string values into `out`; absent or null
 * means none. */
static bool metadata_from_json(const cJSON *meta, pt_payment *out)
{
    const cJSON *e;
    int n;

    if (meta == NULL || cJSON_IsNull(meta))
        return true;
    if (!cJSON_IsObject(meta))
        return false;
    n = cJSON_GetArraySize(meta);
    if (n == 0)
        return true;
    out->metadata = calloc((size_t) n, sizeof *out->metadata);
    if (out->metadata == NULL)
        return false;
    cJSON_ArrayForEach(e, meta)
    {
        pt_meta_entry *m = &out->metadata[out->metadata_count];
        if (!cJSON_IsString(e) || e->valuestring == NULL || e->string == NULL)
            return false;
        out->metadata_count++; /* counted first: clear() frees what is set */
        m->key = strdup(e->string);
        m->value = strdup(e->valuestring);
        if (m->key == NULL || m->value == NULL)
            return false;
    }
    return true;
}

int pt_payment_from_json(const cJSON *obj, pt_payment *out)
{
    bool ok;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(obj))
        return -1;
    /* Unknown members are ignored: the contract grows by adding fields,
     * and an older TUI must still read a newer server. */
    ok = copy_fixed(obj, "id", out->id, sizeof out->id) &&
         pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(obj, "amount"), &out->amount) &&
         copy_fixed(obj, "currency", out->currency, sizeof out->currency) &&
         copy_required(obj, "payer", &out->payer) && copy_required(obj, "payee", &out->payee) &&
         copy_optional(obj, "reference", &out->reference) &&
         copy_optional(obj, "description", &out->description) &&
         pt_method_parse(member_string(obj, "method"), &out->method) &&
         pt_status_parse(member_string(obj, "status"), &out->status) &&
         metadata_from_json(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), out) &&
         pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(obj, "version"), &out->version) &&
         copy_fixed(obj, "created_at", out->created_at, sizeof out->created_at) &&
         copy_fixed(obj, "updated_at", out->updated_at, sizeof out->updated_at);
    /* amount_refunded is v1.1: absent (an older server) means none. */
    const cJSON *refunded = cJSON_GetObjectItemCaseSensitive(obj, "amount_refunded");
    if (ok && refunded)
        ok = pt_json_get_int64(refunded, &out->amount_refunded) && out->amount_refunded >= 0 &&
             out->amount_refunded <= out->amount;
    if (!ok) {
        pt_payment_clear(out);
        return -1;
    }
    return 0;
}

/* ---- strict request parser --------------------------------------------- */

/* Parser state over the request bytes. */
typedef struct jparser {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    pt_problem *problem;
} jparser;

/* Records a malformed_json problem and returns NULL for the caller to pass
 * up. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static cJSON *
jp_fail(jparser *p, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_problem_set(p->problem, "malformed_json", "", "%s", msg);
    return NULL;
}

/* Records an allocation failure: not the client's fault, so not
 * malformed_json. */
static cJSON *jp_oom(jparser *p)
{
    pt_problem_set(p->problem, "internal", "", "out of memory");
    return NULL;
}

static void jp_skip_ws(jparser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Reads the four hex digits of a \u escape at p->pos; -1 when malformed. */
static long jp_hex4(jparser *p)
{
    long v = 0;

    if (p->len - p->pos < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = pt_hex_digit(p->s[p->pos + (size_t) i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    p->pos += 4;
    return v;
}

/* Writes code point cp (valid, not a surrogate) as UTF-8; returns bytes. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the string whose opening quote is at p->pos into a malloc'd
 * NUL-terminated buffer, leaving p->pos after the closing quote. Escapes
 * never produce more bytes than they take, so the span between the quotes
 * bounds the output and one allocation suffices.
 */
static char *jp_string(jparser *p)
{
    size_t start = ++p->pos;
    size_t end = start;
    size_t n = 0;
    char *out;

    while (end < p->len && p->s[end] != '"') {
        end += p->s[end] == '\\' ? 2 : 1;
    }
    if (end >= p->len) {
        jp_fail(p, "unterminated string starting at byte %zu", start - 1);
        return NULL;
    }
    out = malloc(end - start + 1);
    if (out == NULL) {
        jp_oom(p);
        return NULL;
    }
    while (p->pos < end) {
        unsigned char c = (unsigned char) p->s[p->pos];
        char esc;
        long cp;
        if (c < 0x20) {
            jp_fail(p, "control character in a string at byte %zu; escape it", p->pos);
            goto fail;
        }
        if (c != '\\') {
            out[n++] = (char) c;
            p->pos++;
            continue;
        }
        p->pos++;
        esc = p->s[p->pos++];
        if (esc != 'u') {
            /* The one-letter escapes, each standing for one byte. */
            static const char letters[] = "\"\\/bfnrt";
            static const char bytes[] = "\"\\/\b\f\n\r\t";
            const char *hit = esc ? strchr(letters, esc) : NULL;
            if (hit == NULL) {
                jp_fail(p, "invalid escape in a string at byte %zu", p->pos - 2);
                goto fail;
            }
            out[n++] = bytes[hit - letters];
            continue;
        }
        cp = jp_hex4(p);
        if (cp < 0) {
            jp_fail(p, "invalid \\u escape at byte %zu", p->pos - 2);
            goto fail;
        }
        if (cp == 0) {
            jp_fail(p, "\\u0000 is not allowed in strings (byte %zu)", p->pos - 6);
            goto fail;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            jp_fail(p, "unpaired UTF-16 surrogate at byte %zu", p->pos - 6);
            goto fail;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo;
            if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                jp_fail(p, "unpaired UTF-16 surrogate at byte %zu", p->pos - 6);
                goto fail;
            }
            p->pos += 2;
            lo = jp_hex4(p);
            if (lo < 0xDC00 || lo > 0xDFFF) {
                jp_fail(p, "unpaired UTF-16 surrogate at byte %zu", p->pos - 12);
                goto fail;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        n += utf8_encode((uint32_t) cp, out + n);
    }
    out[n] = '\0';
    p->pos = end + 1;
    return out;
fail:
    free(out);
    return NULL;
}

/* Copies text into cJSON's allocator, so cJSON_Delete can free it. */
static char *cjson_strndup(const char *s, size_t n)
{
    char *d = cJSON_malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/*
 * Reads a number with JSON's exact grammar. The double comes from strtod
 * on a copy whose '.' is swapped for the locale's decimal point, because
 * the TUI runs under the user's locale; the literal stays on the item.
 */
static cJSON *jp_number(jparser *p)
{
    size_t start = p->pos;
    const char *point;
    char *copy;
    char *lit;
    cJSON *item;
    double d;

    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len)
        return jp_fail(p, "unexpected end of JSON in a number");
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    } else {
        return jp_fail(p, "invalid number at byte %zu", start);
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        size_t digits = ++p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == digits)
            return jp_fail(p, "invalid number at byte %zu", start);
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        size_t digits;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        digits = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == digits)
            return jp_fail(p, "invalid number at byte %zu", start);
    }

    copy = malloc(p->pos - start + 1);
    if (copy == NULL)
        return jp_oom(p);
    memcpy(copy, p->s + start, p->pos - start);
    copy[p->pos - start] = '\0';
    point = localeconv()->decimal_point;
    if (point != NULL && point[0] != '\0' && point[0] != '.' && point[1] == '\0') {
        char *dot = strchr(copy, '.');
        if (dot)
            *dot = point[0];
    }
    d = strtod(copy, NULL);
    free(copy);

    item = cJSON_CreateNumber(d);
    lit = cjson_strndup(p->s + start, p->pos - start);
    if (item == NULL || lit == NULL) {
        cJSON_Delete(item);
        cJSON_free(lit);
        return jp_oom(p);
    }
    item->valuestring = lit;
    return item;
}

/* Matches the literal `word` at p->pos. */
static bool jp_word(jparser *p, const char *word)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static cJSON *jp_value(jparser *p);

/* Passes a freshly created item through, turning NULL into a problem. */
static cJSON *jp_made(jparser *p, cJSON *item)
{
    return item != NULL ? item : jp_oom(p);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Fails when two members of `obj` have the same (decoded) key. Sorting
 * keeps a body with thousands of keys from costing n^2 comparisons. */
static bool jp_check_duplicates(jparser *p, const cJSON *obj, size_t count)
{
    const char **keys;
    const cJSON *c;
    size_t n = 0;
    bool ok = true;

    if (count < 2)
        return true;
    keys = malloc(count * sizeof *keys);
    if (keys == NULL) {
        jp_oom(p);
        return false;
    }
    for (c = obj->child; c != NULL; c = c->next)
        keys[n++] = c->string;
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 1; i < n && ok; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            int shown = (int) pt_utf8_truncate(keys[i], 64);
            jp_fail(p, "duplicate key \"%.*s\"", shown, keys[i]);
            ok = false;
        }
    }
    free(keys);
    return ok;
}

/* After a member or element: 1 when a ',' announces another, 0 when
 * `close` ends the container, -1 (with a problem) for anything else. */
static int jp_after_element(jparser *p, char close, const char *where)
{
    jp_skip_ws(p);
    if (p->pos >= p->len) {
        jp_fail(p, "unexpected end of JSON in %s", where);
        return -1;
    }
    if (p->s[p->pos] == ',' || p->s[p->pos] == close) {
        return p->s[p->pos++] == ',';
    }
    jp_fail(p, "expected ',' or '%c' at byte %zu", close, p->pos);
    return -1;
}

/*
 * Enters the container whose opener is at p->pos, taking ownership of the
 * freshly made `container`: checks the depth limit, and sets *empty when
 * `close` follows at once (the container is then complete). NULL, with a
 * problem, on failure.
 */
static cJSON *jp_open(jparser *p, cJSON *container, char close, bool *empty)
{
    *empty = false;
    if (container == NULL)
        return jp_oom(p);
    if (++p->depth > PARSE_DEPTH_MAX) {
        cJSON_Delete(container);
        return jp_fail(p, "JSON nested deeper than %d levels", PARSE_DEPTH_MAX);
    }
    p->pos++;
    jp_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        *empty = true;
    }
    return container;
}

static cJSON *jp_object(jparser *p)
{
    cJSON *obj;
    bool empty;
    size_t count = 0;
    int more;

    obj = jp_open(p, cJSON_CreateObject(), '}', &empty);
    if (obj == NULL || empty)
        return obj;
    for (;;) {
        char *key;
        cJSON *value;

        jp_skip_ws(p);
        if (p->pos >= p->len) {
            jp_fail(p, "unexpected end of JSON in an object");
            goto fail;
        }
        if (p->s[p->pos] != '"') {
            jp_fail(p, "expected a string key at byte %zu", p->pos);
            goto fail;
        }
        key = jp_string(p);
        if (key == NULL)
            goto fail;
        jp_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            if (p->pos >= p->len)
                jp_fail(p, "unexpected end of JSON in an object");
            else
                jp_fail(p, "expected ':' at byte %zu", p->pos);
            goto fail;
        }
        p->pos++;
        jp_skip_ws(p);
        size_t value_start = p->pos;
        value = jp_value(p);
        if (value == NULL) {
            free(key);
            goto fail;
        }
        if (p->depth == 1 && cJSON_IsObject(value)) {
            /* A member of the root object keeps its exact text
             * (pt_json_raw_object). */
            value->valuestring = cjson_strndup(p->s + value_start, p->pos - value_start);
            if (value->valuestring == NULL) {
                free(key);
                cJSON_Delete(value);
                jp_oom(p);
                goto fail;
            }
        }
        if (!cJSON_AddItemToObject(obj, key, value)) {
            free(key);
            cJSON_Delete(value);
            jp_oom(p);
            goto fail;
        }
        free(key);
        count++;
        more = jp_after_element(p, '}', "an object");
        if (more < 0)
            goto fail;
        if (more == 0)
            break;
    }
    if (!jp_check_duplicates(p, obj, count))
        goto fail;
    p->depth--;
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *jp_array(jparser *p)
{
    cJSON *arr;
    bool empty;
    int more;

    arr = jp_open(p, cJSON_CreateArray(), ']', &empty);
    if (arr == NULL || empty)
        return arr;
    for (;;) {
        cJSON *value = jp_value(p);
        if (value == NULL)
            goto fail;
        if (!cJSON_AddItemToArray(arr, value)) {
            cJSON_Delete(value);
            jp_oom(p);
            goto fail;
        }
        more = jp_after_element(p, ']', "an array");
        if (more < 0)
            goto fail;
        if (more == 0)
            break;
    }
    p->depth--;
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

static cJSON *jp_value(jparser *p)
{
    char *text;
    cJSON *item;

    jp_skip_ws(p);
    if (p->pos >= p->len)
        return jp_fail(p, "unexpected end of JSON");
    switch (p->s[p->pos]) {
    case '{':
        return jp_object(p);
    case '[':
        return jp_array(p);
    case '"':
        text = jp_string(p);
        if (text == NULL)
            return NULL;
        item = cJSON_CreateString(text);
        free(text);
        return jp_made(p, item);
    case 't':
        if (jp_word(p, "true"))
            return jp_made(p, cJSON_CreateTrue());
        break;
    case 'f':
        if (jp_word(p, "false"))
            return jp_made(p, cJSON_CreateFalse());
        break;
    case 'n':
        if (jp_word(p, "null"))
            return jp_made(p, cJSON_CreateNull());
        break;
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
            return jp_number(p);
    }
    return jp_fail(p, "unexpected character at byte %zu", p->pos);
}

cJSON *pt_json_parse_object(const char *text, size_t len, pt_problem *problem)
{
    jparser p = {text, text ? len : 0, 0, 0, problem};
    cJSON *root;

    if (text == NULL)
        len = 0;
    /* Checking the encoding of the whole body first means the parser only
     * ever copies well-formed UTF-8 into strings. */
    if (!pt_utf8_valid(text, len)) {
        pt_problem_set(problem, "malformed_json", "", "request body is not valid UTF-8");
        return NULL;
    }
    jp_skip_ws(&p);
    if (p.pos >= len)
        return jp_fail(&p, "request body is empty");
    if (text[p.pos] != '{')
        return jp_fail(&p, "request body must be a JSON object");
    root = jp_object(&p);
    if (root == NULL)
        return NULL;
    jp_skip_ws(&p);
    if (p.pos != len) {
        cJSON_Delete(root);
        return jp_fail(&p, "unexpected text after the JSON object at byte %zu", p.pos);
    }
    return root;
}
