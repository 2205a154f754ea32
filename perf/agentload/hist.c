#include "hist.h"

#include <string.h>

#define HALF (1u << (AL_HIST_SUB_BITS - 1))

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << AL_HIST_SUB_BITS)) return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = top - (AL_HIST_SUB_BITS - 1);
    return shift * HALF + (unsigned)(v >> shift);
}

/* [lo, lo + width) is the range of values bucket i holds. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < (1u << AL_HIST_SUB_BITS)) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned shift = i / HALF - 1;
    uint64_t m = i - shift * HALF;
    *lo = m << shift;
    *width = (uint64_t)1 << shift;
}

void al_hist_reset(struct al_hist *h)
{
    memset(h, 0, sizeof *h);
}

void al_hist_record(struct al_hist *h, uint64_t ns)
{
    if (h->count == 0 || ns < h->min) h->min = ns;
    if (ns > h->max) h->max = ns;
    h->count++;
    h->sum += (double)ns;
    h->bucket[bucket_of(ns)]++;
}

void al_hist_merge(struct al_hist *dst, const struct al_hist *src)
{
    if (!src->count) return;
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < AL_HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
}

uint64_t al_hist_percentile(const struct al_hist *h, double p)
{
    if (!h->count) return 0;
    if (p >= 100.0) return h->max;
    uint64_t want = (uint64_t)((p / 100.0) * (double)h->count + 0.999999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < AL_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= want) {
            uint64_t lo, width, v;
            bucket_range(i, &lo, &width);
            v = lo + width / 2;
            if (v < h->min) v = h->min;
            if (v > h->max) v = h->max;
            return v;
        }
    }
    return h->max;
}

double al_hist_mean(const struct al_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}
