/* A bounded lock-free single-producer/single-consumer queue of fixed-size messages: the channel
 * between one ordered pair of shards. The producer and the consumer may be different threads; each
 * index is written by one side only (release) and read by the other (acquire). */
#ifndef AG_CORE_SPSC_H
#define AG_CORE_SPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* A cross-shard message. `type` selects the receiver's handler; the rest is the handler's. */
struct ag_msg {
    uint16_t type;
    uint16_t from; /* sending shard, filled in by ag_shard_send */
    uint32_t u32;
    uint64_t u64;
    void *ptr;
};

struct ag_spsc {
    _Alignas(AG_CACHELINE) _Atomic size_t head; /* next slot to read; written by the consumer */
    size_t tail_cache;                          /* consumer's last view of tail */
    _Alignas(AG_CACHELINE) _Atomic size_t tail; /* next slot to write; written by the producer */
    size_t head_cache;                          /* producer's last view of head */
    _Alignas(AG_CACHELINE) _Atomic bool waiting; /* the producer found it full and waits for room */
    _Alignas(AG_CACHELINE) size_t mask;
    struct ag_msg *slots;
};

/* Prepares q for capacity messages (a power of two, >= 2). Returns 0 or -EINVAL. */
int ag_spsc_init(struct ag_spsc *q, size_t capacity);
void ag_spsc_destroy(struct ag_spsc *q);

/* Producer: appends m; false when full (nothing written). */
static inline bool ag_spsc_push(struct ag_spsc *q, const struct ag_msg *m)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - q->head_cache > q->mask) {
        q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
        if (t - q->head_cache > q->mask)
            return false;
    }
    q->slots[t & q->mask] = *m;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Producer, after a push failed: asks the consumer to say when it takes a message (see
 * ag_spsc_room_wanted). Returns true when there is room after all: push again (the consumer may still
 * say so later; that is harmless). The flag is set before the head is read again and the consumer
 * reads it after moving the head, each behind a full fence, so one of the two always sees the other. */
static inline bool ag_spsc_want_room(struct ag_spsc *q)
{
    atomic_store_explicit(&q->waiting, true, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
    return t - q->head_cache <= q->mask;
}

/* Consumer, after it took messages: true (once) when the producer asked to hear of room. */
static inline bool ag_spsc_room_wanted(struct ag_spsc *q)
{
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&q->waiting, memory_order_relaxed) &&
           atomic_exchange_explicit(&q->waiting, false, memory_order_acq_rel);
}

/* Consumer: copies up to max messages into out, oldest first; returns how many. */
static inline size_t ag_spsc_pop_batch(struct ag_spsc *q, struct ag_msg *out, size_t max)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == q->tail_cache) {
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (h == q->tail_cache)
            return 0;
    }
    size_t n = q->tail_cache - h;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->slots[(h + i) & q->mask];
    atomic_store_explicit(&q->head, h + n, memory_order_release);
    return n;
}

#endif
