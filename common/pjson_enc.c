/*
 * pjson_enc.c - JSON encoding: payments, error bodies, exact integers and
 * the canonical text used to compare request bodies.
 *
 * cJSON builds and prints the trees. Integers never pass through a double
 * on output: they are emitted as raw number text.
 */
#include "pjson_enc.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjson_parse.h"

/* Hard cap for text this file generates, so a hostile tree makes a call
 * fail instead of eating memory. */
#define TEXT_MAX (64u * 1024u * 1024u)

/* ---- growable text buffer ---------------------------------------------- */

/* The buffer is pt_text (pjson_enc.h); `failed` sticks after the first
 * allocation failure so callers check once at the end. */
typedef pt_text sbuf;

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

static void canon_string(sbuf *b, const char *s);

void pt_text_put(pt_text *b, const char *s, size_t n)
{
    sb_putn(b, s, n);
}

void pt_text_puts(pt_text *b, const char *s)
{
    sb_puts(b, s);
}

void pt_text_json_string(pt_text *b, const char *s)
{
    if (s)
        canon_string(b, s);
    else
        sb_puts(b, "null");
}

char *pt_text_finish(pt_text *b)
{
    char *text = sb_finish(b);
    memset(b, 0, sizeof *b);
    return text;
}

/* ---- integers ---------------------------------------------------------- */

cJSON *pt_json_int64(int64_t v)
{
    char text[24];

    snprintf(text, sizeof text, "%" PRId64, v);
    return cJSON_CreateRaw(text);
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

static void member_int64(sbuf *b, const char *name_and_colon, int64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRId64, v);
    sb_puts(b, name_and_colon);
    sb_putn(b, text, (size_t) n);
}

void pt_payment_write_json(pt_text *b, const pt_payment *p)
{
    /* The members and order of pt_payment_to_json, printed as cJSON
     * prints them (tests/unit compares the two). */
    sb_puts(b, "{\"id\":");
    canon_string(b, p->id);
    member_int64(b, ",\"amount\":", p->amount);
    sb_puts(b, ",\"currency\":");
    canon_string(b, p->currency);
    sb_puts(b, ",\"payer\":");
    canon_string(b, p->payer ? p->payer : "");
    sb_puts(b, ",\"payee\":");
    canon_string(b, p->payee ? p->payee : "");
    sb_puts(b, ",\"reference\":");
    pt_text_json_string(b, p->reference);
    sb_puts(b, ",\"description\":");
    pt_text_json_string(b, p->description);
    sb_puts(b, ",\"method\":");
    canon_string(b, pt_method_name(p->method));
    sb_puts(b, ",\"status\":");
    canon_string(b, pt_status_name(p->status));
    member_int64(b, ",\"amount_refunded\":", p->amount_refunded);
    sb_puts(b, ",\"metadata\":{");
    for (int i = 0; i < p->metadata_count; i++) {
        const pt_meta_entry *e = &p->metadata[i];
        if (i > 0)
            sb_putc(b, ',');
        canon_string(b, e->key ? e->key : "");
        sb_putc(b, ':');
        canon_string(b, e->value ? e->value : "");
    }
    member_int64(b, "},\"version\":", p->version);
    sb_puts(b, ",\"created_at\":");
    canon_string(b, p->created_at);
    sb_puts(b, ",\"updated_at\":");
    canon_string(b, p->updated_at);
    sb_putc(b, '}');
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
 * forms for common controls, \u00XX for the rest, everything else raw.
 * Runs of plain bytes are copied at once: pages of payments are mostly
 * that. */
static void canon_string(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) (s ? s : "");

    sb_putc(b, '"');
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            sb_putn(b, (const char *) run, (size_t) (p - run));
        if (*p == '\0')
            break;
        char esc[6] = {'\\', (char) *p, '0', '0', hex[*p >> 4], hex[*p & 0xF]};
        size_t n = 2;
        switch (*p) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            n = 6;
        }
        sb_putn(b, esc, n);
        p++;
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

    if (lit != NULL && pt_json_get_int64(item, NULL)) {
        sb_puts(b, strcmp(lit, "-0") == 0 ? "0" : lit);
        return;
    }
    if (isfinite(d) && d > -PT_JSON_EXACT_DOUBLE_MAX && d < PT_JSON_EXACT_DOUBLE_MAX &&
        d == (double) (int64_t) d) {
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
