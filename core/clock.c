#include "core/clock.h"

#include <stdio.h>
#include <time.h>

uint64_t ag_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * AG_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ag_clock_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * AG_US_PER_SEC + ag_ns_to_us((uint64_t)ts.tv_nsec);
}

void ag_clock_http_date(int64_t t, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

size_t ag_clock_iso8601(uint64_t us, char out[32])
{
    time_t tt = (time_t)ag_us_to_sec(us);
    struct tm tm;
    gmtime_r(&tt, &tm);
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ag_us_to_ms(us) % AG_MS_PER_SEC));
    return n > 0 ? (size_t)n : 0;
}
