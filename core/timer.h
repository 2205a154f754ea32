/* Timers embedded in the objects they time, kept in a per-shard binary min-heap. Arming, moving and
 * cancelling allocate nothing (the heap array grows only when more timers are armed than ever before).
 *
 * Timers with the same deadline fire in the order they were armed. A timer armed (or moved) while
 * ag_timer_run fires timers waits for the next ag_timer_run even when it is already due: the loop caches
 * `now` once per turn, so a 0 ms timer re-armed from its own callback would otherwise fire again and again
 * in the same turn and hold the shard. */
#ifndef AG_CORE_TIMER_H
#define AG_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct ag_timer;
typedef void (*ag_timer_cb)(struct ag_timer *t);

struct ag_timer {
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    uint64_t seq;         /* when it was armed: orders equal deadlines, tells what ag_timer_run may fire */
    uint32_t heap_idx;    /* 0: not armed; else position + 1 */
    ag_timer_cb cb;
};

struct ag_timer_heap {
    struct ag_timer **items;
    uint32_t len, cap;
    uint64_t seq; /* the last seq given to an armed timer */
};

static inline void ag_timer_init(struct ag_timer *t, ag_timer_cb cb)
{
    t->deadline_ns = 0;
    t->seq = 0;
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
/* Fires (disarms, then calls), in deadline order, at most `budget` timers whose deadline <= now and that
 * were armed before this call; returns how many fired. Stops early, once at least one fired, when `stop`
 * is given and *stop became 0 (the shard's work budget for the turn is spent; the rest fire in a later
 * call, before anything armed since). A callback may re-arm its own timer or arm and cancel others;
 * what it arms fires in a later call at the earliest. */
unsigned ag_timer_run(struct ag_timer_heap *h, uint64_t now_ns, unsigned budget, const uint32_t *stop);
void ag_timer_heap_free(struct ag_timer_heap *h);

#endif
