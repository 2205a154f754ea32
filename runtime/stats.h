/* runtime/'s per-shard metrics (runtime/stats.def), numbered from AG_STATS_RUNTIME (core/stats.h): update them with
 * ag_stat_add and friends; the composition root registers ag_runtime_stat_descs so /metrics prints them. */
#ifndef AG_RUNTIME_STATS_H
#define AG_RUNTIME_STATS_H

#include "core/stats.h"

enum ag_runtime_stat {
    AG_RUNTIME_STAT__BASE = AG_STATS_RUNTIME - 1,
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "runtime/stats.def"
#undef AG_STAT
    AG_RUNTIME_STAT__END
};
_Static_assert(AG_RUNTIME_STAT__END <= AG_STATS_RUNTIME + AG_STATS_PER_LAYER,
               "runtime/stats.def: more than AG_STATS_PER_LAYER");

/* The descriptions of runtime/stats.def, by id - AG_STATS_RUNTIME, for ag_stats_register. */
#define AG_RUNTIME_STATS_N (AG_RUNTIME_STAT__END - AG_STATS_RUNTIME)
extern const struct ag_stat_desc ag_runtime_stat_descs[AG_RUNTIME_STATS_N];

#endif
