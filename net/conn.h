/* Connections: one accepted TCP socket on one shard, read with a multishot recv from the shard's
 * provided-buffer ring and written through an output queue of obuf segments, one send in flight at a
 * time, flushed once per loop turn (all that was queued in a turn leaves in one sendmsg).
 *
 * The protocol layer drives a connection through struct ag_conn_handler. A connection is freed only
 * after every operation it started has completed, and never inside its own callback. */
#ifndef AG_NET_CONN_H
#define AG_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "core/timer.h"

#define AG_CONN_IOV 32

enum {
    AG_CONN_F_RECV_ARMED = 1u << 0,
    AG_CONN_F_SENDING = 1u << 1,
    AG_CONN_F_DIRTY = 1u << 2,      /* on the shard's flush list */
    AG_CONN_F_CLOSE_AFTER = 1u << 3, /* close once the output queue is empty */
    AG_CONN_F_LINGER = 1u << 4,     /* write side shut; discarding input until EOF or timeout */
    AG_CONN_F_CLOSED = 1u << 5,     /* fd closed; waiting for in-flight ops */
    AG_CONN_F_EOF = 1u << 6,        /* the peer shut its write side */
    AG_CONN_F_PAUSED = 1u << 7,     /* the handler wants no on_data calls until ag_conn_resume */
    AG_CONN_F_REJECTED = 1u << 8,   /* accepted over the connection limit: answer 503 and close */
};

struct ag_oseg {
    struct ag_obuf *buf;
    uint32_t off, len;
};

struct ag_conn {
    uint32_t idx, gen;
    int fd;
    uint32_t flags;
    uint32_t inflight; /* submitted ops whose final completion has not arrived */
    struct ag_shard *shard;
    struct ag_buf in; /* unconsumed input; empty (and unallocated) between requests */
    struct ag_oseg *segs; /* output queue: a ring of cap segments */
    uint32_t seg_head, seg_count, seg_cap;
    uint64_t out_bytes; /* queued and not yet sent */
    uint64_t sent_ns;   /* the output's last progress: a send that moved bytes, or output queued on an
                         * empty queue (the shard's cached now) */
    uint64_t recv_ns;   /* when input last arrived (the shard's cached now) */
    struct iovec iov[AG_CONN_IOV];
    struct msghdr msg;
    struct ag_timer timer; /* the protocol's (idle/header timeouts), the net layer's while lingering */
    struct ag_conn *dirty_next;
    struct ag_task task; /* deferred work: resume or free */
    _Alignas(16) char priv[]; /* the protocol layer's per-connection state */
};

/* What the protocol layer does with a connection. */
struct ag_conn_handler {
    /* A new connection (flags has AG_CONN_F_REJECTED when over the limit). */
    void (*on_open)(struct ag_conn *c);
    /* Input arrived: data[0..len) is everything unconsumed. Returns how many bytes from the front it
     * consumed; the rest is kept and offered again with more. Pointers into data are valid only
     * during the call. */
    size_t (*on_data)(struct ag_conn *c, char *data, size_t len);
    /* The peer shut its side (EOF); the connection is still writable. */
    void (*on_eof)(struct ag_conn *c);
    /* The output queue became empty after a send. */
    void (*on_drained)(struct ag_conn *c);
    /* The socket is being closed (peer reset, error, or ag_conn_close): no more input, output is
     * dropped. Called once, at that moment, even while the connection is held (its memory stays
     * until the last unhold; on_close follows then). Optional. */
    void (*on_hangup)(struct ag_conn *c);
    /* The connection is closing (error, EOF, or ag_conn_close): drop references to it. Called once. */
    void (*on_close)(struct ag_conn *c);
    /* The shard is exiting and frees the connection's memory, whatever state it is in (a held
     * connection included): free what the protocol still keeps for it. Optional. */
    void (*on_exit)(struct ag_conn *c);
};

/* Space for n bytes at the end of the output queue; commit what was written with ag_conn_commit. */
char *ag_conn_wbuf(struct ag_conn *c, size_t n);
void ag_conn_commit(struct ag_conn *c, size_t n);
/* Copies n bytes to the output queue. */
void ag_conn_write(struct ag_conn *c, const void *p, size_t n);
/* Queues len bytes of b from off, taking a reference (shared, no copy). */
void ag_conn_write_obuf(struct ag_conn *c, struct ag_obuf *b, uint32_t off, uint32_t len);

enum ag_close_how {
    AG_CLOSE_NOW,        /* drop queued output and close */
    AG_CLOSE_AFTER_SEND, /* send what is queued, then close */
    AG_CLOSE_LINGER,     /* send what is queued, shut the write side, drain input briefly, close */
};
void ag_conn_close(struct ag_conn *c, enum ag_close_how how);
static inline bool ag_conn_closing(const struct ag_conn *c)
{
    return c->flags & (AG_CONN_F_CLOSE_AFTER | AG_CONN_F_CLOSED | AG_CONN_F_LINGER);
}

/* Stop / restart on_data calls (input keeps accumulating, bounded). Resume offers buffered input
 * again from a deferred task. */
void ag_conn_pause(struct ag_conn *c);
void ag_conn_resume(struct ag_conn *c);

/* Keep the connection's memory alive across an asynchronous operation of the protocol layer, even if
 * it closes meanwhile; every hold needs one unhold. */
void ag_conn_hold(struct ag_conn *c);
void ag_conn_unhold(struct ag_conn *c);

/* The protocol's private area. */
static inline void *ag_conn_priv(struct ag_conn *c)
{
    return c->priv;
}

#endif
