/* Time sources. The shard loop caches "now" once per turn (ag_shard_now); these read the clock. */
#ifndef AG_CORE_CLOCK_H
#define AG_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ag_clock_mono_ns(void);
/* CLOCK_REALTIME in microseconds since the epoch. */
uint64_t ag_clock_real_us(void);
/* Writes the IMF-fixdate of unix second t ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes) into out[30]. */
void ag_clock_http_date(int64_t t, char out[30]);
/* Writes the ISO-8601 UTC time of us microseconds since the epoch with millisecond precision
 * ("2026-11-23T08:28:04.784Z", 24 bytes) into out[32]; returns the length. */
size_t ag_clock_iso8601(uint64_t us, char out[32]);

#endif
