/*
 * currency.h - the active ISO 4217 currency table.
 *
 * Owns: the list of active alphabetic codes with their minor-unit exponent
 * (JPY 0, EUR 2, KWD 3, ...). The table is static, read-only data, so every
 * function here is thread-safe.
 */
#ifndef PT_CURRENCY_H
#define PT_CURRENCY_H

#include <stddef.h>

typedef struct pt_currency {
    const char *code; /* upper-case three-letter code, e.g. "EUR" */
    int exponent;     /* minor-unit exponent: 0..4 */
    const char *name; /* English name, for display */
} pt_currency;

/* The currency with this exact code (upper case, three letters), or NULL
 * when the code is not an active ISO 4217 currency. */
const pt_currency *pt_currency_find(const char *code);

/* The whole table, sorted by code; *count receives its length. */
const pt_currency *pt_currency_table(size_t *count);

#endif
