/* Cron expressions and their next firing time, in a time zone (core/tz.h). Pure functions: no I/O,
 * no global state.
 *
 * Syntax: 5 fields "minute hour day-of-month month day-of-week", or 6 with seconds first. Each field
 * is a comma-separated list of `*`, `?` (same as `*`), `a`, `a-b`, `*` / `a` / `a-b` followed by
 * `/step`; months take JAN..DEC and weekdays SUN..SAT (any case); weekday 7 is Sunday too. Macros:
 * @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly. As in Vixie cron, when both
 * day fields are restricted (neither starts with `*` or `?`) a day matches either of them; otherwise
 * both.
 *
 * Time zones: the expression names wall-clock times of the zone. A time the clocks skip (spring
 * forward) fires once, at the instant of the jump. A time that happens twice (fall back) fires once,
 * at its first occurrence, except for schedules that run every hour (hour field `*`), which also
 * fire through the repeated hour, so they keep their pace in real time. */
#ifndef AG_RUNTIME_CRONEXPR_H
#define AG_RUNTIME_CRONEXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ag_tz;

struct ag_cronexpr {
    uint64_t sec, min; /* bit n: second / minute n */
    uint32_t hour;     /* bit 0..23 */
    uint32_t dom;      /* bit 1..31 */
    uint16_t mon;      /* bit 1..12 */
    uint8_t dow;       /* bit 0..6, Sunday = 0 */
    bool dom_star, dow_star; /* the field starts with * or ? */
    bool seconds;      /* written with 6 fields */
};

/* Parses s[0..n). Returns true, or false with a message in err (NUL-terminated, cut to errlen) that
 * names the field and the text where it fails, e.g. "hour field: 25 is out of range 0-23". */
bool ag_cronexpr_parse(const char *s, size_t n, struct ag_cronexpr *out, char *err, size_t errlen);

/* The first firing strictly after instant `after` (seconds since the epoch) with the wall clock of
 * zone z, or -1 when there is none within 400 years. */
int64_t ag_cronexpr_next(const struct ag_cronexpr *e, const struct ag_tz *z, int64_t after);

#endif
