/* hist: a log-linear latency histogram in the HDR style. Values are nanoseconds (any uint64_t);
 * every power of two is split into 64 linear sub-buckets, so a recorded value is known to within
 * 1/64 (1.6%) of itself, from 1 ns to the full 64-bit range, in a fixed 30 KiB table. The exact
 * minimum, maximum and sum are kept on the side. Not thread-safe; one per measured stream. */
#ifndef AL_HIST_H
#define AL_HIST_H

#include <stdint.h>

#define AL_HIST_SUB_BITS 7 /* 2^7 values below the first split, then 64 sub-buckets per power of two */
#define AL_HIST_BUCKETS ((64 - AL_HIST_SUB_BITS + 1) * (1 << (AL_HIST_SUB_BITS - 1)) + (1 << (AL_HIST_SUB_BITS - 1)))

struct al_hist {
    uint64_t count, min, max;
    double sum;
    uint64_t bucket[AL_HIST_BUCKETS];
};

/* Empties h (every count to zero). */
void al_hist_reset(struct al_hist *h);

/* Records one value (ns). */
void al_hist_record(struct al_hist *h, uint64_t ns);

/* Adds every value recorded in src to dst. */
void al_hist_merge(struct al_hist *dst, const struct al_hist *src);

/* The value at percentile p (0 < p <= 100): the middle of the sub-bucket holding the ceil(p% of
 * count)-th smallest value, clamped to [min, max]; 100 gives the exact max. 0 when h is empty. */
uint64_t al_hist_percentile(const struct al_hist *h, double p);

/* Mean of the recorded values (ns), 0 when empty. */
double al_hist_mean(const struct al_hist *h);

#endif
