#include "graph/ids.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/uuid.h"

void ag_graph_checkpoint_id(int step, char out[37])
{
    ag_uuid6((uint16_t)(((unsigned)step & 0xffffu) | 0x8000u), out);
}

void ag_graph_make_task_id(const char *checkpoint_id, const char *node, char out[37])
{
    if (ag_uuid5(checkpoint_id, node, strlen(node), out) < 0)
        ag_uuid4(out);
}

void ag_graph_interrupt_id(const char *task_id, int idx, char out[33])
{
    char name[32], u[37];
    int n = snprintf(name, sizeof name, "interrupt:%d", idx);
    if (ag_uuid5(task_id, name, (size_t)n, u) < 0)
        ag_uuid4(u);
    char *p = out;
    for (const char *s = u; *s; s++)
        if (*s != '-')
            *p++ = *s;
    *p = 0;
}
