/* Per-shard metrics. Each layer declares its own in its folder's stats.def (AG_STAT(id, type, name,
 * labels, help)) and numbers them from its base below (core's here, net's in net/stats.h, ...), so an id
 * is a constant and every shard's counters are one array; the composition root registers each layer's
 * descriptions (ag_stats_register) before the shards start, and /metrics prints the registered ones.
 * Each shard is the only writer of its own block; any thread may read any block (relaxed atomics, so
 * readers see whole values without locks). */
#ifndef AG_CORE_STATS_H
#define AG_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/common.h"

/* Where each layer's ids start; a layer has at most AG_STATS_PER_LAYER. */
#define AG_STATS_PER_LAYER 16
enum ag_stats_base {
    AG_STATS_CORE = 0,
    AG_STATS_NET = AG_STATS_CORE + AG_STATS_PER_LAYER,
    AG_STATS_PERSIST = AG_STATS_NET + AG_STATS_PER_LAYER,
    AG_STATS_RUNTIME = AG_STATS_PERSIST + AG_STATS_PER_LAYER,
    AG_STATS_PROTOCOL = AG_STATS_RUNTIME + AG_STATS_PER_LAYER,
    AG_STATS_MAX = AG_STATS_PROTOCOL + AG_STATS_PER_LAYER,
};

enum ag_core_stat {
    AG_CORE_STAT__BASE = AG_STATS_CORE - 1,
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "core/stats.def"
#undef AG_STAT
    AG_CORE_STAT__END
};
_Static_assert(AG_CORE_STAT__END <= AG_STATS_CORE + AG_STATS_PER_LAYER, "core/stats.def: more than AG_STATS_PER_LAYER");

struct ag_stats {
    _Alignas(AG_CACHELINE) _Atomic uint64_t v[AG_STATS_MAX];
};

struct ag_stat_desc {
    const char *type, *name, *labels, *help;
};
/* Every registered description by id (core's from the start; name NULL: no metric there). Read-only once
 * the shards run. */
extern struct ag_stat_desc ag_stat_descs[AG_STATS_MAX];
/* Main thread, before the shards start: descs[0..n) describe the ids base.. (a layer's stats.def). */
void ag_stats_register(unsigned base, const struct ag_stat_desc *descs, unsigned n);

/* Owner shard only. id: any layer's AG_STAT_*. */
static inline void ag_stat_add(struct ag_stats *s, unsigned id, uint64_t n)
{
    atomic_store_explicit(&s->v[id], atomic_load_explicit(&s->v[id], memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void ag_stat_sub(struct ag_stats *s, unsigned id, uint64_t n)
{
    atomic_store_explicit(&s->v[id], atomic_load_explicit(&s->v[id], memory_order_relaxed) - n, memory_order_relaxed);
}
static inline void ag_stat_set(struct ag_stats *s, unsigned id, uint64_t v)
{
    atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}
/* Any thread. */
static inline uint64_t ag_stat_get(struct ag_stats *s, unsigned id)
{
    return atomic_load_explicit(&s->v[id], memory_order_relaxed);
}

#endif
