/* net/'s per-shard metrics (net/stats.def), numbered from AG_STATS_NET (core/stats.h): update them with
 * ag_stat_add and friends; the composition root registers ag_net_stat_descs so /metrics prints them. */
#ifndef AG_NET_STATS_H
#define AG_NET_STATS_H

#include "core/stats.h"

enum ag_net_stat {
    AG_NET_STAT__BASE = AG_STATS_NET - 1,
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "net/stats.def"
#undef AG_STAT
    AG_NET_STAT__END
};
_Static_assert(AG_NET_STAT__END <= AG_STATS_NET + AG_STATS_PER_LAYER, "net/stats.def: more than AG_STATS_PER_LAYER");

/* The descriptions of net/stats.def, by id - AG_STATS_NET, for ag_stats_register. */
#define AG_NET_STATS_N (AG_NET_STAT__END - AG_STATS_NET)
extern const struct ag_stat_desc ag_net_stat_descs[AG_NET_STATS_N];

#endif
