#include "persist/stats.h"

const struct ag_stat_desc ag_persist_stat_descs[AG_PERSIST_STATS_N] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id - AG_STATS_PERSIST] = {#type, name, labels, help},
#include "persist/stats.def"
#undef AG_STAT
};
