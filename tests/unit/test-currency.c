/*
 * test-currency.c - the ISO 4217 table: sorted, complete for the codes
 * that matter, right exponents, and no withdrawn or non-currency codes.
 */
#include <string.h>

#include "currency.h"
#include "tap.h"

static void exponent_is(tap *t, const char *code, int want)
{
    const pt_currency *c = pt_currency_find(code);

    if (!tap_ok(t, c != NULL, "%s is an active currency", code))
        return;
    tap_is_i64(t, c->exponent, want, "%s has exponent %d", code, want);
    tap_is_str(t, c->code, code, "%s lookup returns its own entry", code);
}

int main(void)
{
    tap t = {0};
    size_t n = 0;
    const pt_currency *table = pt_currency_table(&n);
    bool sorted = true;
    bool shaped = true;

    static const struct {
        const char *code;
        int exponent;
    } known[] = {
        {"BHD", 3}, {"JOD", 3}, {"KWD", 3}, {"OMR", 3}, {"TND", 3}, {"LYD", 3}, {"IQD", 3},
        {"JPY", 0}, {"KRW", 0}, {"ISK", 0}, {"CLP", 0}, {"VND", 0}, {"UGX", 0}, {"XAF", 0},
        {"XOF", 0}, {"XPF", 0}, {"PYG", 0}, {"BIF", 0}, {"DJF", 0}, {"GNF", 0}, {"KMF", 0},
        {"RWF", 0}, {"VUV", 0}, {"UYI", 0}, {"EUR", 2}, {"USD", 2}, {"GBP", 2}, {"CHF", 2},
        {"CNY", 2}, {"INR", 2}, {"HUF", 2}, {"IDR", 2}, {"MGA", 2}, {"MRU", 2}, {"XCD", 2},
        {"XCG", 2}, {"ZWG", 2}, {"SLE", 2}, {"VES", 2}, {"VED", 2}, {"STN", 2}, {"BYN", 2},
        {"CLF", 4}, {"UYW", 4},
    };
    static const char *const absent[] = {
        "DEM", "FRF", "HRK", "SLL", "ZWL", "ANG", "BGN",  "VEF", "MRO", "STD",  "BYR", "LTL",
        "LVL", "EEK", "XXX", "XTS", "XAU", "XAG", "XPD",  "XPT", "XDR", "XSU",  "XUA", "XBA",
        "XBB", "XBC", "XBD", "eur", "Eur", "EU",  "EURO", "",    "E1R", "EUR ",
    };

    tap_ok(&t, n >= 150 && n <= 200, "table has a plausible size (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(table[i - 1].code, table[i].code) >= 0)
            sorted = false;
        if (strlen(table[i].code) != 3 || table[i].exponent < 0 || table[i].exponent > 4 ||
            table[i].name == NULL || table[i].name[0] == '\0')
            shaped = false;
        for (int k = 0; k < 3; k++) {
            if (table[i].code[k] < 'A' || table[i].code[k] > 'Z')
                shaped = false;
        }
    }
    tap_ok(&t, sorted, "table is sorted by code without duplicates");
    tap_ok(&t, shaped, "every entry has a 3-letter code, exponent 0..4 and a name");

    /* Every entry can be found, and finds itself. */
    {
        bool all = true;
        for (size_t i = 0; i < n; i++) {
            if (pt_currency_find(table[i].code) != &table[i])
                all = false;
        }
        tap_ok(&t, all, "every table entry is found by its code");
    }

    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        exponent_is(&t, known[i].code, known[i].exponent);
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        tap_ok(&t, pt_currency_find(absent[i]) == NULL, "\"%s\" is not an active currency",
               absent[i]);
    tap_ok(&t, pt_currency_find(NULL) == NULL, "NULL is not a currency");
    tap_ok(&t, pt_currency_table(NULL) == table, "table() accepts a NULL count");
    return tap_done(&t);
}
