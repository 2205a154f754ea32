#include "protocol/stats.h"

const struct ag_stat_desc ag_protocol_stat_descs[AG_PROTOCOL_STATS_N] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id - AG_STATS_PROTOCOL] = {#type, name, labels, help},
#include "protocol/stats.def"
#undef AG_STAT
};
