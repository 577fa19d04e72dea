/*
 * fuzz-money.c - libFuzzer target for pt_money_parse / pt_money_format.
 *
 * Input: the first byte picks the exponent (byte % 6, so the ASCII digits
 * '0'..'5' in the seeds mean what they say), the rest is the text. Checks
 * that anything accepted is non-negative and survives format -> parse
 * unchanged, grouped or not, and that formatting any int64 parses back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Formats v and parses it back; aborts (a finding) on any mismatch. */
static void check_round_trip(int64_t v, int exponent)
{
    char buf[64];
    int64_t back = -1;

    for (int group = 0; group <= 1; group++) {
        int n = pt_money_format(v, exponent, group, buf, sizeof buf);
        pt_money_err err;
        if (n < 0 || (size_t) n != strlen(buf))
            abort();
        err = pt_money_parse(buf, exponent, &back);
        if (v < 0) {
            if (err != PT_MONEY_NEGATIVE)
                abort();
        } else if (err != PT_MONEY_OK || back != v) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int exponent;
    char *text;
    int64_t v = -1;

    if (size < 1)
        return 0;
    exponent = data[0] % 6;
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    if (pt_money_parse(text, exponent, &v) == PT_MONEY_OK) {
        if (v < 0)
            abort();
        check_round_trip(v, exponent);
    } else if (v != -1) {
        abort(); /* a refusal must leave the output alone */
    }
    if (size >= 9) {
        int64_t raw;
        memcpy(&raw, data + 1, sizeof raw);
        check_round_trip(raw, exponent);
    }
    free(text);
    return 0;
}
