/* Timers embedded in the objects they time, kept in a per-shard binary min-heap. Arming, moving and
 * cancelling allocate nothing (the heap array grows only when more timers are armed than ever before). */
#ifndef AG_CORE_TIMER_H
#define AG_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct ag_timer;
typedef void (*ag_timer_cb)(struct ag_timer *t);

struct ag_timer {
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    uint32_t heap_idx;    /* 0: not armed; else position + 1 */
    ag_timer_cb cb;
};

struct ag_timer_heap {
    struct ag_timer **items;
    uint32_t len, cap;
};

static inline void ag_timer_init(struct ag_timer *t, ag_timer_cb cb)
{
    t->deadline_ns = 0;
    t->heap_idx = 0;
    t->cb = cb;
}
static inline bool ag_timer_armed(const struct ag_timer *t)
{
    return t->heap_idx != 0;
}
/* Arms t (or moves it if armed) to fire at deadline_ns. */
void ag_timer_arm(struct ag_timer_heap *h, struct ag_timer *t, uint64_t deadline_ns);
/* Disarms t; fine if it is not armed. */
void ag_timer_cancel(struct ag_timer_heap *h, struct ag_timer *t);
/* The earliest deadline, or UINT64_MAX when nothing is armed. */
static inline uint64_t ag_timer_next(const struct ag_timer_heap *h)
{
    return h->len ? h->items[0]->deadline_ns : UINT64_MAX;
}
/* Fires (disarms, then calls) at most `budget` timers whose deadline <= now; returns how many fired.
 * A callback may re-arm its own timer or arm and cancel others. */
unsigned ag_timer_run(struct ag_timer_heap *h, uint64_t now_ns, unsigned budget);
void ag_timer_heap_free(struct ag_timer_heap *h);

#endif
