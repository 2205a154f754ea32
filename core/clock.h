/* Time sources and time units. The shard loop caches "now" once per turn (ag_shard_now); these read
 * the clock. A time's unit is in its name (_ns, _us, _ms, _sec); converting between units goes through
 * the constants and helpers below, never a bare 1000000. */
#ifndef AG_CORE_CLOCK_H
#define AG_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* How many of the smaller unit make one of the larger (unsigned 64-bit constants). */
#define AG_NS_PER_US 1000ull
#define AG_NS_PER_MS 1000000ull
#define AG_NS_PER_SEC 1000000000ull
#define AG_US_PER_MS 1000ull
#define AG_US_PER_SEC 1000000ull
#define AG_MS_PER_SEC 1000ull

/* ms milliseconds in nanoseconds (the caller keeps ms below UINT64_MAX / AG_NS_PER_MS). */
static inline uint64_t ag_ms_to_ns(uint64_t ms)
{
    return ms * AG_NS_PER_MS;
}
/* ns nanoseconds in whole microseconds (rounded down). */
static inline uint64_t ag_ns_to_us(uint64_t ns)
{
    return ns / AG_NS_PER_US;
}
/* us microseconds in whole milliseconds (rounded down). */
static inline uint64_t ag_us_to_ms(uint64_t us)
{
    return us / AG_US_PER_MS;
}
/* us microseconds in whole seconds (rounded down). */
static inline uint64_t ag_us_to_sec(uint64_t us)
{
    return us / AG_US_PER_SEC;
}
/* ns nanoseconds in milliseconds, as a double (for logs). */
static inline double ag_ns_to_ms_f(uint64_t ns)
{
    return (double)ns / 1e6;
}
/* sec seconds (a double, say from JSON or SQL) in nanoseconds, as a double; the caller range-checks
 * before converting it to an integer. */
static inline double ag_sec_to_ns_f(double sec)
{
    return sec * 1e9;
}

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ag_clock_mono_ns(void);
/* CLOCK_REALTIME in microseconds since the epoch. */
uint64_t ag_clock_real_us(void);
/* Writes the IMF-fixdate of unix second t ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes) into out[30]. */
void ag_clock_imf_fixdate(int64_t t, char out[30]);
/* Writes the ISO-8601 UTC time of us microseconds since the epoch with millisecond precision
 * ("2026-11-23T08:28:04.784Z", 24 bytes) into out[32]; returns the length. */
size_t ag_clock_iso8601(uint64_t us, char out[32]);

#endif
