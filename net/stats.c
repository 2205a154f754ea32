#include "net/stats.h"

const struct ag_stat_desc ag_net_stat_descs[AG_NET_STATS_N] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id - AG_STATS_NET] = {#type, name, labels, help},
#include "net/stats.def"
#undef AG_STAT
};
