/* The network side of a shard: its listening socket with a multishot accept, its provided-buffer
 * ring, its connection pool and flush list. Op kinds 8..15 belong to this layer. */
#ifndef AG_NET_NET_H
#define AG_NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/shard.h"
#include "net/conn.h"

enum {
    AG_OP_ACCEPT = AG_OP_USER + 0,
    AG_OP_RECV = AG_OP_USER + 1,
    AG_OP_SEND = AG_OP_USER + 2,
    AG_OP_CLOSE = AG_OP_USER + 3,
    AG_OP_NET_LAST = AG_OP_USER + 7,
};

/* Connections a shard accepts beyond max_conns, only to answer 503 and close; past these it closes
 * new connections at once. A shard may hold max_conns + AG_NET_REJECT_RESERVE descriptors for them. */
#define AG_NET_REJECT_RESERVE 64

struct ag_net_config {
    int listen_fd;            /* this shard's SO_REUSEPORT socket; the shard owns it from now on */
    size_t priv_size;         /* bytes of protocol state per connection */
    uint32_t max_conns;       /* beyond: accepted with AG_CONN_F_REJECTED (503), up to a small reserve */
    size_t max_input;         /* input kept per connection: while paused, reading stops beyond it;
                               * otherwise the handler must consume it, or the connection closes */
    uint32_t linger_ms;       /* how long a lingering close drains input */
    const struct ag_conn_handler *handler;
};

/* Main thread, at start-up: a listening TCP socket on host:port with SO_REUSEPORT and TCP_NODELAY.
 * port 0 lets the kernel choose; *bound_port receives the port. Returns the fd or -errno. */
int ag_net_listen(const char *host, int port, int *bound_port);
/* Main thread, before the runtime starts: registers the net op handlers. */
void ag_net_register(void);

/* Shard thread: sets up the buffer ring and pool and arms the accept. Returns 0 or -errno. */
int ag_net_start(struct ag_shard *s, const struct ag_net_config *cfg);
/* Shard thread: cancels the accept and closes the listening socket (drain). */
void ag_net_stop_accepting(struct ag_shard *s);
/* Shard thread, loop phase 5: returns recycled buffers to the ring and submits pending sends. */
void ag_net_flush(struct ag_shard *s);
/* Calls fn for every open connection (fn may close it). */
void ag_net_foreach(struct ag_shard *s, void (*fn)(struct ag_conn *c, void *arg), void *arg);
/* True when no connection exists any more and the accept is gone. */
bool ag_net_idle(struct ag_shard *s);
/* Shard thread, after the loop: frees the pool and the buffer ring. */
void ag_net_exit(struct ag_shard *s);

#endif
