/* IANA time zones read from the system's TZif files (/usr/share/zoneinfo, Debian's tzdata), without
 * the C library's TZ state: zones are immutable values, so every shard thread may use them at once.
 *
 * The zone database is loaded once at start-up (ag_tz_db_load, before the shards start: no file I/O
 * on a shard) and read-only afterwards. Times are whole seconds since the Unix epoch; an offset is
 * seconds east of UTC. Past the last transition a zone follows the POSIX TZ rule of its TZif footer
 * (e.g. "EST5EDT,M3.2.0,M11.1.0"), so offsets are right for any year. */
#ifndef AG_CORE_TZ_H
#define AG_CORE_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ag_tz;

/* A stretch of time with one UTC offset: instants [start, end) (INT64_MIN / INT64_MAX when open). */
struct ag_tz_span {
    int64_t start, end;
    int32_t off;
};

/* Parses TZif data (RFC 8536, versions 1 to 4) named name (copied). Returns the zone (free with
 * ag_tz_free), or NULL when data is not TZif or is inconsistent. */
struct ag_tz *ag_tz_parse(const char *name, const unsigned char *data, size_t len);
void ag_tz_free(struct ag_tz *z);
/* The zone's name as given to ag_tz_parse. */
const char *ag_tz_name(const struct ag_tz *z);
/* The built-in UTC zone (always available, with or without tzdata). */
const struct ag_tz *ag_tz_utc(void);

/* The span of constant offset that contains instant t. */
void ag_tz_span_at(const struct ag_tz *z, int64_t t, struct ag_tz_span *out);
/* The UTC offset in force at instant t. */
int32_t ag_tz_offset(const struct ag_tz *z, int64_t t);

/* The instant at which the zone's wall clock reads local (a naive time, core/civil.h). A reading that
 * happens twice (clocks set back) gives its first instant when !later, its second when later; a
 * reading that never happens (clocks set forward over it) gives the instant of that jump. */
int64_t ag_tz_local_to_utc(const struct ag_tz *z, int64_t local, bool later);

/* Start-up, on one thread: loads every TZif file under dir (recursively; the posix/ and right/
 * copies, localtime, posixrules and non-TZif files are skipped) as zones named by their path
 * relative to dir ("America/New_York"). Returns how many were loaded (0 when dir is missing). */
size_t ag_tz_db_load(const char *dir);
/* The loaded zone named name (exact, case-sensitive), the built-in UTC zone for "UTC" when tzdata
 * is missing, or NULL. Safe from any thread after ag_tz_db_load returned. */
const struct ag_tz *ag_tz_find(const char *name);
/* Frees the loaded zones (at exit, after every user stopped). */
void ag_tz_db_free(void);

#endif
