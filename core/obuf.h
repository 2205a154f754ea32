/* Reference-counted output buffers: bytes written once and queued on one or many outputs (an event
 * fanned out to every subscriber points at the same obuf; a replay buffer may keep it too). Shard-local:
 * the count is a plain integer and the buffer never crosses shards. Buffers of the standard size are
 * recycled through a small per-thread pool, so a response does not cost an allocation. */
#ifndef AG_CORE_OBUF_H
#define AG_CORE_OBUF_H

#include <stdint.h>

/* The size most buffers have (one output chunk of a connection). */
#define AG_OBUF_STD 16384

struct ag_obuf {
    uint32_t refs;
    uint32_t len; /* bytes written */
    uint32_t cap;
    char data[];
};

/* A new buffer with room for cap bytes and one reference. */
struct ag_obuf *ag_obuf_new(uint32_t cap);
/* Takes one more reference on b; returns b. */
static inline struct ag_obuf *ag_obuf_ref(struct ag_obuf *b)
{
    b->refs++;
    return b;
}
/* Drops a reference; the last one recycles or frees the buffer. */
void ag_obuf_unref(struct ag_obuf *b);
/* Frees the calling thread's pool (at shard exit). */
void ag_obuf_pool_free(void);

#endif
