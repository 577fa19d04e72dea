/*
 * test-tui.c - the TUI's modules that draw nothing and open no socket:
 * util.c (times, text), args.c (the URL), form.c (line editing, amounts
 * in major units per currency) and model.c (the live filter and events),
 * with the connection and the application stubbed below.
 */
#include <string.h>

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>

#include "tap.h"
#include "tui.h"
#include "utf8.h"

/* ---- stubs for what model.c calls outside itself ---- */

struct tui tui;

/* The last list request model.c sent, as JSON text ("" for none). */
static char last_request[4096];

int conn_request(const char *type, cJSON *msg, enum req_kind kind, uint64_t tag)
{
    char *text = cJSON_PrintUnformatted(msg);

    (void) kind;
    (void) tag;
    snprintf(last_request, sizeof last_request, "%s %s", type, text ? text : "");
    cJSON_free(text);
    cJSON_Delete(msg);
    return 0;
}

enum conn_state conn_state(void)
{
    return CONN_LIVE;
}

void app_dirty(void)
{
}

void app_message(bool is_error, const char *fmt, ...)
{
    (void) is_error;
    (void) fmt;
}

void app_error_text(const cJSON *body, int status, char *buf, size_t cap)
{
    (void) body;
    snprintf(buf, cap, "status %d", status);
}

/* ---- util.c ---- */

static void util_tests(tap *t)
{
    int64_t ms = 0;
    char buf[40];

    tap_ok(t, util_parse_time("2026-11-24T12:00:00.123Z", &ms) == 0 && ms == 1795521600123,
           "a server timestamp in milliseconds");
    tap_ok(t, util_parse_time("2026-11-24T13:00:00.9999+01:00", &ms) == 0 && ms == 1795521600999,
           "an offset applies and the fraction is cut to the millisecond");
    tap_ok(t, util_parse_time("2026-02-30T00:00:00Z", &ms) != 0, "30 February is refused");
    tap_ok(t, util_parse_time("yesterday", &ms) != 0, "text is refused");
    util_format_time(1795521600123, buf, sizeof buf);
    tap_is_str(t, buf, "2026-11-24T12:00:00.123Z", "formatting a time");
    util_copy(buf, 4, "a\xc3\xa9z");
    tap_is_str(t, buf, "a\xc3\xa9", "util_copy keeps a 2-byte character whole");
    util_copy(buf, 3, "a\xc3\xa9z");
    tap_is_str(t, buf, "a", "util_copy drops a character that does not fit whole");
}

/* ---- args.c ---- */

static void url_is(tap *t, const char *url, bool tls, const char *host, int port,
                   const char *prefix)
{
    struct args a;
    char *cause = NULL;

    memset(&a, 0, sizeof a);
    if (tap_ok(t, args_parse_url(&a, url, &cause) == 0, "%s parses", url))
        tap_ok(t,
               a.tls == tls && strcmp(a.host, host) == 0 && a.port == port &&
                   strcmp(a.prefix, prefix) == 0,
               "%s is tls=%d host=%s port=%d prefix='%s'", url, tls, host, port, prefix);
    free(cause);
    args_free(&a);
}

static void url_bad(tap *t, const char *url)
{
    struct args a;
    char *cause = NULL;

    memset(&a, 0, sizeof a);
    tap_ok(t, args_parse_url(&a, url, &cause) != 0 && cause != NULL, "%s is refused", url);
    free(cause);
    args_free(&a);
}

static void args_tests(tap *t)
{
    url_is(t, "ws://127.0.0.1:8080", false, "127.0.0.1", 8080, "");
    url_is(t, "wss://pay.example.com", true, "pay.example.com", 443, "");
    url_is(t, "ws://pay.example.com/base/", false, "pay.example.com", 80, "/base");
    url_is(t, "wss://[::1]:8443", true, "::1", 8443, "");
    url_bad(t, "http://pay.example.com");
    url_bad(t, "ws://:8080");
    url_bad(t, "ws://host:0");
    url_bad(t, "ws://host:65536");
    url_bad(t, "ws://[::1");
}

/* ---- form.c ---- */

/* Types UTF-8 text as the terminal delivers it: one code point a key. */
static void type_text(struct line *l, const char *s)
{
    uint32_t cp;
    size_t n;

    for (; *s != '\0'; s += n) {
        n = pt_utf8_decode(s, strlen(s), &cp);
        if (n == 0)
            return;
        line_key(l, 0, cp);
    }
}

/* Fills the form, builds the message; the amount sent in minor units, or
 * -1 when the form refused it. */
static int64_t form_amount(const char *amount, const char *currency)
{
    struct form fm;
    cJSON *msg;
    int64_t minor = -1;

    form_open(&fm, "EUR");
    line_set(&fm.f[FF_PAYER], "ACME GmbH", false);
    line_set(&fm.f[FF_PAYEE], "Globex Ltd", false);
    line_set(&fm.f[FF_AMOUNT], amount, false);
    line_set(&fm.f[FF_CURRENCY], currency, false);
    msg = form_build(&fm);
    if (msg != NULL) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(msg, "payment");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "amount");
        if (!cJSON_IsRaw(a) || a->valuestring == NULL)
            minor = -2;
        else
            minor = strtoll(a->valuestring, NULL, 10);
        cJSON_Delete(msg);
    }
    return minor;
}

static void form_tests(tap *t)
{
    struct line l;
    struct form fm;

    tap_is_i64(t, form_amount("12.50", "EUR"), 1250, "12.50 EUR is 1250 cents");
    tap_is_i64(t, form_amount("1250", "JPY"), 1250, "1250 JPY is 1250 (exponent 0)");
    tap_is_i64(t, form_amount("1,250", "JPY"), 1250, "1,250 JPY with grouping");
    tap_is_i64(t, form_amount("1.250", "KWD"), 1250, "1.250 KWD is 1250 fils (exponent 3)");
    tap_is_i64(t, form_amount("12.5", "KWD"), 12500, "12.5 KWD is 12500 fils");
    tap_is_i64(t, form_amount("12.50", "kwd"), 12500, "the currency is read upper-cased");
    tap_is_i64(t, form_amount("1.5", "JPY"), -1, "1.5 JPY is refused");
    tap_is_i64(t, form_amount("1.2345", "KWD"), -1, "4 decimals of KWD are refused");

    form_open(&fm, "KWD");
    tap_is_str(t, fm.f[FF_CURRENCY].buf, "KWD", "the form starts with the last currency");
    tap_ok(t, fm.f[FF_CURRENCY].fresh, "a prefilled currency is replaced by typing");
    type_text(&fm.f[FF_CURRENCY], "JPY");
    tap_is_str(t, fm.f[FF_CURRENCY].buf, "JPY", "typing replaced the prefilled value");
    tap_ok(t, strlen(fm.idem_key) == PT_ID_LEN, "each form gets an idempotency key");

    memset(&l, 0, sizeof l);
    type_text(&l, "M\xc3\xbcller");
    tap_is_str(t, l.buf, "M\xc3\xbcller", "typing UTF-8 bytes");
    for (int i = 0; i < 4; i++)
        line_key(&l, 1, KEY_LEFT);
    line_key(&l, 1, KEY_BACKSPACE);
    tap_is_str(t, l.buf, "Mller", "backspace removes the whole 2-byte character");
    tap_is_i64(t, (int64_t) l.pos, 1, "and the cursor is after M");
}

/* ---- model.c: the live filter ---- */

/* A created event for a payment with this payer and currency. */
static cJSON *created_event(int64_t seq, const char *id, const char *payer, const char *currency)
{
    char text[1024];

    snprintf(text, sizeof text,
             "{\"type\":\"event\",\"event\":\"payment.created\",\"seq\":%lld,"
             "\"at\":\"2026-11-24T12:00:00.000Z\",\"payment\":{\"id\":\"%s\",\"amount\":1250,"
             "\"currency\":\"%s\",\"payer\":\"%s\",\"payee\":\"Globex\",\"reference\":null,"
             "\"description\":null,\"method\":\"other\",\"status\":\"pending\",\"metadata\":{},"
             "\"version\":1,\"created_at\":\"2026-11-24T12:00:00.000Z\","
             "\"updated_at\":\"2026-11-24T12:00:00.000Z\"}}",
             (long long) seq, id, currency, payer);
    return cJSON_Parse(text);
}

static void feed(struct model *m, int64_t seq, const char *id, const char *payer,
                 const char *currency)
{
    cJSON *ev = created_event(seq, id, payer, currency);

    model_on_event(m, ev);
    cJSON_Delete(ev);
}

static void model_tests(tap *t)
{
    struct model m;
    struct filter f;
    cJSON *page = cJSON_Parse("{\"data\":[],\"has_more\":false,\"next_cursor\":null}");

    model_init(&m);
    memset(&f, 0, sizeof f);
    f.status = -1;
    snprintf(f.text, sizeof f.text, "%s",
             "\xc3\xa9"
             "clair");
    model_set_filter(&m, &f);
    tap_ok(t,
           strstr(last_request, "\"q\":\"\xc3\xa9"
                                "clair\"") != NULL,
           "the reload asks the server with q: %s", last_request);
    model_on_list(&m, REQ_LIST_RELOAD, m.gen, 200, page);
    tap_is_i64(t, (int64_t) m.n, 0, "the filtered list is empty");

    feed(&m, 1, "00000000-0000-4000-8000-000000000001",
         "\xc3\x89"
         "CLAIR SA",
         "EUR");
    tap_is_i64(t, (int64_t) m.n, 1,
               "a live payment by \xc3\x89"
               "CLAIR shows under "
               "\xc3\xa9"
               "clair");
    feed(&m, 2, "00000000-0000-4000-8000-000000000002", "ACME", "EUR");
    tap_is_i64(t, (int64_t) m.n, 1, "one that does not match stays out");

    pt_payment p = {0};
    snprintf(p.currency, sizeof p.currency, "KWD");
    p.payer = "Caf\xc3\xa9 M\xc3\x9cLLER";
    p.payee = "x";
    p.status = PT_STATUS_PENDING;
    snprintf(m.filter.text, sizeof m.filter.text, "%s", "m\xc3\xbcller");
    tap_ok(t, model_matches(&m, &p), "q folds \xc3\x9c like the server");
    snprintf(m.filter.text, sizeof m.filter.text, "%s", "MUELLER");
    tap_ok(t, !model_matches(&m, &p), "but does not transliterate");
    m.filter.text[0] = '\0';
    snprintf(m.filter.currency, sizeof m.filter.currency, "KWD");
    tap_ok(t, model_matches(&m, &p), "currency filter matches");
    snprintf(m.filter.currency, sizeof m.filter.currency, "EUR");
    tap_ok(t, !model_matches(&m, &p), "currency filter excludes");
    m.filter.currency[0] = '\0';
    m.filter.status = PT_STATUS_SETTLED;
    tap_ok(t, !model_matches(&m, &p), "status filter excludes");
    cJSON_Delete(page);
    model_free(&m);
}

int main(void)
{
    tap t = {0};

    util_tests(&t);
    args_tests(&t);
    form_tests(&t);
    model_tests(&t);
    return tap_done(&t);
}
