/* Calendar arithmetic on the proleptic Gregorian calendar, in whole seconds since the Unix epoch,
 * without the C library's time zone state (no TZ, no tzset: safe on every shard thread). A "naive"
 * time is a wall-clock reading counted like a UTC time (seconds since 1970-01-01 00:00 of that wall
 * clock); core/tz.h converts between naive local times and instants. */
#ifndef AG_CORE_CIVIL_H
#define AG_CORE_CIVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A broken-down time: year (any), month 1..12, day 1..31, hour 0..23, minute and second 0..59. */
struct ag_civil {
    int64_t year;
    int mon, day, hour, min, sec;
};

/* True in a Gregorian leap year. */
bool ag_civil_leap(int64_t year);
/* Days in month mon (1..12) of year. */
int ag_civil_mdays(int64_t year, int mon);
/* Days from 1970-01-01 to year-mon-day (negative before it). mon 1..12, day 1..31. */
int64_t ag_civil_days(int64_t year, int mon, int day);
/* Day of the week of a day count from ag_civil_days: 0 = Sunday .. 6 = Saturday. */
int ag_civil_weekday(int64_t days);
/* Splits seconds since the epoch into fields. */
void ag_civil_split(int64_t t, struct ag_civil *out);
/* Seconds since the epoch of c (fields must be in range). */
int64_t ag_civil_join(const struct ag_civil *c);

/* Parses an RFC 3339 / ISO 8601 date-time: YYYY-MM-DD, 'T' or ' ', HH:MM[:SS[.fraction]], then 'Z',
 * "+HH:MM", "-HH:MM", "+HHMM" or nothing (no offset = UTC, as Pydantic reads a naive time). A bare
 * date is midnight UTC. The fraction is truncated to whole seconds. Returns true and sets *t to the
 * instant in seconds since the epoch, or false when s[0..n) is not such a time. */
bool ag_civil_parse_rfc3339(const char *s, size_t n, int64_t *t);

#endif
