/* The assembled server: listening sockets, one shard per CPU running HTTP on the net layer, and the
 * hooks that tie the shard loop to them. server/main.c and in-process tests (the fuzzer) start
 * it the same way. */
#ifndef AG_SERVER_SERVER_H
#define AG_SERVER_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/shard.h"
#include "server/config.h"

struct ag_server {
    struct ag_runtime rt;
    const struct ag_config *cfg;
    int nshards;
    int port; /* the bound port (cfg->port, or the kernel's choice for 0) */
    int *listen_fds;
    uint32_t max_conns; /* connections per shard: the configured limit, lowered to fit RLIMIT_NOFILE */
    _Atomic bool *idle; /* per shard, while draining: nothing of its own in progress */
};

/* Opens the listeners on cfg->host:cfg->port and starts the shards (cfg->shards, or one per CPU).
 * Each shard takes at most limits.max_conns_per_shard connections, fewer if all shards' connections
 * (and their 503 reserve) would not fit the process's RLIMIT_NOFILE beside its other descriptors.
 * cfg must outlive the server. Returns 0, or -1 after logging why (nothing is left running). */
int ag_server_start(struct ag_server *srv, const struct ag_config *cfg);
/* Asks every shard to drain (see ag_runtime_drain) or to stop now. */
void ag_server_drain(struct ag_server *srv);
void ag_server_stop(struct ag_server *srv);
/* Shards still running. */
int ag_server_running(struct ag_server *srv);
/* Waits for every shard to end and frees the server. */
void ag_server_join(struct ag_server *srv);

#endif
