#include "core/stats.h"

#include "core/common.h"

struct ag_stat_desc ag_stat_descs[AG_STATS_MAX] = {
#define AG_STAT(id, type, name, labels, help) [AG_STAT_##id] = {#type, name, labels, help},
#include "core/stats.def"
#undef AG_STAT
};

void ag_stats_register(unsigned base, const struct ag_stat_desc *descs, unsigned n)
{
    AG_BUG_ON(n > AG_STATS_PER_LAYER || base + n > AG_STATS_MAX);
    for (unsigned i = 0; i < n; i++)
        ag_stat_descs[base + i] = descs[i];
}
