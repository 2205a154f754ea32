/* Reference-counted output buffers: bytes written once and queued on one or many connections
 * (an SSE event fanned out to every subscriber points at the same obuf). Shard-local: the count is a
 * plain integer and the buffer never crosses shards. */
#ifndef AG_NET_OBUF_H
#define AG_NET_OBUF_H

#include <stdint.h>

struct ag_obuf {
    uint32_t refs;
    uint32_t len; /* bytes written */
    uint32_t cap;
    char data[];
};

/* A new buffer with room for cap bytes and one reference. */
struct ag_obuf *ag_obuf_new(uint32_t cap);
static inline struct ag_obuf *ag_obuf_ref(struct ag_obuf *b)
{
    b->refs++;
    return b;
}
/* Drops a reference; the last one frees the buffer. */
void ag_obuf_unref(struct ag_obuf *b);

#endif
