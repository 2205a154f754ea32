#include "core/spsc.h"

#include <errno.h>
#include <string.h>

#include "core/alloc.h"

int ag_spsc_init(struct ag_spsc *q, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)))
        return -EINVAL;
    memset(q, 0, sizeof *q);
    q->mask = capacity - 1;
    q->slots = ag_calloc(capacity, sizeof *q->slots);
    return 0;
}

void ag_spsc_destroy(struct ag_spsc *q)
{
    ag_free(q->slots);
    q->slots = NULL;
}
