/*
 * fuzz-cursor.c - libFuzzer target for the opaque list cursor:
 * query_cursor_decode on client text, and the round trip through
 * query_cursor_encode.
 *
 * Input: the first byte picks the order (bit 0: asc), the rest is the
 * cursor text as the client sends it. Checks that:
 * - a refusal leaves the query without a position;
 * - an accepted cursor was made for that order (the other order refuses
 *   it), holds a valid time and UUID, and re-encodes to a cursor that
 *   decodes to the same position (and is a fixed point from then on);
 * - the text, read as "<time>|<uuid>" (a position the server might hold),
 *   encodes to a cursor that decodes back exactly when both parts are
 *   valid, and is refused otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "query.h"

#define CURSOR_TEXT_MAX 160 /* what query_cursor_encode can write, and then some */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fresh(struct list_query *q, bool asc)
{
    memset(q, 0, sizeof *q);
    q->asc = asc;
    q->limit = QUERY_LIMIT_DEFAULT;
}

/* Encodes a position and checks it decodes to the same one, in its own
 * order only. Returns the text in `out`. */
static void check_encode(bool asc, const char *time, const char *id, char *out, size_t cap)
{
    struct list_query q;

    query_cursor_encode(asc, time, id, out, cap);
    if (strlen(out) >= cap)
        abort();
    fresh(&q, asc);
    if (query_cursor_decode(out, &q) != 0 || !q.has_cursor || strcmp(q.cursor_time, time) != 0 ||
        strcmp(q.cursor_id, id) != 0)
        abort();
    fresh(&q, !asc);
    if (query_cursor_decode(out, &q) != -1 || q.has_cursor)
        abort();
}

/* Treats `text` as "<time>|<id>" and encodes it when both are valid. */
static void check_position(bool asc, const char *text)
{
    const char *bar = strchr(text, '|');
    char time[QUERY_TIME_MAX];
    char cursor[CURSOR_TEXT_MAX];
    size_t tlen;

    if (bar == NULL)
        return;
    tlen = (size_t) (bar - text);
    if (tlen >= sizeof time)
        return;
    memcpy(time, text, tlen);
    time[tlen] = '\0';
    if (!pt_time_parse(time, NULL) || !query_valid_uuid(bar + 1))
        return;
    check_encode(asc, time, bar + 1, cursor, sizeof cursor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct list_query q;
    bool asc;
    char *text;

    if (size < 1)
        return 0;
    asc = data[0] & 1;
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    fresh(&q, asc);
    if (query_cursor_decode(text, &q) == 0) {
        struct list_query other;
        char again[CURSOR_TEXT_MAX];

        if (!q.has_cursor || !pt_time_parse(q.cursor_time, NULL) || !query_valid_uuid(q.cursor_id))
            abort();
        fresh(&other, !asc);
        if (query_cursor_decode(text, &other) != -1 || other.has_cursor)
            abort();
        check_encode(asc, q.cursor_time, q.cursor_id, again, sizeof again);
        /* the canonical text is a fixed point */
        fresh(&other, asc);
        if (query_cursor_decode(again, &other) != 0)
            abort();
        {
            char twice[CURSOR_TEXT_MAX];
            check_encode(asc, other.cursor_time, other.cursor_id, twice, sizeof twice);
            if (strcmp(again, twice) != 0)
                abort();
        }
    } else if (q.has_cursor) {
        abort();
    }
    check_position(asc, text);
    free(text);
    return 0;
}
