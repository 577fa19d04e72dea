/*
 * wsmsg.h - the pure parts of reading a client message on the stream.
 *
 * Owns: the subscriber's filter (struct stream_filter) and how a
 * subscribe message's "filter" and a list message's "query" are read and
 * checked. Nothing here touches a connection, the database or the loop:
 * stream.c answers, and the fuzz target drives these same functions.
 */
#ifndef PT_WSMSG_H
#define PT_WSMSG_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Most members a list message's "query" may have. */
#define WSMSG_LIST_ARGS_MAX 32
/* Most bytes of a payer or payee in a filter (200 characters of UTF-8). */
#define WSMSG_FILTER_TEXT_MAX 800

/* What a subscriber asked for; a NULL field matches anything. Compared
 * exactly with the payment's fields, by stream.c and in the backlog's
 * SQL. */
struct stream_filter {
    char *status;
    char *currency;
    char *payer;
    char *payee;
};

void wsmsg_filter_free(struct stream_filter *f);

/*
 * Reads a subscribe message's "filter" (absent or null: every event).
 * Returns 0 with *out set (NULL for every event; the caller frees it with
 * wsmsg_filter_free), -1 with *bad saying what is wrong, or -2 when
 * memory ran out.
 */
int wsmsg_read_filter(const cJSON *filter, struct stream_filter **out, const char **bad);

/* A list message's "query" as the key/value pairs GET /v1/payments takes.
 * keys and values point into the message tree or into `numbers`. */
struct wsmsg_list_args {
    const char *keys[WSMSG_LIST_ARGS_MAX];
    const char *values[WSMSG_LIST_ARGS_MAX];
    char numbers[WSMSG_LIST_ARGS_MAX][32];
    int n;
};

/*
 * Reads a list message's "query" (absent or null: no parameters) into
 * `out`. Returns 0; -1 when "query" is not an object (a protocol error);
 * -2 when a member cannot be a query parameter, with *bad the message and
 * *field the member's name or NULL (the answer is a 400 result).
 */
int wsmsg_read_list_args(const cJSON *query, struct wsmsg_list_args *out, const char **bad,
                         const char **field);

#endif
