/* persist/'s per-shard metrics (persist/stats.def), numbered from AG_STATS_PERSIST (core/stats.h): update them with
 * ag_stat_add and friends; the composition root registers ag_persist_stat_descs so /metrics prints them. */
#ifndef AG_PERSIST_STATS_H
#define AG_PERSIST_STATS_H

#include "core/stats.h"

enum ag_persist_stat {
    AG_PERSIST_STAT__BASE = AG_STATS_PERSIST - 1,
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "persist/stats.def"
#undef AG_STAT
    AG_PERSIST_STAT__END
};
_Static_assert(AG_PERSIST_STAT__END <= AG_STATS_PERSIST + AG_STATS_PER_LAYER,
               "persist/stats.def: more than AG_STATS_PER_LAYER");

/* The descriptions of persist/stats.def, by id - AG_STATS_PERSIST, for ag_stats_register. */
#define AG_PERSIST_STATS_N (AG_PERSIST_STAT__END - AG_STATS_PERSIST)
extern const struct ag_stat_desc ag_persist_stat_descs[AG_PERSIST_STATS_N];

#endif
