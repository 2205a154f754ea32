/* State shared by net/net.c and net/conn.c; nothing outside net/ includes this. */
#ifndef AG_NET_INTERNAL_H
#define AG_NET_INTERNAL_H

#include <liburing.h>

#include "net/net.h"

#define NET_BGID 0
/* After accept fails for want of descriptors or memory, accepting pauses this long (retrying at once
 * fails the same way and spins the loop), and the failure is logged at most once per NET_ACCEPT_LOG_MS
 * with the count since the last line. */
#define NET_ACCEPT_BACKOFF_MS 100
#define NET_ACCEPT_LOG_MS 5000

struct net_shard {
    struct ag_net_config cfg;
    struct ag_shard *shard;
    bool accepting;
    bool accept_armed;
    bool accept_paused;           /* backing off after EMFILE and the like; accept_timer re-arms */
    struct ag_timer accept_timer;
    uint64_t accept_log_ns;       /* no "accept failed" line before this */
    uint64_t accept_failures;     /* since the last line */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs, bufsz, br_mask;
    unsigned br_recycled; /* buffers added back since the last advance */
    struct ag_conn **slots;
    uint32_t nslots, cap_slots;
    uint32_t *free_idx;
    uint32_t nfree;
    uint32_t nopen;  /* connections not yet released */
    struct ag_conn *dirty;
};

static inline struct net_shard *net_of(struct ag_shard *s)
{
    return s->net;
}

/* conn.c */
void ag_conn__on_recv(struct ag_shard *s, struct io_uring_cqe *cqe);
void ag_conn__on_send(struct ag_shard *s, struct io_uring_cqe *cqe);
void ag_conn__on_close_done(struct ag_shard *s, struct io_uring_cqe *cqe);
void ag_conn__arm_recv(struct ag_conn *c);
void ag_conn__flush(struct ag_conn *c);
/* Drops the input buffer and every queued output segment. */
void ag_conn__free_buffers(struct ag_conn *c);
/* net.c */
struct ag_conn *ag_net__conn_from_ud(struct ag_shard *s, uint64_t ud);
void ag_net__mark_dirty(struct ag_conn *c);
void ag_net__release(struct ag_conn *c);
void ag_net__recycle_buf(struct net_shard *n, unsigned bid);

#endif
