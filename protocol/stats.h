/* protocol/'s per-shard metrics (protocol/stats.def), numbered from AG_STATS_PROTOCOL (core/stats.h): update them with
 * ag_stat_add and friends; the composition root registers ag_protocol_stat_descs so /metrics prints them. */
#ifndef AG_PROTOCOL_STATS_H
#define AG_PROTOCOL_STATS_H

#include "core/stats.h"

enum ag_protocol_stat {
    AG_PROTOCOL_STAT__BASE = AG_STATS_PROTOCOL - 1,
#define AG_STAT(id, type, name, labels, help) AG_STAT_##id,
#include "protocol/stats.def"
#undef AG_STAT
    AG_PROTOCOL_STAT__END
};
_Static_assert(AG_PROTOCOL_STAT__END <= AG_STATS_PROTOCOL + AG_STATS_PER_LAYER,
               "protocol/stats.def: more than AG_STATS_PER_LAYER");

/* The descriptions of protocol/stats.def, by id - AG_STATS_PROTOCOL, for ag_stats_register. */
#define AG_PROTOCOL_STATS_N (AG_PROTOCOL_STAT__END - AG_STATS_PROTOCOL)
extern const struct ag_stat_desc ag_protocol_stat_descs[AG_PROTOCOL_STATS_N];

#endif
