/*
 * tui.h - paytrackr-tui internals: one header, a section per file.
 *
 * The TUI is one thread around one lws client context. The WebSocket
 * (conn.c), the occasional HTTP request (http.c), stdin (main.c adopts it
 * as a raw file descriptor) and the timers all run in that loop, so no call
 * here blocks and nothing needs a lock. Every function in this program runs
 * on that thread, but for resolve.c's name lookups, which run on threads of
 * their own and share only their job (under its lock); signal handlers only
 * set flags and call lws_cancel_service().
 */
#ifndef PT_TUI_H
#define PT_TUI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "cursor.h"
#include "payment.h"

#define TUI_PROGRAM   "paytrackr-tui"
#define TUI_MIN_COLS  80
#define TUI_MIN_LINES 24
#define TUI_ERROR_MAX 200

/* ------------------------------------------------------------------ */
/* args.c: command line and environment */

struct args {
    char *url;     /* as given: ws://host[:port][/prefix] or wss://... */
    char *token;   /* NULL when none (auth off on the server) */
    char *ca_file; /* NULL: the system's CA store */
    bool read_only;
    /* parsed from url */
    bool tls;
    char *host;
    int port;
    char *prefix; /* path prefix without a trailing '/', often "" */
};

/* Parses argv and the environment into *out. Returns 0 to run, 1 when
 * --help or --version was printed (exit 0), -1 with *cause (caller frees)
 * for a usage error. *out is always safe to pass to args_free(). */
int args_parse(int argc, char **argv, struct args *out, char **cause);
void args_free(struct args *a);
/* Parses a ws:// or wss:// URL into a's tls/host/port/prefix; 0 or -1. */
int args_parse_url(struct args *a, const char *url, char **cause);

/* ------------------------------------------------------------------ */
/* util.c: time, text, identifiers */

int64_t util_mono_ms(void);
int64_t util_wall_ms(void);
/* An RFC 3339 date-time as the protocol defines it (pt_time_parse) to
 * milliseconds since the epoch; 0 or -1. */
int util_parse_time(const char *text, int64_t *ms_out);
/* Milliseconds since the epoch to "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void util_format_time(int64_t ms, char *buf, size_t cap);
/* Local time for display: "MM-DD HH:MM:SS" (short) or with the year. */
void util_display_time(int64_t ms, bool with_year, char *buf, size_t cap);
/* A random version 4 UUID in canonical text. */
void util_uuid4(char out[PT_ID_LEN + 1]);
/* malloc'd printf; NULL on allocation failure. */
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strdup that accepts NULL. */
char *util_strdup(const char *s);
/* Copies at most cap-1 bytes without splitting a UTF-8 sequence. */
void util_copy(char *dst, size_t cap, const char *src);

/* ------------------------------------------------------------------ */
/* resolve.c: the server's host name looked up off the loop's thread */

#define RESOLVE_ADDRS_MAX 8  /* addresses kept per name, tried in order */
#define RESOLVE_ADDR_LEN  46 /* INET6_ADDRSTRLEN */

struct lws_context;
struct resolve_job;

/* True for a numeric IPv4 or IPv6 address: nothing to look up. */
bool resolve_is_numeric(const char *host);
/* Starts looking `host` up on a new thread, which wakes the loop
 * (lws_cancel_service) when done. Returns the job (release it with
 * resolve_release), or NULL when no thread could start. */
struct resolve_job *resolve_start(struct lws_context *ctx, const char *host);
/* 0 while the lookup runs; 1 when done, with *n numeric addresses in
 * addrs (getaddrinfo's order) or *n == 0 and the reason in why. */
int resolve_take(struct resolve_job *j, char addrs[][RESOLVE_ADDR_LEN], int *n, char *why,
                 size_t cap);
/* The loop lets go of the job, done or not; a running thread then frees
 * it and no longer touches the context. NULL is allowed. */
void resolve_release(struct resolve_job *j);

/* ------------------------------------------------------------------ */
/* conn.c: the WebSocket, its outgoing queue and request correlation */

enum conn_state {
    CONN_OFFLINE,
    CONN_CONNECTING,
    CONN_LIVE,
};

/* What a request was for; results come back to app_on_result(). */
enum req_kind {
    REQ_LIST_RELOAD,
    REQ_LIST_DOWN,
    REQ_LIST_UP,
    REQ_METER,
    REQ_CREATE,
    REQ_UPDATE,
    REQ_PROBE,
    REQ_DELETE, /* HTTP */
    REQ_AUDIT,  /* HTTP */
};
/* The list kinds are the first three. */
#define REQ_LIST_KINDS (REQ_LIST_UP + 1)

struct lws_context;
struct lws_protocols;

extern const struct lws_protocols conn_protocol;

/* Remembers the context and settings; no connection yet. */
void conn_init(struct lws_context *ctx, const struct args *args);
/* Starts connecting (now), if not already connected or connecting. */
void conn_start(void);
/* Closes the socket and cancels timers, before the context goes. */
void conn_shutdown(void);
enum conn_state conn_state(void);
const char *conn_state_name(enum conn_state s);
/* Sends {"type":type,"request_id":...} merged with the members of `msg`
 * (consumed). The answer arrives in app_on_result(kind, tag, ...), or with
 * status 0 if the connection drops first. Returns 0, or -1 when offline or
 * the queue is full (msg freed, nothing will arrive). */
int conn_request(const char *type, cJSON *msg, enum req_kind kind, uint64_t tag);
/* Milliseconds until the next reconnect attempt, or -1. */
int64_t conn_retry_in_ms(void);
/* The numeric address the stream connects (or last connected) to, for
 * other requests to the same server; NULL before a lookup answered. */
const char *conn_address(void);

/* ------------------------------------------------------------------ */
/* http.c: one-shot HTTP requests (DELETE, the audit trail) */

extern const struct lws_protocols http_protocol;

void http_init(struct lws_context *ctx, const struct args *args);
/* Starts `method path`; the answer arrives in app_on_result() with the
 * HTTP status and parsed JSON body (or status 0 and NULL on failure).
 * Returns 0 or -1 (nothing will arrive). */
int http_request(const char *method, const char *path, enum req_kind kind, uint64_t tag);

/* ------------------------------------------------------------------ */
/* model.c: the loaded window of payments, paging, events */

enum sort_col {
    SORT_TIME,
    SORT_PAYER,
    SORT_PAYEE,
    SORT_AMOUNT,
    SORT_CURRENCY,
    SORT_STATUS,
    SORT_REFERENCE,
    SORT_COUNT
};

#define MODEL_PAGE       200   /* rows per list page while browsing */
#define MODEL_WINDOW_MAX 3000  /* rows kept in time order; the rest is refetched */
#define MODEL_LOCAL_MAX  5000  /* rows sorted locally for other columns */
#define MODEL_PAUSE_MAX  10000 /* events held while paused */
#define MODEL_METER_MIN  60    /* minutes in the sparkline */
#define MODEL_RECENT_MAX 2048  /* recent events replayed over list answers */

struct filter {
    char text[128];   /* q: substring of payer, payee or reference */
    int status;       /* -1 any, else pt_status */
    char currency[4]; /* "" any */
};

struct row {
    pt_payment p;
    int64_t created_ms;
    int64_t hl_until; /* monotonic ms; highlighted while now is before */
    bool hl_new;
    /* created_at to the microsecond when a page ended on this row (from its
     * next_cursor), else "": paging resumes exactly from such a row, even
     * among thousands of payments created in the same millisecond. */
    char key_time[PT_CURSOR_TIME_MAX];
};

struct pending_event {
    int type; /* 0 created, 1 updated, 2 deleted */
    int64_t seq;
    pt_payment p;
};

struct model {
    struct row **rows;
    size_t n, cap;
    struct filter filter;
    enum sort_col sort;
    bool desc;
    bool at_top, at_bottom; /* nothing more above / below the window */
    bool loaded;            /* a first page arrived for this view */
    size_t sel, top;
    int page_h;
    uint64_t gen; /* bumped when the window is replaced: older answers are stale */
    bool busy_reload, busy_down, busy_up;
    bool want_bottom; /* the reload in flight anchors at the bottom (G) */
    char *down_cursor, *up_cursor;
    int64_t last_seq; /* -1 until an event or a head is known */
    bool paused;
    struct pending_event *pq;
    size_t pq_n, pq_cap;
    bool pq_overflow;
    size_t pause_count;
    /* The last MODEL_RECENT_MAX events, so that a list answer (a snapshot
     * taken when the server ran its query) can be brought up to date with
     * the events that arrived while it was in flight. */
    struct pending_event *recent;          /* ring, allocated on first use */
    uint64_t recent_total;                 /* events ever stored in the ring */
    uint64_t list_sent_at[REQ_LIST_KINDS]; /* recent_total when each list kind was sent */
    uint64_t pause_from;                   /* recent_total when the pause began */
    /* meter: payments per minute over the last hour */
    int64_t meter_min[MODEL_METER_MIN];
    int meter_cnt[MODEL_METER_MIN];
    int64_t meter_t0; /* created_at boundary between query and live counting */
    bool meter_ready;
    uint64_t meter_gen;
    int meter_pages;
    int above_new;     /* created events above a window that does not show the top */
    long pending_move; /* cursor movement past the loaded rows, applied as pages arrive */
};

void model_init(struct model *m);
void model_free(struct model *m);
/* Replaces the window with a fresh first page (or last page when
 * `bottom`), keeping the selected payment when it shows up again. */
void model_reload(struct model *m, bool bottom);
/* The JSON event message's payload; applies it (or queues it when paused). */
void model_on_event(struct model *m, const cJSON *msg);
/* A list answer for kind/tag. */
void model_on_list(struct model *m, enum req_kind kind, uint64_t tag, int status,
                   const cJSON *body);
/* The answer of a create or update carrying a payment. */
void model_apply_payment(struct model *m, const pt_payment *p, bool highlight);
void model_remove_id(struct model *m, const char *id);
void model_set_page(struct model *m, int page_h);
void model_move(struct model *m, long delta);
void model_home(struct model *m);
void model_end(struct model *m);
struct row *model_selected(struct model *m);
/* Toggles pause; on resume applies what was held. */
void model_toggle_pause(struct model *m);
void model_set_sort(struct model *m, enum sort_col col, bool desc);
void model_set_filter(struct model *m, const struct filter *f);
bool model_matches(const struct model *m, const pt_payment *p);
/* Starts fetches the cursor position calls for (prefetch near the ends). */
void model_maybe_fetch(struct model *m);
/* Starts the meter query (last hour) after (re)subscribing. */
void model_meter_start(struct model *m);
/* Fills buckets[0..MODEL_METER_MIN-1], oldest first, for the hour ending now. */
void model_meter(const struct model *m, int *buckets);
const char *model_sort_name(enum sort_col c);
/* Drops the window and held events after the view changed completely. */
void model_clear(struct model *m);

/* ------------------------------------------------------------------ */
/* form.c: the new-payment form and single-line inputs */

enum form_field {
    FF_PAYER,
    FF_PAYEE,
    FF_AMOUNT,
    FF_CURRENCY,
    FF_METHOD,
    FF_REFERENCE,
    FF_DESCRIPTION,
    FF_COUNT
};

#define FORM_TEXT_MAX 4096 /* bytes per field: above every contract limit */

struct line {
    char buf[FORM_TEXT_MAX];
    size_t len;
    size_t pos; /* byte offset of the cursor */
    bool fresh; /* a prefilled value: the first typed character replaces it */
};

struct form {
    struct line f[FF_COUNT];
    char err[FF_COUNT][TUI_ERROR_MAX];
    bool touched[FF_COUNT];
    int cur;
    bool busy; /* submitted, waiting for the answer */
    uint64_t tag;
    char banner[TUI_ERROR_MAX]; /* a problem not tied to a field */
    char idem_key[PT_ID_LEN + 1];
};

const char *form_label(int field);
void form_open(struct form *fm, const char *last_currency);
/* Validates one field into fm->err; returns 0 when it is fine. */
int form_check(struct form *fm, int field);
/* Validates every field; returns the first invalid one or -1. */
int form_check_all(struct form *fm);
/* Builds the create message members ({"idempotency_key","payment"}), or
 * NULL when a field is invalid (errors set). */
cJSON *form_build(struct form *fm);
/* Edits a line with a key (wide char or KEY_*); true when consumed. */
bool line_key(struct line *l, int is_key, unsigned int ch);
void line_set(struct line *l, const char *text, bool fresh);

/* ------------------------------------------------------------------ */
/* view.c: drawing */

void view_init(void);
void view_draw(void);
/* Characters of the sparkline for this terminal (UTF-8 blocks or ASCII). */
bool view_unicode(void);

/* ------------------------------------------------------------------ */
/* keys.c: what each key does in each mode */

void keys_handle(int is_key, unsigned int ch);

/* ------------------------------------------------------------------ */
/* main.c: the application state and the callbacks other files raise */

enum ui_mode {
    MODE_TABLE,
    MODE_DETAIL,
    MODE_FORM,
    MODE_FILTER,
    MODE_STATUS,
    MODE_CONFIRM_DELETE,
    MODE_HELP,
};

struct audit_line {
    char text[256];
    int status; /* pt_status or -1 */
};

struct tui {
    struct args args;
    struct model model;
    enum ui_mode mode;
    struct form form;
    struct line filter_line;
    char filter_err[TUI_ERROR_MAX];
    /* status picker */
    pt_status status_choices[PT_STATUS_COUNT];
    int status_n, status_cur;
    char target_id[PT_ID_LEN + 1]; /* payment of the detail pane / picker / delete */
    int64_t target_version;
    /* detail pane */
    struct audit_line *audit;
    int audit_n;
    bool audit_loading;
    char audit_err[TUI_ERROR_MAX];
    int detail_scroll;
    uint64_t audit_tag;
    /* messages */
    char message[TUI_ERROR_MAX];
    bool message_is_error;
    int64_t message_until;
    char last_error[TUI_ERROR_MAX];
    bool read_only;      /* --read-only or a 403 from the server */
    bool read_only_seen; /* the server said so */
    char last_currency[4];
    bool dirty;
    bool quit;
    bool have_colors;
    int64_t start_mono;
    bool timing_written;
    uint64_t next_tag;
};

extern struct tui tui;

/* Asks for a redraw at the next turn of the loop. */
void app_dirty(void);
/* Shows a transient message on the message line (errors also become the
 * status bar's last error). */
void app_message(bool is_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Callbacks from conn.c and http.c. */
void app_on_state(enum conn_state s, const char *why);
void app_on_subscribed(int64_t head);
void app_on_event(const cJSON *msg);
void app_on_result(enum req_kind kind, uint64_t tag, int status, const cJSON *body);
void app_on_server_error(const char *code, const char *message);
/* The `after` to resume with: -1 for null. */
int64_t app_resume_after(void);
/* Ends the program at the next loop turn. */
void app_quit(void);
/* Writes the startup timing once, when rows are first on screen. */
void app_first_rows_drawn(void);
/* The text of a contract error body, "code: message", into buf. */
void app_error_text(const cJSON *body, int status, char *buf, size_t cap);

#endif
