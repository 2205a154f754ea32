/* Per-shard metrics (core/stats.def). Each shard is the only writer of its own block; any thread may
 * read any block (relaxed atomics, so readers see whole values without locks). */
#ifndef AG_CORE_STATS_H
#define AG_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/common.h"

enum ag_stat {
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "core/stats.def"
#undef AG_STAT
    AG_STAT__COUNT
};

struct ag_stats {
    _Alignas(AG_CACHELINE) _Atomic uint64_t v[AG_STAT__COUNT];
};

struct ag_stat_desc {
    const char *type, *name, *labels, *help;
};
extern const struct ag_stat_desc ag_stat_descs[AG_STAT__COUNT];

/* Owner shard only. */
static inline void ag_stat_add(struct ag_stats *s, enum ag_stat id, uint64_t n)
{
    atomic_store_explicit(&s->v[id], atomic_load_explicit(&s->v[id], memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void ag_stat_sub(struct ag_stats *s, enum ag_stat id, uint64_t n)
{
    atomic_store_explicit(&s->v[id], atomic_load_explicit(&s->v[id], memory_order_relaxed) - n, memory_order_relaxed);
}
static inline void ag_stat_set(struct ag_stats *s, enum ag_stat id, uint64_t v)
{
    atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}
/* Any thread. */
static inline uint64_t ag_stat_get(struct ag_stats *s, enum ag_stat id)
{
    return atomic_load_explicit(&s->v[id], memory_order_relaxed);
}

#endif
