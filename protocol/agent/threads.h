/* threads endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_THREADS_H
#define AG_PROTOCOL_AGENT_THREADS_H

struct ag_req;
struct ag_shard;

/* Per-shard start (on_start, after ag_pg_start): arms the thread TTL sweeper. */
void ag_threads_shard_start(struct ag_shard *s);
/* Per-shard exit: frees what ag_threads_shard_start made. */
void ag_threads_shard_exit(struct ag_shard *s);

#endif
