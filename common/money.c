/*
 * money.c - exact conversion between major-unit text and minor units.
 *
 * Amounts are integers all the way: text is scanned digit by digit into a
 * uint64_t with overflow checks, scaled by a power of ten, and formatted
 * back from the integer. No double ever holds an amount, so 0.1 + 0.2
 * problems cannot happen here.
 */
#include "money.h"

#include <stdbool.h>
#include <string.h>

/* Exponents beyond this would not leave room for a single major unit in
 * an int64 (10^18 is the largest power of ten that fits). */
#define MONEY_EXPONENT_MAX 18

/* White space an operator may leave around a typed amount (the C locale's
 * isspace set, spelled out so the locale cannot change it). */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 10^n for 0 <= n <= 18. */
static uint64_t pow10_u64(int n)
{
    uint64_t v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

/* Appends one digit to *acc, setting *overflow instead of wrapping. */
static void accumulate(uint64_t *acc, char digit, bool *overflow)
{
    uint64_t d = (uint64_t) (digit - '0');
    if (*acc > (UINT64_MAX - d) / 10) {
        *overflow = true;
        return;
    }
    *acc = *acc * 10 + d;
}

pt_money_err pt_money_parse(const char *text, int exponent, int64_t *minor_out)
{
    const char *p;
    const char *end;
    bool negative = false;
    bool overflow = false;
    bool grouped = false;
    int group_digits = 0;
    int int_digits = 0;
    int frac_digits = 0;
    uint64_t whole = 0;
    uint64_t frac = 0;
    uint64_t scale;
    uint64_t value;

    if (text == NULL)
        return PT_MONEY_EMPTY;
    p = text;
    end = text + strlen(text);
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if (p == end)
        return PT_MONEY_EMPTY;
    if (exponent < 0 || exponent > MONEY_EXPONENT_MAX)
        return PT_MONEY_SYNTAX;

    if (*p == '-') {
        negative = true;
        p++;
    }

    /* Integer part: digits, optionally grouped by ',' into threes. The
     * first group may be one to three digits, every later one exactly
     * three, so "1,000" and "12,345,678" pass and "1,00" does not. */
    for (; p < end && *p != '.'; p++) {
        if (is_digit(*p)) {
            accumulate(&whole, *p, &overflow);
            int_digits++;
            group_digits++;
        } else if (*p == ',') {
            if (grouped ? group_digits != 3 : (group_digits < 1 || group_digits > 3))
                return PT_MONEY_SYNTAX;
            grouped = true;
            group_digits = 0;
        } else {
            return PT_MONEY_SYNTAX;
        }
    }
    if (grouped && group_digits != 3)
        return PT_MONEY_SYNTAX;

    /* Fraction: plain digits after one '.'. Digits beyond the exponent are
     * counted but not accumulated, to report TOO_PRECISE rather than an
     * overflow for a long tail. */
    if (p < end && *p == '.') {
        for (p++; p < end; p++) {
            if (!is_digit(*p))
                return PT_MONEY_SYNTAX;
            if (frac_digits < exponent)
                frac = frac * 10 + (uint64_t) (*p - '0');
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0)
        return PT_MONEY_SYNTAX; /* "", ".", "-", "-." */
    if (negative)
        return PT_MONEY_NEGATIVE;
    if (frac_digits > exponent)
        return PT_MONEY_TOO_PRECISE;
    if (overflow)
        return PT_MONEY_OVERFLOW;

    /* whole * 10^exponent + frac * 10^(exponent - frac_digits), each step
     * checked against INT64_MAX. */
    scale = pow10_u64(exponent);
    if (whole > (uint64_t) INT64_MAX / scale)
        return PT_MONEY_OVERFLOW;
    value = whole * scale;
    frac *= pow10_u64(exponent - frac_digits);
    if (frac > (uint64_t) INT64_MAX - value)
        return PT_MONEY_OVERFLOW;
    value += frac;
    if (minor_out)
        *minor_out = (int64_t) value;
    return PT_MONEY_OK;
}

const char *pt_money_strerror(pt_money_err err)
{
    switch (err) {
    case PT_MONEY_OK:
        return "ok";
    case PT_MONEY_EMPTY:
        return "amount is empty";
    case PT_MONEY_SYNTAX:
        return "amount is not a number such as 1,250.00";
    case PT_MONEY_NEGATIVE:
        return "amount must not be negative";
    case PT_MONEY_TOO_PRECISE:
        return "amount has too many decimals";
    case PT_MONEY_OVERFLOW:
        return "amount is too large";
    }
    return "amount is not valid";
}

int pt_money_format(int64_t minor, int exponent, int group, char *buf, size_t cap)
{
    /* Widest output: '-', 19 digits + leading zeros up to exponent 18,
     * 6 separators, '.', NUL; 64 bytes is ample. */
    char digits[24];
    char out[64];
    size_t ndigits = 0;
    size_t int_len;
    size_t len = 0;
    uint64_t mag;

    if (buf == NULL || cap == 0)
        return -1;
    buf[0] = '\0';
    if (exponent < 0 || exponent > MONEY_EXPONENT_MAX)
        return -1;

    /* The magnitude as unsigned, so INT64_MIN does not overflow. */
    mag = minor < 0 ? (uint64_t) (-(minor + 1)) + 1 : (uint64_t) minor;
    do {
        digits[ndigits++] = (char) ('0' + (int) (mag % 10));
        mag /= 10;
    } while (mag > 0);
    /* At least one digit before the point: 5 with exponent 2 is "0.05". */
    while (ndigits < (size_t) exponent + 1)
        digits[ndigits++] = '0';

    if (minor < 0)
        out[len++] = '-';
    int_len = ndigits - (size_t) exponent;
    for (size_t i = 0; i < int_len; i++) {
        /* digits[] is least significant first. */
        out[len++] = digits[ndigits - 1 - i];
        size_t left = int_len - 1 - i;
        if (group && left > 0 && left % 3 == 0)
            out[len++] = ',';
    }
    if (exponent > 0) {
        out[len++] = '.';
        for (size_t i = (size_t) exponent; i > 0; i--)
            out[len++] = digits[i - 1];
    }
    if (len + 1 > cap)
        return -1;
    memcpy(buf, out, len);
    buf[len] = '\0';
    return (int) len;
}
