#include "core/obuf.h"

#include "core/alloc.h"

#define POOL_MAX 64

/* Idle standard-size buffers of this thread; obufs never leave the shard that made them. */
static _Thread_local struct ag_obuf *pool[POOL_MAX];
static _Thread_local unsigned pooled;

struct ag_obuf *ag_obuf_new(uint32_t cap)
{
    struct ag_obuf *b;
    if (cap == AG_OBUF_STD && pooled) {
        b = pool[--pooled];
    } else {
        b = ag_malloc(sizeof *b + cap);
        b->cap = cap;
    }
    b->refs = 1;
    b->len = 0;
    return b;
}

void ag_obuf_unref(struct ag_obuf *b)
{
    if (--b->refs)
        return;
    if (b->cap == AG_OBUF_STD && pooled < POOL_MAX)
        pool[pooled++] = b;
    else
        ag_free(b);
}

void ag_obuf_pool_free(void)
{
    while (pooled)
        ag_free(pool[--pooled]);
}
