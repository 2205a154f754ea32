#include "core/tz.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/civil.h"
#include "core/strmap.h"

/* A transition day of a POSIX TZ rule. */
enum rday { RDAY_JULIAN1, RDAY_JULIAN0, RDAY_MWD }; /* Jn (1..365, no Feb 29), n (0..365), Mm.w.d */

struct rdate {
    enum rday kind;
    int n, m, w, d;
    int32_t time; /* seconds after local midnight (may be negative or past 24 h) */
};

/* The footer rule: std offset, and optionally dst offset with its start and end. */
struct rule {
    bool present, has_dst;
    int32_t std_off, dst_off;
    struct rdate start, end;
};

struct ag_tz {
    char *name;
    uint32_t n;      /* transitions */
    int64_t *trans;  /* instants, increasing */
    int32_t *offs;   /* offset from trans[i] on */
    int32_t off0;    /* offset before trans[0] */
    struct rule rule;
};

static struct ag_tz utc_zone = {.name = "UTC", .rule = {.present = true}};

const struct ag_tz *ag_tz_utc(void)
{
    return &utc_zone;
}

const char *ag_tz_name(const struct ag_tz *z)
{
    return z->name;
}

void ag_tz_free(struct ag_tz *z)
{
    if (!z || z == &utc_zone)
        return;
    ag_free(z->name);
    ag_free(z->trans);
    ag_free(z->offs);
    ag_free(z);
}

/* --- the POSIX TZ string of the footer --- */

static bool p_name(const char **s)
{
    const char *p = *s;
    if (*p == '<') {
        while (*p && *p != '>')
            p++;
        if (*p != '>')
            return false;
        *s = p + 1;
        return true;
    }
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    if (p - *s < 3)
        return false;
    *s = p;
    return true;
}

static bool p_num(const char **s, int max, int *out)
{
    const char *p = *s;
    int v = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > max)
            return false;
    }
    *out = v;
    *s = p;
    return true;
}

/* [+-]hh[:mm[:ss]] in seconds; hours up to 167 (RFC 8536 allows that for transition times). */
static bool p_hms(const char **s, int32_t *out)
{
    int sign = 1, h, m = 0, sec = 0;
    if (**s == '+' || **s == '-')
        sign = *(*s)++ == '-' ? -1 : 1;
    if (!p_num(s, 167, &h))
        return false;
    if (**s == ':') {
        (*s)++;
        if (!p_num(s, 59, &m))
            return false;
        if (**s == ':') {
            (*s)++;
            if (!p_num(s, 59, &sec))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool p_rdate(const char **s, struct rdate *r)
{
    if (**s == 'J') {
        (*s)++;
        r->kind = RDAY_JULIAN1;
        if (!p_num(s, 365, &r->n) || r->n < 1)
            return false;
    } else if (**s == 'M') {
        (*s)++;
        r->kind = RDAY_MWD;
        if (!p_num(s, 12, &r->m) || r->m < 1 || *(*s)++ != '.' || !p_num(s, 5, &r->w) || r->w < 1 ||
            *(*s)++ != '.' || !p_num(s, 6, &r->d))
            return false;
    } else {
        r->kind = RDAY_JULIAN0;
        if (!p_num(s, 365, &r->n))
            return false;
    }
    r->time = 7200;
    if (**s == '/') {
        (*s)++;
        return p_hms(s, &r->time);
    }
    return true;
}

/* Parses a TZ string (offsets are west-positive in it; stored east-positive). An empty string is no rule. */
static bool parse_rule(const char *s, struct rule *r)
{
    memset(r, 0, sizeof *r);
    if (!*s)
        return true;
    int32_t off;
    if (!p_name(&s) || !p_hms(&s, &off))
        return false;
    r->present = true;
    r->std_off = -off;
    if (!*s)
        return true;
    if (!p_name(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!p_hms(&s, &off))
            return false;
        r->dst_off = -off;
    }
    if (!*s) { /* no rule given: the US rule, as POSIX implementations assume */
        r->start = (struct rdate){RDAY_MWD, 0, 3, 2, 0, 7200};
        r->end = (struct rdate){RDAY_MWD, 0, 11, 1, 0, 7200};
        return true;
    }
    if (*s++ != ',' || !p_rdate(&s, &r->start) || *s++ != ',' || !p_rdate(&s, &r->end))
        return false;
    return !*s;
}

/* The naive local time at which rule date r falls in year. */
static int64_t rdate_local(const struct rdate *r, int64_t year)
{
    int64_t days;
    if (r->kind == RDAY_JULIAN1) {
        days = ag_civil_days(year, 1, 1) + r->n - 1 + (ag_civil_leap(year) && r->n >= 60);
    } else if (r->kind == RDAY_JULIAN0) {
        days = ag_civil_days(year, 1, 1) + r->n;
    } else {
        int64_t first = ag_civil_days(year, r->m, 1);
        days = first + (r->d - ag_civil_weekday(first) + 7) % 7 + 7 * (r->w - 1);
        while (days >= first + ag_civil_mdays(year, r->m))
            days -= 7;
    }
    return days * 86400 + r->time;
}

struct edge {
    int64_t at;
    int32_t off;
};

/* The span of rule r around t (r has DST): its transitions in the years around t, sorted. */
static void rule_span(const struct rule *r, int64_t t, struct ag_tz_span *out)
{
    struct ag_civil c;
    ag_civil_split(t, &c);
    struct edge e[6];
    int n = 0;
    for (int64_t y = c.year - 1; y <= c.year + 1; y++) {
        e[n++] = (struct edge){rdate_local(&r->start, y) - r->std_off, r->dst_off};
        e[n++] = (struct edge){rdate_local(&r->end, y) - r->dst_off, r->std_off};
    }
    for (int i = 1; i < n; i++) /* insertion sort of six */
        for (int j = i; j > 0 && e[j].at < e[j - 1].at; j--) {
            struct edge x = e[j];
            e[j] = e[j - 1];
            e[j - 1] = x;
        }
    int last = -1;
    for (int i = 0; i < n; i++)
        if (e[i].at <= t)
            last = i;
    out->start = last >= 0 ? e[last].at : INT64_MIN;
    out->off = last >= 0 ? e[last].off : (e[0].off == r->dst_off ? r->std_off : r->dst_off);
    out->end = INT64_MAX;
    for (int i = last + 1; i < n; i++)
        if (e[i].at > t) {
            out->end = e[i].at;
            break;
        }
}

void ag_tz_span_at(const struct ag_tz *z, int64_t t, struct ag_tz_span *out)
{
    if (z->n == 0 || t >= z->trans[z->n - 1]) {
        int64_t from = z->n ? z->trans[z->n - 1] : INT64_MIN;
        if (z->rule.present && z->rule.has_dst) {
            rule_span(&z->rule, t, out);
            if (out->start < from)
                out->start = from;
        } else {
            out->start = from;
            out->end = INT64_MAX;
            out->off = z->rule.present ? z->rule.std_off : z->n ? z->offs[z->n - 1] : z->off0;
        }
        return;
    }
    if (t < z->trans[0]) {
        *out = (struct ag_tz_span){INT64_MIN, z->trans[0], z->off0};
        return;
    }
    uint32_t lo = 0, hi = z->n - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *out = (struct ag_tz_span){z->trans[lo], z->trans[hi], z->offs[lo]};
}

int32_t ag_tz_offset(const struct ag_tz *z, int64_t t)
{
    struct ag_tz_span sp;
    ag_tz_span_at(z, t, &sp);
    return sp.off;
}

#define MAX_OFFSET (26 * 3600)

int64_t ag_tz_local_to_utc(const struct ag_tz *z, int64_t local, bool later)
{
    struct ag_tz_span sp;
    int64_t first = INT64_MIN, last = INT64_MIN, gap = INT64_MIN;
    ag_tz_span_at(z, local - MAX_OFFSET - 1, &sp);
    for (;;) {
        int64_t u = local - sp.off;
        if (u >= sp.start && u < sp.end) {
            if (first == INT64_MIN)
                first = u;
            last = u;
        } else if (u < sp.start && gap == INT64_MIN) {
            gap = sp.start; /* the wall clock jumped over `local` when this span began */
        }
        if (sp.end == INT64_MAX || sp.end > local + MAX_OFFSET)
            break;
        ag_tz_span_at(z, sp.end, &sp);
    }
    if (first != INT64_MIN)
        return later ? last : first;
    return gap != INT64_MIN ? gap : local - ag_tz_offset(z, local);
}

/* --- TZif --- */

static int64_t be(const unsigned char *p, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | p[i];
    if (w == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

struct hdr {
    uint32_t isut, isstd, leap, time, type, chars;
};

static bool read_hdr(const unsigned char *p, size_t len, struct hdr *h)
{
    if (len < 44 || memcmp(p, "TZif", 4))
        return false;
    uint32_t *f[] = {&h->isut, &h->isstd, &h->leap, &h->time, &h->type, &h->chars};
    for (int i = 0; i < 6; i++)
        *f[i] = (uint32_t)be(p + 20 + 4 * i, 4);
    return h->type >= 1 && h->type <= 256 && h->time <= 100000 && h->chars <= 100000 && h->leap <= 100000;
}

static size_t block_len(const struct hdr *h, int tw)
{
    return (size_t)h->time * (size_t)tw + h->time + (size_t)h->type * 6 + h->chars + (size_t)h->leap * (size_t)(tw + 4) +
           h->isstd + h->isut;
}

struct ag_tz *ag_tz_parse(const char *name, const unsigned char *data, size_t len)
{
    struct hdr h;
    if (!read_hdr(data, len, &h))
        return NULL;
    int tw = 4;
    const unsigned char *p = data + 44;
    size_t rest = len - 44;
    if (block_len(&h, 4) > rest)
        return NULL;
    const char *footer = "";
    char fbuf[128];
    if (data[4] >= '2') { /* skip the 32-bit block for the 64-bit one */
        size_t skip = block_len(&h, 4);
        if (!read_hdr(p + skip, rest - skip, &h))
            return NULL;
        p += skip + 44;
        rest -= skip + 44;
        tw = 8;
        if (block_len(&h, 8) > rest)
            return NULL;
        const unsigned char *f = p + block_len(&h, 8);
        size_t flen = rest - block_len(&h, 8);
        if (flen >= 2 && f[0] == '\n') {
            const unsigned char *nl = memchr(f + 1, '\n', flen - 1);
            if (!nl || (size_t)(nl - f - 1) >= sizeof fbuf)
                return NULL;
            memcpy(fbuf, f + 1, (size_t)(nl - f - 1));
            fbuf[nl - f - 1] = '\0';
            footer = fbuf;
        }
    }
    struct ag_tz *z = ag_calloc(1, sizeof *z);
    if (!parse_rule(footer, &z->rule)) {
        ag_free(z);
        return NULL;
    }
    const unsigned char *times = p, *idx = p + (size_t)h.time * (size_t)tw, *types = idx + h.time;
    z->n = h.time;
    z->trans = ag_malloc((h.time ? h.time : 1) * sizeof *z->trans);
    z->offs = ag_malloc((h.time ? h.time : 1) * sizeof *z->offs);
    for (uint32_t i = 0; i < h.time; i++) {
        z->trans[i] = be(times + (size_t)i * (size_t)tw, tw);
        if (idx[i] >= h.type || (i && z->trans[i] <= z->trans[i - 1])) {
            ag_tz_free(z);
            return NULL;
        }
        z->offs[i] = (int32_t)be(types + 6 * idx[i], 4);
    }
    z->off0 = (int32_t)be(types, 4);
    z->name = ag_strdup(name);
    return z;
}

/* --- the database --- */

static struct {
    struct ag_tz **zones;
    size_t n, cap;
    struct ag_strmap by_name;
} db;

static void load_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    bool whole = feof(f);
    fclose(f);
    struct ag_tz *z = whole ? ag_tz_parse(name, buf, len) : NULL;
    if (!z)
        return;
    if (db.n == db.cap) {
        db.cap = db.cap ? db.cap * 2 : 512;
        db.zones = ag_realloc(db.zones, db.cap * sizeof *db.zones);
    }
    db.zones[db.n++] = z;
    ag_strmap_put(&db.by_name, z->name, strlen(z->name), z);
}

static void load_dir(const char *root, const char *rel, int depth)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = depth < 4 ? opendir(path) : NULL;
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' || (!*rel && (!strcmp(n, "posix") || !strcmp(n, "right") || !strcmp(n, "localtime") ||
                                      !strcmp(n, "posixrules"))))
            continue;
        char child[1024], full[4096];
        if (snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", n) >= (int)sizeof child)
            continue;
        snprintf(full, sizeof full, "%s/%s", root, child);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
            load_dir(root, child, depth + 1);
        else if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            load_file(full, child);
    }
    closedir(d);
}

size_t ag_tz_db_load(const char *dir)
{
    ag_tz_db_free();
    load_dir(dir, "", 0);
    return db.n;
}

const struct ag_tz *ag_tz_find(const char *name)
{
    const struct ag_tz *z = ag_strmap_get(&db.by_name, name, strlen(name));
    if (!z && !strcmp(name, "UTC"))
        z = &utc_zone;
    return z;
}

void ag_tz_db_free(void)
{
    for (size_t i = 0; i < db.n; i++)
        ag_tz_free(db.zones[i]);
    ag_free(db.zones);
    ag_strmap_free(&db.by_name);
    memset(&db, 0, sizeof db);
}
