#include "net/obuf.h"

#include "core/alloc.h"

struct ag_obuf *ag_obuf_new(uint32_t cap)
{
    struct ag_obuf *b = ag_malloc(sizeof *b + cap);
    b->refs = 1;
    b->len = 0;
    b->cap = cap;
    return b;
}

void ag_obuf_unref(struct ag_obuf *b)
{
    if (--b->refs == 0)
        ag_free(b);
}
