#include "core/timer.h"

#include "core/alloc.h"
#include "core/common.h"

/* Earlier deadline first; equal deadlines in the order they were armed. */
static bool before(const struct ag_timer *a, const struct ag_timer *b)
{
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void place(struct ag_timer_heap *h, uint32_t i, struct ag_timer *t)
{
    h->items[i] = t;
    t->heap_idx = i + 1;
}

static void sift_up(struct ag_timer_heap *h, uint32_t i)
{
    struct ag_timer *t = h->items[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(t, h->items[p]))
            break;
        place(h, i, h->items[p]);
        i = p;
    }
    place(h, i, t);
}

static void sift_down(struct ag_timer_heap *h, uint32_t i)
{
    struct ag_timer *t = h->items[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ag_timer *best = t;
        if (l < h->len && before(h->items[l], best)) {
            m = l;
            best = h->items[l];
        }
        if (r < h->len && before(h->items[r], best))
            m = r;
        if (m == i)
            break;
        place(h, i, h->items[m]);
        i = m;
    }
    place(h, i, t);
}

void ag_timer_arm(struct ag_timer_heap *h, struct ag_timer *t, uint64_t deadline_ns)
{
    if (t->heap_idx) {
        /* A move is a new arming: it goes behind what is already armed for the same deadline. */
        uint64_t old = t->deadline_ns;
        t->deadline_ns = deadline_ns;
        t->seq = ++h->seq;
        if (deadline_ns < old)
            sift_up(h, t->heap_idx - 1);
        else
            sift_down(h, t->heap_idx - 1);
        return;
    }
    if (h->len == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = ag_realloc(h->items, h->cap * sizeof *h->items);
    }
    t->deadline_ns = deadline_ns;
    t->seq = ++h->seq;
    place(h, h->len++, t);
    sift_up(h, h->len - 1);
}

void ag_timer_cancel(struct ag_timer_heap *h, struct ag_timer *t)
{
    if (!t->heap_idx)
        return;
    uint32_t i = t->heap_idx - 1;
    t->heap_idx = 0;
    struct ag_timer *last = h->items[--h->len];
    if (i == h->len)
        return;
    place(h, i, last);
    if (i > 0 && before(last, h->items[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

unsigned ag_timer_run(struct ag_timer_heap *h, uint64_t now_ns, unsigned budget, const uint32_t *stop)
{
    /* Everything armed from here on has a larger seq. Deadlines armed from callbacks are >= now, so
     * they sort behind every older due timer and the first one met ends the loop. */
    uint64_t armed_before = h->seq;
    unsigned n = 0;
    while (n < budget && h->len && h->items[0]->deadline_ns <= now_ns && h->items[0]->seq <= armed_before) {
        if (n && stop && !*stop)
            break;
        struct ag_timer *t = h->items[0];
        ag_timer_cancel(h, t);
        n++;
        t->cb(t);
    }
    return n;
}

void ag_timer_heap_free(struct ag_timer_heap *h)
{
    ag_free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}
