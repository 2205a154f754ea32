#include "runtime/stats.h"

const struct ag_stat_desc ag_runtime_stat_descs[AG_RUNTIME_STATS_N] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id - AG_STATS_RUNTIME] = {#type, name, labels, help},
#include "runtime/stats.def"
#undef AG_STAT
};
