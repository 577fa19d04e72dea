/*
 * validate.c - the contract's field rules for create and PATCH bodies.
 *
 * Everything a request can get wrong is reported as one pt_problem: the
 * contract's error code, the field it concerns, and a sentence a person can
 * act on. Validation writes only into the caller's pt_payment, so the same
 * code serves the server (request bodies) and the TUI (form fields).
 */
#include "validate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "currency.h"
#include "money.h"
#include "pjson.h"
#include "utf8.h"

#define VALIDATION_FAILED "validation_failed"

/* Body members a client may send, in PT_CHANGE_* bit order: bit i of a
 * change set is body_fields[i]. */
static const char *const body_fields[] = {
    "amount",      "currency", "payer",  "payee",    "reference",
    "description", "method",   "status", "metadata",
};

enum { FIELD_COUNT = sizeof body_fields / sizeof body_fields[0] };

/* Members only the server writes. */
static const char *const server_fields[] = {"id", "version", "created_at", "updated_at",
                                            "amount_refunded"};

/* Cuts a trailing partial UTF-8 sequence left by a truncating snprintf. */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s);
    size_t lead = len;
    size_t need;
    unsigned char c;

    while (lead > 0 && len - lead < 4 && ((unsigned char) s[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return;
    c = (unsigned char) s[lead - 1];
    if (c < 0xC0)
        return; /* ends in ASCII, or only continuation bytes: nothing to fix */
    need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (len - (lead - 1) < need)
        s[lead - 1] = '\0';
}

void pt_problem_set(pt_problem *problem, const char *code, const char *field, const char *fmt, ...)
{
    size_t n;

    if (problem == NULL)
        return;
    if (field == NULL)
        field = "";
    problem->code = code;
    n = pt_utf8_truncate(field, sizeof problem->field - 1);
    memcpy(problem->field, field, n);
    problem->field[n] = '\0';
    problem->message[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(problem->message, sizeof problem->message, fmt, ap);
        va_end(ap);
    }
    trim_partial_utf8(problem->message);
}

/* ---- single fields ----------------------------------------------------- */

/* True when s is made of ASCII spaces only (and is not empty). */
static bool all_spaces(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s != ' ')
            return false;
    }
    return true;
}

/* True when valid UTF-8 `s` holds a control character other than tab,
 * line feed and carriage return (C1 controls are 0xC2 0x80..0x9F). */
static bool has_control_except_layout(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f)
            return true;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return true;
    }
    return false;
}

/* The checks all text fields share: valid UTF-8, at most `max` code
 * points (and at least one when `required`), no control characters. A
 * description is prose, so it may hold line breaks and tabs. */
static int check_text(const char *field, const char *value, size_t max, bool required,
                      pt_problem *problem)
{
    bool multiline = strcmp(field, "description") == 0;
    size_t chars;

    if (!pt_utf8_valid(value, strlen(value))) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s must be valid UTF-8 text", field);
        return -1;
    }
    chars = pt_utf8_length(value);
    if (chars > max || (required && chars == 0)) {
        pt_problem_set(problem, VALIDATION_FAILED, field,
                       "%s must be %s%zu characters (it has %zu)", field,
                       required ? "1 to " : "at most ", max, chars);
        return -1;
    }
    if (multiline ? has_control_except_layout(value) : pt_utf8_has_control(value)) {
        pt_problem_set(problem, VALIDATION_FAILED, field,
                       multiline ? "%s must not contain control characters other than line "
                                   "breaks and tabs"
                                 : "%s must not contain control characters such as line breaks "
                                   "or tabs",
                       field);
        return -1;
    }
    return 0;
}

int pt_validate_name(const char *field, const char *value, pt_problem *problem)
{
    if (value == NULL) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s is required", field);
        return -1;
    }
    if (check_text(field, value, PT_NAME_MAX, true, problem) != 0)
        return -1;
    if (all_spaces(value)) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s must not be blank", field);
        return -1;
    }
    return 0;
}

int pt_validate_optional_text(const char *field, const char *value, size_t max_chars,
                              pt_problem *problem)
{
    if (value == NULL)
        return 0; /* absent is allowed: that is what optional means */
    return check_text(field, value, max_chars, false, problem);
}

int pt_validate_currency(const char *value, pt_problem *problem)
{
    if (value == NULL) {
        pt_problem_set(problem, VALIDATION_FAILED, "currency", "currency is required");
        return -1;
    }
    if (pt_currency_find(value) != NULL)
        return 0;
    /* "eur" is a common slip: say what would have worked. */
    if (strlen(value) == 3) {
        char upper[4];
        for (int i = 0; i < 3; i++) {
            char c = value[i];
            upper[i] = (char) (c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        }
        upper[3] = '\0';
        if (pt_currency_find(upper) != NULL) {
            pt_problem_set(problem, VALIDATION_FAILED, "currency",
                           "currency must be upper case: %s", upper);
            return -1;
        }
    }
    pt_problem_set(problem, VALIDATION_FAILED, "currency",
                   "currency must be an active ISO 4217 code such as EUR, USD or JPY");
    return -1;
}

int pt_validate_amount(int64_t amount, pt_problem *problem)
{
    if (amount < 1) {
        pt_problem_set(problem, VALIDATION_FAILED, "amount",
                       "amount must be a positive integer of minor units (1250 is 12.50 EUR)");
        return -1;
    }
    if (amount > PT_AMOUNT_MAX) {
        pt_problem_set(problem, VALIDATION_FAILED, "amount",
                       "amount must be at most %lld minor units", (long long) PT_AMOUNT_MAX);
        return -1;
    }
    return 0;
}

int pt_validate_amount_text(const char *text, const char *currency, int64_t *minor_out,
                            pt_problem *problem)
{
    const pt_currency *cur;
    int64_t minor = 0;
    pt_money_err err;

    if (pt_validate_currency(currency, problem) != 0)
        return -1;
    cur = pt_currency_find(currency);
    err = pt_money_parse(text, cur->exponent, &minor);
    switch (err) {
    case PT_MONEY_OK:
        break;
    case PT_MONEY_EMPTY:
        pt_problem_set(problem, VALIDATION_FAILED, "amount", "amount is required");
        return -1;
    case PT_MONEY_SYNTAX:
        pt_problem_set(problem, VALIDATION_FAILED, "amount", "amount must be a number such as %s",
                       cur->exponent == 0   ? "1,250"
                       : cur->exponent == 2 ? "1,250.00"
                                            : "1250.5");
        return -1;
    case PT_MONEY_NEGATIVE:
        pt_problem_set(problem, VALIDATION_FAILED, "amount", "amount must be positive");
        return -1;
    case PT_MONEY_TOO_PRECISE:
        if (cur->exponent == 0)
            pt_problem_set(problem, VALIDATION_FAILED, "amount", "%s allows no decimals",
                           cur->code);
        else
            pt_problem_set(problem, VALIDATION_FAILED, "amount", "%s allows at most %d decimal%s",
                           cur->code, cur->exponent, cur->exponent == 1 ? "" : "s");
        return -1;
    case PT_MONEY_OVERFLOW:
    default:
        pt_problem_set(problem, VALIDATION_FAILED, "amount", "amount is too large");
        return -1;
    }
    if (minor > PT_AMOUNT_MAX) {
        pt_problem_set(problem, VALIDATION_FAILED, "amount", "amount is too large");
        return -1;
    }
    if (pt_validate_amount(minor, problem) != 0)
        return -1;
    if (minor_out)
        *minor_out = minor;
    return 0;
}

/* ---- request bodies ---------------------------------------------------- */

/* True when `lit` is a JSON integer literal: an optional '-', digits. */
static bool integer_syntax(const char *lit)
{
    if (*lit == '-')
        lit++;
    if (*lit == '\0')
        return false;
    for (; *lit; lit++) {
        if (*lit < '0' || *lit > '9')
            return false;
    }
    return true;
}

/*
 * The literal text of the amount number: from the item itself when the
 * strict parser made the tree, else from the "amount" member of the
 * request text `raw`, reparsed (the copy is returned in *tmp for the
 * caller to delete). NULL when neither knows it.
 */
static const char *amount_literal(const cJSON *item, const char *raw, size_t raw_len, cJSON **tmp)
{
    const char *lit = pt_json_number_literal(item);
    const cJSON *again;

    *tmp = NULL;
    if (lit != NULL || raw == NULL)
        return lit;
    *tmp = pt_json_parse_object(raw, raw_len, NULL);
    again = cJSON_GetObjectItemCaseSensitive(*tmp, "amount");
    /* Only trust it if it is the same number; raw may be a larger message
     * (a WebSocket frame) whose top level has no amount. */
    if (!cJSON_IsNumber(again) || again->valuedouble != item->valuedouble)
        return NULL;
    return pt_json_number_literal(again);
}

/* Reads the amount member: a JSON integer literal, 1..PT_AMOUNT_MAX. */
static int read_amount(const cJSON *item, const char *raw, size_t raw_len, int64_t *out,
                       pt_problem *problem)
{
    const char *lit;
    cJSON *tmp = NULL;
    int64_t v = 0;
    int rc = 0;

    if (cJSON_IsString(item)) {
        pt_problem_set(problem, VALIDATION_FAILED, "amount",
                       "amount must be a JSON integer of minor units, not a string");
        return -1;
    }
    if (!cJSON_IsNumber(item)) {
        pt_problem_set(problem, VALIDATION_FAILED, "amount",
                       "amount must be a positive integer of minor units (1250 is 12.50 EUR)");
        return -1;
    }
    lit = amount_literal(item, raw, raw_len, &tmp);
    if (lit != NULL) {
        if (!integer_syntax(lit)) {
            pt_problem_set(problem, VALIDATION_FAILED, "amount",
                           "amount must be an integer of minor units, written without a "
                           "decimal point or exponent");
            rc = -1;
        } else if (lit[0] == '-') {
            rc = pt_validate_amount(0, problem);
        } else if (!pt_json_get_int64(item, &v) &&
                   !(tmp &&
                     pt_json_get_int64(cJSON_GetObjectItemCaseSensitive(tmp, "amount"), &v))) {
            rc = pt_validate_amount(INT64_MAX, problem); /* more digits than int64 holds */
        } else {
            rc = pt_validate_amount(v, problem);
        }
    } else if (!pt_json_get_int64(item, &v)) {
        /* Only a double to go by: refuse what is not plainly an integer. */
        pt_problem_set(problem, VALIDATION_FAILED, "amount",
                       "amount must be an integer of minor units, at most %lld",
                       (long long) PT_AMOUNT_MAX);
        rc = -1;
    } else {
        rc = pt_validate_amount(v, problem);
    }
    cJSON_Delete(tmp);
    if (rc == 0)
        *out = v;
    return rc;
}

/* Copies a string the payment will own; -1 with a problem when out of
 * memory. */
static int own_copy(char **dst, const char *s, pt_problem *problem)
{
    *dst = strdup(s);
    if (*dst == NULL) {
        pt_problem_set(problem, "internal", "", "out of memory");
        return -1;
    }
    return 0;
}

/* A required text member (payer, payee): a string passing
 * pt_validate_name. */
static int read_name(const char *field, const cJSON *item, char **dst, pt_problem *problem)
{
    if (cJSON_IsNull(item)) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s is required and cannot be null",
                       field);
        return -1;
    }
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s must be a string", field);
        return -1;
    }
    if (pt_validate_name(field, item->valuestring, problem) != 0)
        return -1;
    return own_copy(dst, item->valuestring, problem);
}

/* An optional text member (reference, description): null or a string of
 * at most max characters. */
static int read_optional(const char *field, const cJSON *item, size_t max, char **dst,
                         pt_problem *problem)
{
    if (cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        pt_problem_set(problem, VALIDATION_FAILED, field, "%s must be a string or null", field);
        return -1;
    }
    if (pt_validate_optional_text(field, item->valuestring, max, problem) != 0)
        return -1;
    return own_copy(dst, item->valuestring, problem);
}

/* The metadata member: null (none) or an object of at most 20 string
 * values under 1..40-character keys. */
static int read_metadata(const cJSON *item, pt_payment *out, pt_problem *problem)
{
    const cJSON *e;
    int n;

    if (cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsObject(item)) {
        pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                       "metadata must be an object of string values");
        return -1;
    }
    n = cJSON_GetArraySize(item);
    if (n > PT_METADATA_MAX_KEYS) {
        pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                       "metadata may have at most %d keys (it has %d)", PT_METADATA_MAX_KEYS, n);
        return -1;
    }
    if (n == 0)
        return 0;
    out->metadata = calloc((size_t) n, sizeof *out->metadata);
    if (out->metadata == NULL) {
        pt_problem_set(problem, "internal", "", "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(e, item)
    {
        const char *key = e->string ? e->string : "";
        size_t key_chars;
        int shown;

        if (!pt_utf8_valid(key, strlen(key))) {
            pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                           "metadata keys must be valid UTF-8 text");
            return -1;
        }
        shown = (int) pt_utf8_truncate(key, 48);
        key_chars = pt_utf8_length(key);
        if (key_chars == 0 || key_chars > PT_METADATA_KEY_MAX || pt_utf8_has_control(key)) {
            pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                           "metadata keys must be 1 to %d characters without control "
                           "characters (\"%.*s\" is not)",
                           PT_METADATA_KEY_MAX, shown, key);
            return -1;
        }
        if (!cJSON_IsString(e) || e->valuestring == NULL) {
            pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                           "metadata values must be strings (\"%.*s\" is not)", shown, key);
            return -1;
        }
        if (!pt_utf8_valid(e->valuestring, strlen(e->valuestring)) ||
            pt_utf8_length(e->valuestring) > PT_METADATA_VALUE_MAX ||
            pt_utf8_has_control(e->valuestring)) {
            pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                           "metadata values must be at most %d characters without control "
                           "characters (\"%.*s\" is not)",
                           PT_METADATA_VALUE_MAX, shown, key);
            return -1;
        }
        /* The strict parser refuses duplicate keys already; a tree from
         * elsewhere might still have them. */
        for (int i = 0; i < out->metadata_count; i++) {
            if (strcmp(out->metadata[i].key, key) == 0) {
                pt_problem_set(problem, VALIDATION_FAILED, "metadata",
                               "metadata key \"%.*s\" appears twice", shown, key);
                return -1;
            }
        }
        out->metadata_count++; /* counted first: pt_payment_clear frees it */
        if (own_copy(&out->metadata[out->metadata_count - 1].key, key, problem) != 0 ||
            own_copy(&out->metadata[out->metadata_count - 1].value, e->valuestring, problem) != 0)
            return -1;
    }
    return 0;
}

/* Index of `name` in `list`, or -1. */
static int find_name(const char *name, const char *const *list, int count)
{
    for (int i = 0; i < count; i++) {
        if (strcmp(name, list[i]) == 0)
            return i;
    }
    return -1;
}

/* One known member, by its index in body_fields. */
static int read_member(int field, const cJSON *item, const char *raw, size_t raw_len, bool create,
                       pt_payment *out, pt_problem *problem)
{
    const char *s = cJSON_GetStringValue(item);

    switch (field) {
    case 0:
        return read_amount(item, raw, raw_len, &out->amount, problem);
    case 1:
        if (cJSON_IsNull(item)) {
            pt_problem_set(problem, VALIDATION_FAILED, "currency",
                           "currency is required and cannot be null");
            return -1;
        }
        if (s == NULL) {
            pt_problem_set(problem, VALIDATION_FAILED, "currency",
                           "currency must be a string such as \"EUR\"");
            return -1;
        }
        if (pt_validate_currency(s, problem) != 0)
            return -1;
        memcpy(out->currency, s, 4); /* validated: three letters and NUL */
        return 0;
    case 2:
        return read_name("payer", item, &out->payer, problem);
    case 3:
        return read_name("payee", item, &out->payee, problem);
    case 4:
        return read_optional("reference", item, PT_REFERENCE_MAX, &out->reference, problem);
    case 5:
        return read_optional("description", item, PT_DESCRIPTION_MAX, &out->description, problem);
    case 6:
        if (!pt_method_parse(s, &out->method)) {
            pt_problem_set(problem, VALIDATION_FAILED, "method",
                           "method must be one of card, bank_transfer, cash, wallet, other");
            return -1;
        }
        return 0;
    case 7:
        if (!pt_status_parse(s, &out->status)) {
            pt_problem_set(problem, VALIDATION_FAILED, "status",
                           create ? "status of a new payment must be pending or settled"
                                  : "status must be one of pending, settled, failed, "
                                    "cancelled, refunded");
            return -1;
        }
        if (create && out->status != PT_STATUS_PENDING && out->status != PT_STATUS_SETTLED) {
            pt_problem_set(problem, VALIDATION_FAILED, "status",
                           "status of a new payment must be pending or settled, not %s",
                           pt_status_name(out->status));
            return -1;
        }
        return 0;
    default:
        return read_metadata(item, out, problem);
    }
}

/*
 * The common walk over a body: every member in the order given, each
 * either a known field (validated into `out`), a server-owned one or an
 * unknown one (both refused). Returns the PT_CHANGE_* bits seen.
 */
static int read_body(const cJSON *body, const char *raw, size_t raw_len, bool create,
                     pt_payment *out, unsigned *seen, pt_problem *problem)
{
    const cJSON *item;

    *seen = 0;
    if (!cJSON_IsObject(body)) {
        pt_problem_set(problem, VALIDATION_FAILED, "", "the payment must be a JSON object");
        return -1;
    }
    cJSON_ArrayForEach(item, body)
    {
        const char *name = item->string ? item->string : "";
        int field;

        if (!pt_utf8_valid(name, strlen(name))) {
            pt_problem_set(problem, VALIDATION_FAILED, "", "a field name is not valid UTF-8");
            return -1;
        }
        if (find_name(name, server_fields,
                      (int) (sizeof server_fields / sizeof server_fields[0])) >= 0) {
            pt_problem_set(problem, VALIDATION_FAILED, name,
                           "%s is assigned by the server and cannot be set", name);
            return -1;
        }
        field = find_name(name, body_fields, FIELD_COUNT);
        if (field < 0) {
            int shown = (int) pt_utf8_truncate(name, 63);
            pt_problem_set(problem, VALIDATION_FAILED, name, "unknown field \"%.*s\"", shown, name);
            return -1;
        }
        if (*seen & (1u << field)) {
            pt_problem_set(problem, "malformed_json", name, "%s appears twice", name);
            return -1;
        }
        *seen |= 1u << field;
        if (read_member(field, item, raw, raw_len, create, out, problem) != 0)
            return -1;
    }
    return 0;
}

int pt_validate_create(const cJSON *body, const char *raw, size_t raw_len, pt_payment *out,
                       pt_problem *problem)
{
    static const unsigned required[] = {PT_CHANGE_AMOUNT, PT_CHANGE_CURRENCY, PT_CHANGE_PAYER,
                                        PT_CHANGE_PAYEE};
    unsigned seen;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    out->method = PT_METHOD_OTHER;
    out->status = PT_STATUS_PENDING;
    if (read_body(body, raw, raw_len, true, out, &seen, problem) != 0)
        return -1;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!(seen & required[i])) {
            int field = 0;
            while ((1u << field) != required[i])
                field++;
            pt_problem_set(problem, VALIDATION_FAILED, body_fields[field], "%s is required",
                           body_fields[field]);
            return -1;
        }
    }
    return 0;
}

int pt_validate_patch(const cJSON *body, const char *raw, size_t raw_len, pt_payment *out,
                      unsigned *changes, pt_problem *problem)
{
    unsigned seen = 0;
    int rc;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    rc = read_body(body, raw, raw_len, false, out, &seen, problem);
    if (changes)
        *changes = rc == 0 ? seen : 0;
    return rc;
}

/* ---- applying a PATCH -------------------------------------------------- */

static bool same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Replaces *dst with a copy of src (NULL allowed); false when out of
 * memory, leaving *dst as it was. */
static bool replace_text(char **dst, const char *src)
{
    char *copy = NULL;

    if (src != NULL) {
        copy = strdup(src);
        if (copy == NULL)
            return false;
    }
    free(*dst);
    *dst = copy;
    return true;
}

/* Replaces the metadata of `dst` with a copy of `src`'s. */
static bool replace_metadata(pt_payment *dst, const pt_payment *src)
{
    pt_payment tmp = {0};
    pt_payment old = {0};

    /* Copy through a scratch payment holding only the metadata, so the
     * deep-copy code is not written twice. */
    tmp.metadata = src->metadata;
    tmp.metadata_count = src->metadata_count;
    if (pt_payment_copy(&old, &tmp) != 0)
        return false;
    for (int i = 0; i < dst->metadata_count; i++) {
        free(dst->metadata[i].key);
        free(dst->metadata[i].value);
    }
    free(dst->metadata);
    dst->metadata = old.metadata;
    dst->metadata_count = old.metadata_count;
    return true;
}

int pt_validate_apply(pt_payment *current, const pt_payment *patch, unsigned changes, int *changed,
                      pt_problem *problem)
{
    unsigned differ = 0;
    pt_payment next;
    bool ok = true;

    if (current == NULL || patch == NULL)
        return -1;
    if (changed)
        *changed = 0;

    /* Which requested fields would actually change: a field set to its
     * current value is no change, so it needs no permission either. */
    if ((changes & PT_CHANGE_AMOUNT) && patch->amount != current->amount)
        differ |= PT_CHANGE_AMOUNT;
    if ((changes & PT_CHANGE_CURRENCY) && strcmp(patch->currency, current->currency) != 0)
        differ |= PT_CHANGE_CURRENCY;
    if ((changes & PT_CHANGE_PAYER) && !same_text(patch->payer, current->payer))
        differ |= PT_CHANGE_PAYER;
    if ((changes & PT_CHANGE_PAYEE) && !same_text(patch->payee, current->payee))
        differ |= PT_CHANGE_PAYEE;
    if ((changes & PT_CHANGE_REFERENCE) && !same_text(patch->reference, current->reference))
        differ |= PT_CHANGE_REFERENCE;
    if ((changes & PT_CHANGE_DESCRIPTION) && !same_text(patch->description, current->description))
        differ |= PT_CHANGE_DESCRIPTION;
    if ((changes & PT_CHANGE_METHOD) && patch->method != current->method)
        differ |= PT_CHANGE_METHOD;
    if ((changes & PT_CHANGE_STATUS) && patch->status != current->status)
        differ |= PT_CHANGE_STATUS;
    if ((changes & PT_CHANGE_METADATA) && !pt_payment_metadata_equal(patch, current))
        differ |= PT_CHANGE_METADATA;

    /* The money and the parties are fixed once a payment leaves pending. */
    if (current->status != PT_STATUS_PENDING) {
        for (int i = 0; i < 4; i++) {
            if (differ & (1u << i)) {
                pt_problem_set(problem, VALIDATION_FAILED, body_fields[i],
                               "%s can change only while the payment is pending (it is %s)",
                               body_fields[i], pt_status_name(current->status));
                return -1;
            }
        }
    }
    if ((differ & PT_CHANGE_STATUS) && !pt_status_can_change(current->status, patch->status)) {
        pt_problem_set(problem, "invalid_transition", "status",
                       "status cannot change from %s to %s", pt_status_name(current->status),
                       pt_status_name(patch->status));
        return -1;
    }
    if (differ == 0)
        return 0;

    /* Build the result aside and swap it in, so a failed allocation
     * leaves `current` exactly as it was. */
    if (pt_payment_copy(&next, current) != 0) {
        pt_problem_set(problem, "internal", "", "out of memory");
        return -1;
    }
    if (differ & PT_CHANGE_AMOUNT)
        next.amount = patch->amount;
    if (differ & PT_CHANGE_CURRENCY)
        memcpy(next.currency, patch->currency, sizeof next.currency);
    if (differ & PT_CHANGE_PAYER)
        ok = ok && replace_text(&next.payer, patch->payer);
    if (differ & PT_CHANGE_PAYEE)
        ok = ok && replace_text(&next.payee, patch->payee);
    if (differ & PT_CHANGE_REFERENCE)
        ok = ok && replace_text(&next.reference, patch->reference);
    if (differ & PT_CHANGE_DESCRIPTION)
        ok = ok && replace_text(&next.description, patch->description);
    if (differ & PT_CHANGE_METHOD)
        next.method = patch->method;
    if (differ & PT_CHANGE_STATUS)
        next.status = patch->status;
    if (differ & PT_CHANGE_METADATA)
        ok = ok && replace_metadata(&next, patch);
    if (!ok) {
        pt_payment_clear(&next);
        pt_problem_set(problem, "internal", "", "out of memory");
        return -1;
    }
    pt_payment_clear(current);
    *current = next;
    if (changed)
        *changed = 1;
    return 0;
}

/* ---- refunds (v1.1) ----------------------------------------------------- */

static int refund_member(const cJSON *item, const char *raw, size_t raw_len, pt_refund_request *out,
                         pt_problem *problem)
{
    const char *name = item->string ? item->string : "";
    if (strcmp(name, "amount") == 0) {
        out->has_amount = true;
        return read_amount(item, raw, raw_len, &out->amount, problem);
    }
    if (strcmp(name, "reason") == 0) {
        if (!pt_reason_parse(cJSON_GetStringValue(item), &out->reason)) {
            pt_problem_set(problem, VALIDATION_FAILED, "reason",
                           "reason must be requested_by_customer, duplicate, fraudulent or other");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "note") == 0) {
        if (cJSON_IsNull(item))
            return 0;
        if (!cJSON_IsString(item)) {
            pt_problem_set(problem, VALIDATION_FAILED, "note", "note must be a string or null");
            return -1;
        }
        if (pt_validate_optional_text("note", item->valuestring, PT_REFUND_NOTE_MAX, problem) < 0)
            return -1;
        out->note = strdup(item->valuestring);
        if (!out->note) {
            pt_problem_set(problem, "internal", "", "out of memory");
            return -1;
        }
        return 0;
    }
    if (!pt_utf8_valid(name, strlen(name))) {
        pt_problem_set(problem, VALIDATION_FAILED, "", "a field name is not valid UTF-8");
        return -1;
    }
    int shown = (int) pt_utf8_truncate(name, 63);
    pt_problem_set(problem, VALIDATION_FAILED, name,
                   "unknown field \"%.*s\" (a refund takes amount, reason and note)", shown, name);
    return -1;
}

int pt_validate_refund(const cJSON *body, const char *raw, size_t raw_len, pt_refund_request *out,
                       pt_problem *problem)
{
    const cJSON *item;

    memset(out, 0, sizeof *out);
    out->reason = PT_REASON_OTHER;
    if (!cJSON_IsObject(body)) {
        pt_problem_set(problem, "malformed_json", "", "the body must be a JSON object");
        return -1;
    }
    cJSON_ArrayForEach(item, body)
    {
        if (refund_member(item, raw, raw_len, out, problem) < 0) {
            pt_refund_request_clear(out);
            return -1;
        }
    }
    return 0;
}

void pt_refund_request_clear(pt_refund_request *r)
{
    free(r->note);
    memset(r, 0, sizeof *r);
}
