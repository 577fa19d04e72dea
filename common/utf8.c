/*
 * utf8.c - strict UTF-8 checks for text that comes from outside.
 *
 * Everything here works on bytes and never consults the C locale, so the
 * server and the TUI (which calls setlocale) agree on what text is valid
 * and how long it is.
 */
#include "utf8.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* One inclusive range of code points, for the width tables below. */
typedef struct cp_range {
    uint32_t first;
    uint32_t last;
} cp_range;

/*
 * Code points a terminal draws with no width of their own: combining
 * marks of the common scripts, zero-width spaces and joiners, variation
 * selectors. Sorted, so they can be searched by halving.
 */
static const cp_range zero_width[] = {
    {0x0300, 0x036F},   {0x0483, 0x0489},   {0x0591, 0x05BD},   {0x05BF, 0x05BF},
    {0x05C1, 0x05C2},   {0x05C4, 0x05C5},   {0x05C7, 0x05C7},   {0x0610, 0x061A},
    {0x064B, 0x065F},   {0x0670, 0x0670},   {0x06D6, 0x06DC},   {0x06DF, 0x06E4},
    {0x06E7, 0x06E8},   {0x06EA, 0x06ED},   {0x0711, 0x0711},   {0x0730, 0x074A},
    {0x07A6, 0x07B0},   {0x07EB, 0x07F3},   {0x0816, 0x0819},   {0x081B, 0x0823},
    {0x0825, 0x0827},   {0x0829, 0x082D},   {0x0859, 0x085B},   {0x08D3, 0x08E1},
    {0x08E3, 0x0902},   {0x093A, 0x093A},   {0x093C, 0x093C},   {0x0941, 0x0948},
    {0x094D, 0x094D},   {0x0951, 0x0957},   {0x0962, 0x0963},   {0x0981, 0x0981},
    {0x09BC, 0x09BC},   {0x09C1, 0x09C4},   {0x09CD, 0x09CD},   {0x09E2, 0x09E3},
    {0x0A01, 0x0A02},   {0x0A3C, 0x0A3C},   {0x0A41, 0x0A51},   {0x0A70, 0x0A71},
    {0x0A75, 0x0A75},   {0x0A81, 0x0A82},   {0x0ABC, 0x0ABC},   {0x0AC1, 0x0AC8},
    {0x0ACD, 0x0ACD},   {0x0AE2, 0x0AE3},   {0x0B01, 0x0B01},   {0x0B3C, 0x0B3C},
    {0x0B3F, 0x0B3F},   {0x0B41, 0x0B44},   {0x0B4D, 0x0B4D},   {0x0B82, 0x0B82},
    {0x0BC0, 0x0BC0},   {0x0BCD, 0x0BCD},   {0x0C3E, 0x0C40},   {0x0C46, 0x0C56},
    {0x0CBC, 0x0CBC},   {0x0CCC, 0x0CCD},   {0x0D41, 0x0D44},   {0x0D4D, 0x0D4D},
    {0x0DCA, 0x0DCA},   {0x0DD2, 0x0DD6},   {0x0E31, 0x0E31},   {0x0E34, 0x0E3A},
    {0x0E47, 0x0E4E},   {0x0EB1, 0x0EB1},   {0x0EB4, 0x0EBC},   {0x0EC8, 0x0ECD},
    {0x0F18, 0x0F19},   {0x0F35, 0x0F35},   {0x0F37, 0x0F37},   {0x0F39, 0x0F39},
    {0x0F71, 0x0F7E},   {0x0F80, 0x0F84},   {0x0F86, 0x0F87},   {0x0F8D, 0x0FBC},
    {0x102D, 0x1030},   {0x1032, 0x1037},   {0x1039, 0x103A},   {0x1160, 0x11FF},
    {0x135D, 0x135F},   {0x1712, 0x1714},   {0x17B4, 0x17B5},   {0x17B7, 0x17BD},
    {0x17C6, 0x17C6},   {0x17C9, 0x17D3},   {0x180B, 0x180F},   {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF},   {0x200B, 0x200F},   {0x202A, 0x202E},   {0x2060, 0x2064},
    {0x20D0, 0x20FF},   {0x302A, 0x302D},   {0x3099, 0x309A},   {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F},   {0xFEFF, 0xFEFF},   {0x1D167, 0x1D169}, {0x1D173, 0x1D182},
    {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xE0100, 0xE01EF},
};

/* Code points East Asian terminals draw two columns wide (Unicode's W and
 * F classes, condensed to the blocks that matter), plus emoji. */
static const cp_range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F202}, {0x1F210, 0x1F23B},
    {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1F260, 0x1F265}, {0x1F300, 0x1F320},
    {0x1F32D, 0x1F335}, {0x1F337, 0x1F37C}, {0x1F37E, 0x1F393}, {0x1F3A0, 0x1F3CA},
    {0x1F3CF, 0x1F3D3}, {0x1F3E0, 0x1F3F0}, {0x1F3F4, 0x1F3F4}, {0x1F3F8, 0x1F43E},
    {0x1F440, 0x1F440}, {0x1F442, 0x1F4FC}, {0x1F4FF, 0x1F53D}, {0x1F54B, 0x1F54E},
    {0x1F550, 0x1F567}, {0x1F57A, 0x1F57A}, {0x1F595, 0x1F596}, {0x1F5A4, 0x1F5A4},
    {0x1F5FB, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x1F6CC, 0x1F6CC}, {0x1F6D0, 0x1F6D2},
    {0x1F6D5, 0x1F6D7}, {0x1F6EB, 0x1F6EC}, {0x1F6F4, 0x1F6FC}, {0x1F7E0, 0x1F7EB},
    {0x1F90C, 0x1F93A}, {0x1F93C, 0x1F945}, {0x1F947, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

/* True when `cp` lies in one of the `n` sorted ranges. */
static bool in_ranges(uint32_t cp, const cp_range *r, size_t n)
{
    size_t lo = 0;
    size_t hi = n;

    if (n == 0 || cp < r[0].first || cp > r[n - 1].last)
        return false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

size_t pt_utf8_decode(const char *str, size_t len, uint32_t *cp_out)
{
    const unsigned char *s = (const unsigned char *) str;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    uint32_t cp;
    size_t need;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        need = 1;
        cp = s[0];
    } else if (s[0] < 0xC2) {
        /* A stray continuation byte, or the lead of an overlong pair. */
        return 0;
    } else if (s[0] < 0xE0) {
        need = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] < 0xF0) {
        need = 3;
        cp = s[0] & 0x0Fu;
        if (s[0] == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (s[0] == 0xED)
            hi = 0x9F; /* UTF-16 surrogates U+D800..U+DFFF */
    } else if (s[0] < 0xF5) {
        need = 4;
        cp = s[0] & 0x07u;
        if (s[0] == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (s[0] == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (need > len)
        return 0;
    for (size_t i = 1; i < need; i++) {
        /* Only the second byte has the narrowed range; the rest are plain
         * continuation bytes. */
        unsigned char min = i == 1 ? lo : 0x80;
        unsigned char max = i == 1 ? hi : 0xBF;
        if (s[i] < min || s[i] > max)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp_out)
        *cp_out = cp;
    return need;
}

bool pt_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (s == NULL)
        return len == 0;
    while (i < len) {
        /* Plain ASCII is by far the common case; skip it a byte at a time
         * without the full decoder. */
        if ((unsigned char) s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = pt_utf8_decode(s + i, len - i, NULL);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t pt_utf8_length(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    /* In valid UTF-8 every code point has exactly one byte that is not a
     * continuation byte (10xxxxxx). */
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            n++;
    }
    return n;
}

bool pt_utf8_has_control(const char *s)
{
    if (s == NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            return true;
        /* U+0080..U+009F are encoded as C2 80..C2 9F. */
        if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            return true;
    }
    return false;
}

int pt_utf8_width(const char *s)
{
    int width = 0;
    size_t len;
    size_t i = 0;

    if (s == NULL)
        return 0;
    len = strlen(s);
    while (i < len) {
        uint32_t cp = 0;
        size_t n = pt_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            /* Not valid after all: a terminal shows one replacement glyph
             * per bad byte, so count it as one column and move on. */
            width++;
            i++;
            continue;
        }
        i += n;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            continue;
        if (in_ranges(cp, zero_width, sizeof zero_width / sizeof zero_width[0]))
            continue;
        if (width > INT_MAX - 2)
            break;
        width += in_ranges(cp, wide, sizeof wide / sizeof wide[0]) ? 2 : 1;
    }
    return width;
}

size_t pt_utf8_truncate(const char *s, size_t max_bytes)
{
    size_t i = 0;
    size_t len;

    if (s == NULL)
        return 0;
    len = strlen(s);
    /* Walks whole code points so the cut never splits one; a malformed
     * byte is kept as a unit of its own, which is all a caller can do. */
    while (i < len) {
        size_t n = pt_utf8_decode(s + i, len - i, NULL);
        if (n == 0)
            n = 1;
        if (i + n > max_bytes)
            break;
        i += n;
    }
    return i;
}

int pt_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
