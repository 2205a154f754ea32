#include "runtime/cronexpr.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/civil.h"
#include "core/tz.h"

/* --- parsing --- */

struct field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i */
    bool may_ask;             /* `?` allowed (the day fields) */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

static const struct field fields[] = {
    [F_SEC] = {"second", 0, 59, NULL, false},      [F_MIN] = {"minute", 0, 59, NULL, false},
    [F_HOUR] = {"hour", 0, 23, NULL, false},       [F_DOM] = {"day-of-month", 1, 31, NULL, true},
    [F_MON] = {"month", 1, 12, month_names, false}, [F_DOW] = {"day-of-week", 0, 7, day_names, true},
};

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

struct perr {
    char *buf;
    size_t len;
};

static bool fail(struct perr *pe, const struct field *f, const char *item, size_t n, const char *why)
{
    snprintf(pe->buf, pe->len, "%s field: '%.*s' %s", f->name, (int)(n > 40 ? 40 : n), item, why);
    return false;
}

/* A number or (for months and weekdays) a name at s[*i]. */
static bool value(const struct field *f, const char *s, size_t n, size_t *i, int *out)
{
    if (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        int v = 0;
        while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
            v = v * 10 + (s[*i] - '0');
            if (v > 1000)
                return false;
            (*i)++;
        }
        *out = v;
        return true;
    }
    if (!f->names || *i + 3 > n)
        return false;
    for (int k = 0; f->names[k]; k++)
        if (!strncasecmp(s + *i, f->names[k], 3)) {
            *i += 3;
            *out = f->min + k;
            return true;
        }
    return false;
}

/* One comma-separated item of field f into *bits. */
static bool item(const struct field *f, const char *s, size_t n, uint64_t *bits, struct perr *pe)
{
    size_t i = 0;
    int lo = f->min, hi = f->max, step = 1;
    bool star = false;
    if (n == 0)
        return fail(pe, f, s, n, "is an empty list item");
    if (s[0] == '*' || s[0] == '?') {
        if (s[0] == '?' && !f->may_ask)
            return fail(pe, f, s, n, "uses '?', which only the day fields accept");
        star = true;
        i = 1;
        if (f->max == 7)
            hi = 6; /* 7 is Sunday again */
    } else {
        if (!value(f, s, n, &i, &lo))
            return fail(pe, f, s, n,
                        memchr(s, 'L', n) || memchr(s, 'W', n) || memchr(s, '#', n)
                            ? "uses L, W or #, which are not supported"
                            : "is not a number or a range");
        hi = lo;
        if (i < n && s[i] == '-') {
            i++;
            if (!value(f, s, n, &i, &hi))
                return fail(pe, f, s, n, "has a range without a valid end");
        }
    }
    if (i < n && s[i] == '/') {
        i++;
        size_t at = i;
        if (!value(&(struct field){0}, s, n, &i, &step) || i == at)
            return fail(pe, f, s, n, "has a step that is not a number");
        if (step < 1)
            return fail(pe, f, s, n, "has a step of 0");
        if (!star && hi == lo && memchr(s, '-', n) == NULL)
            hi = f->max == 7 ? 6 : f->max; /* a/step: from a to the end */
    }
    if (i != n)
        return fail(pe, f, s, n, "has unexpected characters");
    if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
        char why[64];
        snprintf(why, sizeof why, "is out of range %d-%d", f->min, f->max);
        return fail(pe, f, s, n, why);
    }
    if (lo > hi)
        return fail(pe, f, s, n, "is a range that goes backwards");
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << (f->max == 7 && v == 7 ? 0 : v);
    return true;
}

static bool field(const struct field *f, const char *s, size_t n, uint64_t *bits, struct perr *pe)
{
    *bits = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (!item(f, s + start, i - start, bits, pe))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

bool ag_cronexpr_parse(const char *s, size_t n, struct ag_cronexpr *out, char *err, size_t errlen)
{
    struct perr pe = {err, errlen};
    memset(out, 0, sizeof *out);
    while (n && is_space(s[n - 1]))
        n--;
    while (n && is_space(*s))
        s++, n--;
    if (n && s[0] == '@') {
        for (size_t k = 0; k < sizeof macros / sizeof macros[0]; k++)
            if (strlen(macros[k].name) == n && !strncasecmp(s, macros[k].name, n))
                return ag_cronexpr_parse(macros[k].expansion, strlen(macros[k].expansion), out, err, errlen);
        snprintf(err, errlen, "'%.*s' is not a known macro (@yearly, @annually, @monthly, @weekly, @daily, "
                 "@midnight, @hourly)", (int)(n > 40 ? 40 : n), s);
        return false;
    }
    const char *tok[7];
    size_t len[7];
    int nt = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space(s[i]))
            i++;
        if (i == n)
            break;
        size_t b = i;
        while (i < n && !is_space(s[i]))
            i++;
        if (nt < 7) {
            tok[nt] = s + b;
            len[nt] = i - b;
        }
        nt++;
    }
    if (nt != 5 && nt != 6) {
        snprintf(err, errlen, "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds "
                 "first, got %d", nt);
        return false;
    }
    out->seconds = nt == 6;
    int first = nt == 6 ? F_SEC : F_MIN;
    uint64_t bits[6] = {1}; /* seconds: 0 unless given */
    for (int k = first; k <= F_DOW; k++) {
        int t = k - first;
        if (!field(&fields[k], tok[t], len[t], &bits[k], &pe))
            return false;
    }
    out->sec = bits[F_SEC];
    out->min = bits[F_MIN];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->mon = (uint16_t)bits[F_MON];
    out->dow = (uint8_t)bits[F_DOW];
    out->dom_star = tok[F_DOM - first][0] == '*' || tok[F_DOM - first][0] == '?';
    out->dow_star = tok[F_DOW - first][0] == '*' || tok[F_DOW - first][0] == '?';
    if (out->dom_star || out->dow_star) { /* both day fields must hold: some selected day must exist */
        bool exists = false;
        for (int m = 1; m <= 12 && !exists; m++)
            for (int d = 1; d <= (m == 2 ? 29 : ag_civil_mdays(2001, m)) && !exists; d++)
                exists = (out->mon >> m & 1) && (out->dom >> d & 1);
        if (!exists) {
            snprintf(err, errlen, "day-of-month field: '%.*s' names no day that exists in the selected months",
                     (int)(len[F_DOM - first] > 40 ? 40 : len[F_DOM - first]), tok[F_DOM - first]);
            return false;
        }
    }
    return true;
}

/* --- next firing --- */

/* The lowest set bit of mask at or above from, or -1. */
static int bit_from(uint64_t mask, int from)
{
    if (from > 63)
        return -1;
    uint64_t m = mask >> from;
    return m ? from + __builtin_ctzll(m) : -1;
}

static bool day_ok(const struct ag_cronexpr *e, const struct ag_civil *c)
{
    bool a = e->dom >> c->day & 1;
    bool b = e->dow >> ag_civil_weekday(ag_civil_days(c->year, c->mon, c->day)) & 1;
    return !e->dom_star && !e->dow_star ? a || b : a && b;
}

#define HORIZON_YEARS 400
#define NONE INT64_MIN

/* The first matching naive time at or after l (core/civil.h), or NONE. */
static int64_t naive_next(const struct ag_cronexpr *e, int64_t l)
{
    struct ag_civil c;
    ag_civil_split(l, &c);
    int64_t limit = c.year + HORIZON_YEARS;
    for (;;) {
        if (c.year > limit)
            return NONE;
        int m = bit_from(e->mon, c.mon);
        if (m != c.mon) {
            if (m < 0) {
                c.year++;
                m = bit_from(e->mon, 1);
            }
            c = (struct ag_civil){c.year, m, 1, 0, 0, 0};
            continue;
        }
        if (c.day > ag_civil_mdays(c.year, c.mon)) {
            c = (struct ag_civil){c.mon == 12 ? c.year + 1 : c.year, c.mon == 12 ? 1 : c.mon + 1, 1, 0, 0, 0};
            continue;
        }
        if (!day_ok(e, &c)) {
            c.day++;
            c.hour = c.min = c.sec = 0;
            continue;
        }
        int h = bit_from(e->hour, c.hour);
        if (h < 0) {
            c.day++;
            c.hour = c.min = c.sec = 0;
            continue;
        }
        if (h != c.hour) {
            c.hour = h;
            c.min = c.sec = 0;
        }
        int mi = bit_from(e->min, c.min);
        if (mi < 0) {
            c.min = c.sec = 0;
            if (++c.hour > 23) {
                c.hour = 0;
                c.day++;
            }
            continue;
        }
        if (mi != c.min) {
            c.min = mi;
            c.sec = 0;
        }
        int s = bit_from(e->sec, c.sec);
        if (s < 0) {
            c.sec = 0;
            if (++c.min > 59) {
                c.min = 0;
                if (++c.hour > 23) {
                    c.hour = 0;
                    c.day++;
                }
            }
            continue;
        }
        c.sec = s;
        return ag_civil_join(&c);
    }
}

#define ALL_HOURS 0xffffffu

int64_t ag_cronexpr_next(const struct ag_cronexpr *e, const struct ag_tz *z, int64_t after)
{
    int64_t u = after + 1;
    struct ag_tz_span sp, prev;
    ag_tz_span_at(z, u, &sp);
    int64_t l = u + sp.off;
    if (ag_tz_local_to_utc(z, l, false) < u && sp.start != INT64_MIN) {
        /* u is in the second pass of readings repeated after clocks were set back at sp.start: their
         * first instants are past, so the first pass continues where the repeated stretch ends. */
        ag_tz_span_at(z, sp.start - 1, &prev);
        l = sp.start + prev.off;
    }
    int64_t best = -1;
    for (int guard = 0; guard < 100000; guard++) {
        int64_t cand = naive_next(e, l);
        if (cand == NONE)
            break;
        int64_t t = ag_tz_local_to_utc(z, cand, false);
        if (t >= u) {
            best = t;
            break;
        }
        l = cand + 1;
    }
    if (best < 0 || (e->hour & ALL_HOURS) != ALL_HOURS)
        return best;
    /* Every-hour schedules also fire through repeated readings (second passes) before best. */
    while (sp.start <= best) {
        if (sp.start != INT64_MIN) {
            ag_tz_span_at(z, sp.start - 1, &prev);
            if (prev.off > sp.off) {
                int64_t from = u > sp.start ? u : sp.start, to = sp.start + (prev.off - sp.off);
                int64_t cand = from < to ? naive_next(e, from + sp.off) : NONE;
                if (cand != NONE && cand - sp.off < to && cand - sp.off < best)
                    return cand - sp.off;
            }
        }
        if (sp.end == INT64_MAX)
            break;
        ag_tz_span_at(z, sp.end, &sp);
    }
    return best;
}
