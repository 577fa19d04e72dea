/*
 * pjson.c - JSON for payments, events and errors, and the strict request
 * parser.
 *
 * cJSON builds and prints the trees, but it is too lenient to read request
 * bodies: it keeps duplicate keys, cuts strings at "\u0000", takes any
 * bytes as text and forgets how a number was written. So request text is
 * read by the small recursive-descent parser at the end of this file,
 * which checks all of that and builds an ordinary cJSON tree. Each number
 * it creates also carries its literal text (see pt_json_number_literal),
 * so callers can tell 12 from 12.0 and read integers beyond 2^53 exactly.
 */
#include "pjson.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "validate.h"

/* Largest integer a double holds exactly; beyond it, values are refused
 * rather than silently rounded. */
#define EXACT_DOUBLE_MAX 9007199254740992.0

/* Hard cap for text this file generates, so a hostile tree makes a call
 * fail instead of eating memory. */
#define TEXT_MAX (64u * 1024u * 1024u)

/* Nesting the request parser accepts (the top-level object is level 1). */
#define PARSE_DEPTH_MAX 32

/* ---- growable text buffer ---------------------------------------------- */

/* A string being built; `failed` sticks after the first allocation
 * failure so callers check once at the end. */
typedef struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} sbuf;

/* Appends n bytes, growing by doubling up to TEXT_MAX. */
static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > TEXT_MAX - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *grown;
        while (cap < b->len + n + 1)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char c)
{
    sb_putn(b, &c, 1);
}

/* Hands the text over (caller frees), or NULL after any failure. */
static char *sb_finish(sbuf *b)
{
    if (b->failed || b->data == NULL) {
        free(b->data);
        return b->failed ? NULL : calloc(1, 1);
    }
    return b->data;
}

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

cJSON *pt_json_int64(int64_t v)
{
    char text[24];

    snprintf(text, sizeof text, "%" PRId64, v);
    return cJSON_CreateRaw(text);
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
    if (!isfinite(d) || d < -EXACT_DOUBLE_MAX || d > EXACT_DOUBLE_MAX)
        return 0;
    if (d != (double) (int64_t) d)
        return 0;
    if (out)
        *out = (int64_t) d;
    return 1;
}

/* ---- payment encoding -------------------------------------------------- */

/* Adds a string member, or null when s is NULL; false on allocation
 * failure. */
static bool add_text(cJSON *obj, const char *name, const char *s)
{
    cJSON *item = s ? cJSON_CreateString(s) : cJSON_CreateNull();
    if (item == NULL)
        return false;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Adds an exact int64 member; false on allocation failure. */
static bool add_int64(cJSON *obj, const char *name, int64_t v)
{
    cJSON *item = pt_json_int64(v);
    if (item == NULL)
        return false;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* The metadata object, in the payment's order. */
static cJSON *metadata_to_json(const pt_payment *p)
{
    cJSON *obj = cJSON_CreateObject();

    if (obj == NULL)
        return NULL;
    for (int i = 0; i < p->metadata_count; i++) {
        const pt_meta_entry *e = &p->metadata[i];
        if (!add_text(obj, e->key ? e->key : "", e->value ? e->value : "")) {
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

cJSON *pt_payment_to_json(const pt_payment *p)
{
    cJSON *obj;
    cJSON *meta;
    bool ok;

    if (p == NULL)
        return NULL;
    obj = cJSON_CreateObject();
    if (obj == NULL)
        return NULL;
    /* Member order follows the contract's example, for readers of logs. */
    ok = add_text(obj, "id", p->id) && add_int64(obj, "amount", p->amount) &&
         add_text(obj, "currency", p->currency) &&
         add_text(obj, "payer", p->payer ? p->payer : "") &&
         add_text(obj, "payee", p->payee ? p->payee : "") &&
         add_text(obj, "reference", p->reference) && add_text(obj, "description", p->description) &&
         add_text(obj, "method", pt_method_name(p->method)) &&
         add_text(obj, "status", pt_status_name(p->status)) &&
         add_int64(obj, "amount_refunded", p->amount_refunded);
    if (ok) {
        meta = metadata_to_json(p);
        ok = meta != NULL && cJSON_AddItemToObject(obj, "metadata", meta);
        if (!ok)
            cJSON_Delete(meta);
    }
    ok = ok && add_int64(obj, "version", p->version) &&
         add_text(obj, "created_at", p->created_at) && add_text(obj, "updated_at", p->updated_at);
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

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

/* ---- error bodies ------------------------------------------------------ */

char *pt_error_body(const char *code, const char *message, const char *field)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_CreateObject();
    char *printed = NULL;
    char *body = NULL;
    bool ok;

    ok = root != NULL && err != NULL && cJSON_AddItemToObject(root, "error", err);
    if (!ok) {
        cJSON_Delete(err);
        cJSON_Delete(root);
        return NULL;
    }
    ok = add_text(err, "code", code ? code : "internal") &&
         add_text(err, "message", message ? message : "");
    if (ok && field != NULL && field[0] != '\0')
        ok = add_text(err, "field", field);
    if (ok)
        printed = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (printed == NULL)
        return NULL;
    /* cJSON's output belongs to its allocator hooks; the promise here is
     * a plain malloc'd string, so hand over a copy. */
    body = strdup(printed);
    cJSON_free(printed);
    return body;
}

/* ---- canonical text ---------------------------------------------------- */

/* A JSON string with the escapes fixed: the two mandatory ones, the short
 * forms for common controls, \u00XX for the rest, everything else raw. */
static void canon_string(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
        /* The two mandatory escapes and the short forms, side by side. */
        static const char bytes[] = "\"\\\b\f\n\r\t";
        static const char letters[] = "\"\\bfnrt";
        const char *hit = strchr(bytes, (char) *p);
        if (hit != NULL) {
            char esc[2] = {'\\', letters[hit - bytes]};
            sb_putn(b, esc, 2);
        } else if (*p < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 0xF]};
            sb_putn(b, esc, 6);
        } else {
            sb_putc(b, (char) *p);
        }
    }
    sb_putc(b, '"');
}

/* A number in one spelling per value where that is safe: integers as
 * plain digits, anything else as written (or %.17g without a literal). */
static void canon_number(sbuf *b, const cJSON *item)
{
    const char *lit = pt_json_number_literal(item);
    double d = item->valuedouble;
    char tmp[40];

    if (lit != NULL && parse_int_literal(lit, strlen(lit), NULL)) {
        sb_puts(b, strcmp(lit, "-0") == 0 ? "0" : lit);
        return;
    }
    if (isfinite(d) && d > -EXACT_DOUBLE_MAX && d < EXACT_DOUBLE_MAX && d == (double) (int64_t) d) {
        snprintf(tmp, sizeof tmp, "%" PRId64, (int64_t) d);
        sb_puts(b, tmp);
        return;
    }
    if (lit != NULL) {
        sb_puts(b, lit);
        return;
    }
    if (!isfinite(d)) {
        sb_puts(b, "null"); /* what cJSON prints for them too */
        return;
    }
    snprintf(tmp, sizeof tmp, "%.17g", d);
    /* A locale may print a decimal comma; JSON wants a point. */
    for (char *c = tmp; *c; c++) {
        if (!(*c >= '0' && *c <= '9') && *c != '-' && *c != '+' && *c != 'e' && *c != 'E')
            *c = '.';
    }
    sb_puts(b, tmp);
}

/* One object member while sorting: its position breaks ties between
 * equal keys, so the output is the same on every platform. */
typedef struct member_ref {
    const cJSON *item;
    size_t index;
} member_ref;

static int member_cmp(const void *va, const void *vb)
{
    const member_ref *a = va;
    const member_ref *b = vb;
    int c = strcmp(a->item->string ? a->item->string : "", b->item->string ? b->item->string : "");

    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static void canon_value(sbuf *b, const cJSON *item);

/* An object with its members sorted by key bytes (code point order). */
static void canon_object(sbuf *b, const cJSON *obj)
{
    member_ref *refs;
    size_t n = 0;
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next)
        n++;
    if (n == 0) {
        sb_puts(b, "{}");
        return;
    }
    refs = malloc(n * sizeof *refs);
    if (refs == NULL) {
        b->failed = true;
        return;
    }
    n = 0;
    for (c = obj->child; c != NULL; c = c->next) {
        refs[n].item = c;
        refs[n].index = n;
        n++;
    }
    qsort(refs, n, sizeof *refs, member_cmp);
    sb_putc(b, '{');
    for (size_t i = 0; i < n && !b->failed; i++) {
        if (i > 0)
            sb_putc(b, ',');
        canon_string(b, refs[i].item->string);
        sb_putc(b, ':');
        canon_value(b, refs[i].item);
    }
    sb_putc(b, '}');
    free(refs);
}

static void canon_value(sbuf *b, const cJSON *item)
{
    const cJSON *c;

    if (b->failed)
        return;
    switch (item->type & 0xFF) {
    case cJSON_False:
        sb_puts(b, "false");
        break;
    case cJSON_True:
        sb_puts(b, "true");
        break;
    case cJSON_NULL:
        sb_puts(b, "null");
        break;
    case cJSON_Number:
        canon_number(b, item);
        break;
    case cJSON_String:
        canon_string(b, item->valuestring);
        break;
    case cJSON_Raw:
        sb_puts(b, item->valuestring ? item->valuestring : "null");
        break;
    case cJSON_Array:
        sb_putc(b, '[');
        for (c = item->child; c != NULL && !b->failed; c = c->next) {
            if (c != item->child)
                sb_putc(b, ',');
            canon_value(b, c);
        }
        sb_putc(b, ']');
        break;
    case cJSON_Object:
        canon_object(b, item);
        break;
    default:
        sb_puts(b, "null");
    }
}

char *pt_json_canonical(const cJSON *item)
{
    sbuf b = {0};

    if (item == NULL)
        return NULL;
    canon_value(&b, item);
    return sb_finish(&b);
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

/* The value of one hex digit, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits of a \u escape at p->pos; -1 when malformed. */
static long jp_hex4(jparser *p)
{
    long v = 0;

    if (p->len - p->pos < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p->s[p->pos + (size_t) i]);
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
