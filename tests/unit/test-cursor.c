/*
 * test-cursor.c - the list cursor's text form: round trips in both orders,
 * one spelling per cursor, and refusal of everything else.
 */
#include <string.h>

#include "cursor.h"
#include "tap.h"

#define TIME "2026-11-24T12:00:00.123456Z"
#define ID   "0b0f4e8e-6f7c-4f63-9a43-2a1c7e0d9b11"

static void round_trip(tap *t, bool asc)
{
    char text[PT_CURSOR_MAX + 1], time[PT_CURSOR_TIME_MAX], id[PT_CURSOR_ID_MAX];
    bool got_asc = !asc;

    tap_ok(t, pt_cursor_encode(asc, TIME, ID, text, sizeof text) == 0, "%s cursor encodes",
           asc ? "ascending" : "descending");
    tap_ok(t,
           strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               strlen(text),
           "it is base64url without padding");
    tap_ok(t, pt_cursor_decode(text, &got_asc, time, id) == 0, "and decodes");
    tap_ok(t, got_asc == asc, "keeping the order");
    tap_is_str(t, time, TIME, "keeping the time to the microsecond");
    tap_is_str(t, id, ID, "keeping the id");
}

static void refused(tap *t, const char *text, const char *what)
{
    char time[PT_CURSOR_TIME_MAX], id[PT_CURSOR_ID_MAX];
    bool asc;

    tap_ok(t, pt_cursor_decode(text, &asc, time, id) != 0, "refuses %s", what);
}

/* base64url of `plain` (no padding), for building hostile cursors. */
static void b64(const char *plain, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(plain), w = 0;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char) plain[i] << 16;

        v |= i + 1 < len ? (unsigned char) plain[i + 1] << 8 : 0;
        v |= i + 2 < len ? (unsigned char) plain[i + 2] : 0;
        out[w++] = a[v >> 18 & 63];
        out[w++] = a[v >> 12 & 63];
        if (i + 1 < len)
            out[w++] = a[v >> 6 & 63];
        if (i + 2 < len)
            out[w++] = a[v & 63];
    }
    out[w] = '\0';
}

int main(void)
{
    tap t = {0};
    char text[PT_CURSOR_MAX + 1], small[16], built[400], longer[200];

    round_trip(&t, true);
    round_trip(&t, false);

    tap_ok(&t, pt_cursor_encode(true, TIME, ID, small, sizeof small) != 0 && small[0] == '\0',
           "a buffer too small gives an error and empty text");
    memset(longer, '9', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    tap_ok(&t, pt_cursor_encode(true, longer, ID, text, sizeof text) != 0,
           "a time too long to fit is refused when encoding");

    b64("1|a|" TIME "|" ID, built);
    tap_ok(&t, pt_cursor_encode(true, TIME, ID, text, sizeof text) == 0 && strcmp(text, built) == 0,
           "the layout is 1|order|time|id");

    refused(&t, "", "empty text");
    refused(&t, "A", "a single character (no whole byte)");
    refused(&t, "MXxhfDIw=", "padding");
    refused(&t, "MXxhfDIw+", "the standard alphabet's '+'");
    b64("2|a|" TIME "|" ID, built);
    refused(&t, built, "another version");
    b64("1|x|" TIME "|" ID, built);
    refused(&t, built, "an unknown order flag");
    b64("1|a|" TIME, built);
    refused(&t, built, "a missing id");
    b64("1|a||" ID, built);
    refused(&t, built, "an empty time");
    b64("1|a|" TIME "|", built);
    refused(&t, built, "an empty id");
    b64("1|a|" TIME "|" ID "0", built);
    refused(&t, built, "an id too long");
    memset(longer, 'A', sizeof longer - 1);
    refused(&t, longer, "text longer than any cursor");
    b64("1|a|" TIME "|" ID, built);
    strcpy(text, built);
    text[strlen(text) - 1] = (char) (text[strlen(text) - 1] == 'B' ? 'C' : 'B');
    {
        char time[PT_CURSOR_TIME_MAX], id[PT_CURSOR_ID_MAX];
        bool asc;
        int rc = pt_cursor_decode(text, &asc, time, id);

        tap_ok(&t, rc != 0 || strcmp(id, ID) != 0, "a changed last character changes or breaks it");
    }
    {
        /* "1|a|T|I" is 7 bytes: 10 characters, the last carrying 2 spare bits */
        char spelled[16];

        b64("1|a|T|I", spelled);
        tap_ok(&t, strlen(spelled) == 10, "a 7-byte text is 10 characters");
        spelled[9] = (char) (spelled[9] + 1); /* same byte, a spare bit set */
        refused(&t, spelled, "non-zero spare bits (a second spelling)");
    }
    return tap_done(&t);
}
