/*
 * money.h - exact conversion between major-unit text and integer minor units.
 *
 * Owns: parsing "12.50", "1,000.5", "-0" style operator input into an int64
 * count of minor units for a currency exponent, and formatting it back. No
 * floating point anywhere: digits are accumulated with overflow checks.
 */
#ifndef PT_MONEY_H
#define PT_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Largest amount the contract accepts, in minor units. */
#define PT_AMOUNT_MAX INT64_C(999999999999999)

typedef enum pt_money_err {
    PT_MONEY_OK = 0,
    PT_MONEY_EMPTY,       /* nothing but white space */
    PT_MONEY_SYNTAX,      /* not digits with optional grouping and one '.' */
    PT_MONEY_NEGATIVE,    /* a leading '-' */
    PT_MONEY_TOO_PRECISE, /* more decimals than the currency's exponent */
    PT_MONEY_OVERFLOW,    /* does not fit in int64 */
} pt_money_err;

/*
 * Parses major-unit text for a currency with `exponent` minor digits.
 * Accepts optional surrounding white space, ',' thousands separators in
 * groups of three ("1,000.5"), and at most `exponent` decimals; "12" "12."
 * "12.5" "0.05" are fine for exponent 2. On success stores minor units in
 * *minor_out and returns PT_MONEY_OK; otherwise leaves *minor_out untouched.
 * Range checks against PT_AMOUNT_MAX are the validator's job, not this one.
 */
pt_money_err pt_money_parse(const char *text, int exponent, int64_t *minor_out);

/* A sentence for a person, e.g. "use at most 2 decimals for EUR" is built by
 * the caller; this gives the fixed part: "amount has too many decimals". */
const char *pt_money_strerror(pt_money_err err);

/*
 * Formats minor units as major-unit text: 125000 with exponent 2 gives
 * "1250.00", or "1,250.00" when `group` is non-zero. Negative values get a
 * leading '-'. Writes at most `cap` bytes including the NUL; returns the
 * length written, or -1 when `cap` is too small (buf then holds "").
 */
int pt_money_format(int64_t minor, int exponent, int group, char *buf, size_t cap);

#endif
