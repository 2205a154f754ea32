/* Cron expressions (core/cronexpr), time zones from the system's TZif files (core/tz) and calendar
 * arithmetic (core/civil): parsing and its error messages, next firings in UTC, leap days, DST edges
 * in both directions, offsets checked against the C library for many zones and instants. */
#define _GNU_SOURCE /* tm_gmtoff */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/civil.h"
#include "core/tz.h"
#include "runtime/cronexpr.h"

static int64_t at(const char *iso)
{
    int64_t t = 0;
    if (!ag_civil_parse_rfc3339(iso, strlen(iso), &t)) {
        fprintf(stderr, "bad test time %s\n", iso);
        exit(2);
    }
    return t;
}

static struct ag_cronexpr expr(const char *s)
{
    struct ag_cronexpr e;
    char err[200];
    if (!ag_cronexpr_parse(s, strlen(s), &e, err, sizeof err)) {
        fprintf(stderr, "unexpected parse failure of '%s': %s\n", s, err);
        check_failures++;
    }
    return e;
}

/* Parsing s fails with a message containing want. */
static void parse_fails(const char *s, const char *want)
{
    struct ag_cronexpr e;
    char err[200] = "";
    bool ok = ag_cronexpr_parse(s, strlen(s), &e, err, sizeof err);
    CHECK(!ok);
    if (!ok && !strstr(err, want))
        fprintf(stderr, "'%s': message '%s' lacks '%s'\n", s, err, want);
    CHECK(!ok && strstr(err, want));
}

/* next(s, zone, after) is want (-1: none). */
static void next_is(const char *s, const char *zone, const char *after, const char *want)
{
    struct ag_cronexpr e = expr(s);
    const struct ag_tz *z = ag_tz_find(zone);
    CHECK(z != NULL);
    if (!z)
        return;
    int64_t got = ag_cronexpr_next(&e, z, at(after));
    int64_t exp = want ? at(want) : -1;
    if (got != exp) {
        struct ag_civil c;
        ag_civil_split(got, &c);
        fprintf(stderr, "next('%s', %s, %s) = %04lld-%02d-%02dT%02d:%02d:%02dZ, want %s\n", s, zone, after,
                (long long)c.year, c.mon, c.day, c.hour, c.min, c.sec, want ? want : "none");
    }
    CHECK(got == exp);
}

/* The firings of s in zone within [from, to): count, and optionally the list in out. */
static int firings(const char *s, const char *zone, const char *from, const char *to, int64_t *out, int max)
{
    struct ag_cronexpr e = expr(s);
    const struct ag_tz *z = ag_tz_find(zone);
    int n = 0;
    int64_t end = at(to);
    for (int64_t t = ag_cronexpr_next(&e, z, at(from) - 1); t >= 0 && t < end; t = ag_cronexpr_next(&e, z, t)) {
        if (out && n < max)
            out[n] = t;
        n++;
    }
    return n;
}

static void test_civil(void)
{
    CHECK(ag_civil_days(1970, 1, 1) == 0);
    CHECK(ag_civil_days(2000, 3, 1) == 11017);
    CHECK(ag_civil_days(1969, 12, 31) == -1);
    CHECK(ag_civil_weekday(ag_civil_days(2024, 2, 29)) == 4); /* a Thursday */
    CHECK(ag_civil_leap(2000) && ag_civil_leap(2024) && !ag_civil_leap(2100) && !ag_civil_leap(2023));
    CHECK(ag_civil_mdays(2024, 2) == 29 && ag_civil_mdays(2100, 2) == 28);
    for (int64_t t = -5000000000LL; t < 5000000000LL; t += 86399 * 37) {
        struct ag_civil c;
        ag_civil_split(t, &c);
        CHECK(ag_civil_join(&c) == t);
    }
    int64_t t;
    CHECK(ag_civil_parse_rfc3339("2024-02-29T12:30:00Z", 20, &t) && t == 1709209800);
    CHECK(ag_civil_parse_rfc3339("2024-02-29T14:30:00.123+02:00", 29, &t) && t == 1709209800);
    CHECK(ag_civil_parse_rfc3339("2024-02-29T12:30:00", 19, &t) && t == 1709209800);
    CHECK(ag_civil_parse_rfc3339("2024-02-29", 10, &t) && t == 1709164800);
    CHECK(!ag_civil_parse_rfc3339("2023-02-29T00:00:00Z", 20, &t));
    CHECK(!ag_civil_parse_rfc3339("tomorrow", 8, &t));
    CHECK(!ag_civil_parse_rfc3339("2024-01-01T25:00:00Z", 20, &t));
}

static void test_parse(void)
{
    struct ag_cronexpr e = expr("*/15 9-17 * * MON-FRI");
    CHECK(e.min == (1ull << 0 | 1ull << 15 | 1ull << 30 | 1ull << 45));
    CHECK(e.hour == 0x3fe00u);
    CHECK(e.dow == 0x3e && e.dom_star && !e.dow_star && !e.seconds && e.sec == 1);
    e = expr("0 0 1,15 jan,Jul sun,7");
    CHECK(e.dom == (1u << 1 | 1u << 15) && e.mon == (1u << 1 | 1u << 7) && e.dow == 1);
    e = expr("*/5 * * * * *");
    CHECK(e.seconds);
    CHECK(__builtin_popcountll(e.sec) == 12 && (e.sec & 1));
    e = expr("5/20 * * * *");
    CHECK(e.min == (1ull << 5 | 1ull << 25 | 1ull << 45));
    e = expr("0 0 ? * 5-7");
    CHECK(e.dom_star && e.dow == (1u << 5 | 1u << 6 | 1u << 0));
    e = expr("@hourly");
    CHECK(e.min == 1 && e.hour == 0xffffffu);
    e = expr("  @WEEKLY ");
    CHECK(e.dow == 1 && e.hour == 1);
    e = expr("\t0  12 * *\t*  ");
    CHECK(e.hour == 1u << 12);

    parse_fails("", "expected 5 fields");
    parse_fails("* * *", "got 3");
    parse_fails("* * * * * * *", "got 7");
    parse_fails("61 * * * *", "minute field: '61' is out of range 0-59");
    parse_fails("0 24 * * *", "hour field: '24' is out of range 0-23");
    parse_fails("0 0 0 * *", "day-of-month field: '0' is out of range 1-31");
    parse_fails("0 0 * 13 *", "month field: '13'");
    parse_fails("0 0 * * 8", "day-of-week field: '8'");
    parse_fails("60 * * * * *", "second field: '60'");
    parse_fails("*/0 * * * *", "step of 0");
    parse_fails("5-2 * * * *", "goes backwards");
    parse_fails("1,,2 * * * *", "empty list item");
    parse_fails("a * * * *", "minute field: 'a' is not a number");
    parse_fails("0 0 L * *", "L, W or #");
    parse_fails("0 0 * * 5#3", "day-of-week field: '5#3'");
    parse_fails("0 0 * FOO *", "month field: 'FOO'");
    parse_fails("? * * * *", "only the day fields");
    parse_fails("0 0 30 2 *", "names no day that exists");
    parse_fails("0 0 31 4,6,9,11 *", "names no day");
    parse_fails("@reboot", "not a known macro");
    parse_fails("1-5/x * * * *", "step that is not a number");
}

static void test_next_utc(void)
{
    next_is("*/5 * * * *", "UTC", "2024-05-01T10:02:00Z", "2024-05-01T10:05:00Z");
    next_is("*/5 * * * *", "UTC", "2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z");
    next_is("*/5 * * * *", "UTC", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z");
    next_is("*/10 * * * * *", "UTC", "2024-05-01T10:00:05Z", "2024-05-01T10:00:10Z");
    next_is("* * * * * *", "UTC", "2024-05-01T10:00:05Z", "2024-05-01T10:00:06Z");
    next_is("30 9 * * MON-FRI", "UTC", "2024-05-03T10:00:00Z", "2024-05-06T09:30:00Z"); /* Fri → Mon */
    next_is("@yearly", "UTC", "2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z");
    next_is("@monthly", "UTC", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z");
    next_is("0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"); /* April has 30 days */
    /* Both day fields restricted: either matches (the 13th, or a Friday). */
    next_is("0 0 13 * FRI", "UTC", "2024-09-01T00:00:00Z", "2024-09-06T00:00:00Z");
    next_is("0 0 13 * FRI", "UTC", "2024-09-07T00:00:00Z", "2024-09-13T00:00:00Z");
    /* One restricted: both must hold (a Friday the 13th). */
    next_is("0 0 */1 * FRI", "UTC", "2024-09-07T00:00:00Z", "2024-09-13T00:00:00Z");
    /* Leap days. */
    next_is("0 0 29 2 *", "UTC", "2023-03-01T00:00:00Z", "2024-02-29T00:00:00Z");
    next_is("0 0 29 2 *", "UTC", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z");
    next_is("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"); /* 2100 is not a leap year */
    next_is("0 12 29 2 MON", "UTC", "2024-01-01T00:00:00Z", "2024-02-05T12:00:00Z"); /* either: a Monday first */
    next_is("0 0 28-29 2 *", "UTC", "2023-02-28T00:00:00Z", "2024-02-28T00:00:00Z");
}

static void test_dst(void)
{
    /* New York, 2024-03-10: 02:00 EST becomes 03:00 EDT (07:00Z). A 02:30 job runs once that day, at
     * the jump; the day before and after at 02:30. */
    int64_t f[8];
    int n = firings("30 2 * * *", "America/New_York", "2024-03-09T05:00:00Z", "2024-03-12T05:00:00Z", f, 8);
    CHECK(n == 3);
    CHECK(f[0] == at("2024-03-09T07:30:00Z") && f[1] == at("2024-03-10T07:00:00Z") &&
          f[2] == at("2024-03-11T06:30:00Z"));
    /* 2024-11-03: 02:00 EDT becomes 01:00 EST (06:00Z). A 01:30 job runs once, at the first 01:30. */
    n = firings("30 1 * * *", "America/New_York", "2024-11-02T04:00:00Z", "2024-11-05T05:00:00Z", f, 8);
    CHECK(n == 3);
    CHECK(f[0] == at("2024-11-02T05:30:00Z") && f[1] == at("2024-11-03T05:30:00Z") &&
          f[2] == at("2024-11-04T06:30:00Z"));
    /* Every half hour keeps its pace through both passes of the repeated hour. */
    n = firings("*/30 * * * *", "America/New_York", "2024-11-03T04:50:00Z", "2024-11-03T07:10:00Z", f, 8);
    CHECK(n == 5);
    CHECK(f[0] == at("2024-11-03T05:00:00Z") && f[1] == at("2024-11-03T05:30:00Z") &&
          f[2] == at("2024-11-03T06:00:00Z") && f[3] == at("2024-11-03T06:30:00Z") &&
          f[4] == at("2024-11-03T07:00:00Z"));
    /* Starting inside the second pass. */
    next_is("*/30 * * * *", "America/New_York", "2024-11-03T06:10:00Z", "2024-11-03T06:30:00Z");
    next_is("30 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", "2024-11-04T06:30:00Z");
    next_is("45 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", "2024-11-04T06:45:00Z");
    /* Hourly over the spring jump: 02:00 does not exist and falls on 03:00, which fires once. */
    n = firings("0 * * * *", "America/New_York", "2024-03-10T05:30:00Z", "2024-03-10T08:30:00Z", f, 8);
    CHECK(n == 3);
    CHECK(f[0] == at("2024-03-10T06:00:00Z") && f[1] == at("2024-03-10T07:00:00Z") &&
          f[2] == at("2024-03-10T08:00:00Z"));
    /* A whole day of hourly firings: 23 on the spring day, 25 on the autumn day (real hours). */
    CHECK(firings("0 * * * *", "America/New_York", "2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z", NULL, 0) == 23);
    CHECK(firings("0 * * * *", "America/New_York", "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z", NULL, 0) == 25);
    /* Daily jobs fire once a day on both DST days, in Europe too (London: 01:00 GMT → 02:00 BST). */
    CHECK(firings("30 1 * * *", "Europe/London", "2024-03-30T12:00:00Z", "2024-04-01T12:00:00Z", f, 8) == 2);
    CHECK(f[0] == at("2024-03-31T01:00:00Z") && f[1] == at("2024-04-01T00:30:00Z")); /* 01:30 was skipped: at the jump (02:00 BST) */
    CHECK(firings("30 1 * * *", "Europe/London", "2024-10-26T12:00:00Z", "2024-10-28T12:00:00Z", f, 8) == 2);
    CHECK(f[0] == at("2024-10-27T00:30:00Z") && f[1] == at("2024-10-28T01:30:00Z")); /* the first 01:30 (BST) */
    /* Lord Howe moves its clocks by 30 minutes. */
    CHECK(firings("15 2 * * *", "Australia/Lord_Howe", "2024-10-05T00:00:00Z", "2024-10-08T00:00:00Z", NULL, 0) == 3);
    /* Far past the table of transitions: the footer's rule decides (2070: DST from March 9 in New York). */
    next_is("0 12 * * *", "America/New_York", "2070-03-09T12:00:00Z", "2070-03-09T16:00:00Z");
    next_is("0 12 * * *", "America/New_York", "2070-03-10T12:00:00Z", "2070-03-10T16:00:00Z");
    next_is("0 12 * * *", "America/New_York", "2070-03-08T12:00:00Z", "2070-03-08T17:00:00Z");
    /* Zones without DST and with odd offsets. */
    next_is("0 9 * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z", "2024-01-01T03:30:00Z");
    next_is("0 9 * * *", "Asia/Kathmandu", "2024-01-01T00:00:00Z", "2024-01-01T03:15:00Z");
}

/* ag_tz_offset agrees with the C library (which reads the same files) over many zones and instants. */
static void test_offsets_vs_libc(void)
{
    static const char *const zones[] = {"America/New_York", "Europe/London", "Europe/Dublin", "Australia/Lord_Howe",
                                        "Asia/Tehran", "America/Sao_Paulo", "Pacific/Apia", "Africa/Casablanca",
                                        "America/Nuuk", "Pacific/Chatham", "Asia/Kolkata", "America/Santiago",
                                        "Antarctica/Troll", "Europe/Moscow", "UTC"};
    srand(7);
    int bad = 0;
    for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
        const struct ag_tz *z = ag_tz_find(zones[k]);
        CHECK(z != NULL);
        if (!z)
            continue;
        setenv("TZ", zones[k], 1);
        tzset();
        for (int i = 0; i < 4000; i++) {
            /* 1902..2099, plus dense sampling around now */
            int64_t t = i < 2000 ? -2140000000LL + (int64_t)((double)rand() / RAND_MAX * 6240000000.0)
                                 : 1700000000LL + (int64_t)rand() % 400000000LL;
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (tm.tm_gmtoff != ag_tz_offset(z, t) && bad++ < 10)
                fprintf(stderr, "%s at %lld: libc %ld, ours %d\n", zones[k], (long long)t, tm.tm_gmtoff,
                        ag_tz_offset(z, t));
            /* local → UTC round trip for readings that happen once */
            int64_t l = t + ag_tz_offset(z, t);
            int64_t back = ag_tz_local_to_utc(z, l, false), back2 = ag_tz_local_to_utc(z, l, true);
            if (back != t && back2 != t && bad++ < 10)
                fprintf(stderr, "%s: local %lld maps to %lld/%lld, not %lld\n", zones[k], (long long)l,
                        (long long)back, (long long)back2, (long long)t);
        }
    }
    CHECK(bad == 0);
    unsetenv("TZ");
}

static void test_db(void)
{
    CHECK(ag_tz_find("America/New_York") != NULL);
    CHECK(ag_tz_find("Etc/UTC") != NULL);
    CHECK(ag_tz_find("UTC") != NULL);
    CHECK(ag_tz_find("Mars/Olympus") == NULL);
    CHECK(ag_tz_find("america/new_york") == NULL);
    CHECK(ag_tz_find("posix/America/New_York") == NULL);
    CHECK(ag_tz_find("zone.tab") == NULL);
    CHECK(ag_tz_find("../etc/passwd") == NULL);
    unsigned char junk[64] = "TZif2";
    CHECK(ag_tz_parse("x", junk, sizeof junk) == NULL);
    CHECK(ag_tz_parse("x", junk, 10) == NULL);
}

int main(void)
{
    test_civil();
    if (ag_tz_db_load("/usr/share/zoneinfo") < 100) {
        printf("no tzdata under /usr/share/zoneinfo: skipped\n");
        return 77;
    }
    test_parse();
    test_next_utc();
    test_dst();
    test_offsets_vs_libc();
    test_db();
    ag_tz_db_free();
    return CHECK_DONE();
}
