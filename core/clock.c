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

void ag_clock_imf_fixdate(int64_t t, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* gmtime_r's fields are in range, but gcc sizes an int's %02d at up to 11 bytes and reports the 29-byte
     * date as truncated; the unsigned remainders state the ranges. IMF-fixdate's year has four digits. */
    snprintf(out, 30, "%s, %02u %s %04u %02u:%02u:%02u GMT", days[tm.tm_wday], (unsigned)tm.tm_mday % 100u,
             months[tm.tm_mon], (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

size_t ag_clock_iso8601(uint64_t us, char out[32])
{
    time_t tt = (time_t)ag_us_to_sec(us);
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* As above: bounded fields leave room for any int year (11 bytes) in the 32, so nothing is cut. */
    int n = snprintf(out, 32, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", tm.tm_year + 1900,
                     (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
                     (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)(ag_us_to_ms(us) % AG_MS_PER_SEC));
    return n > 0 ? (size_t)n : 0;
}
