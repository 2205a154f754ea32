#include "core/stats.h"

const struct ag_stat_desc ag_stat_descs[AG_STAT__COUNT] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id] = {#type, name, labels, help},
#include "core/stats.def"
#undef AG_STAT
};
