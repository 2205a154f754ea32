/* store endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_STORE_H
#define AG_PROTOCOL_AGENT_STORE_H

struct ag_req;
struct ag_shard;

/* Per-shard start (on_start, after ag_pg_start): arms the store TTL sweeper. */
void ag_store_shard_start(struct ag_shard *s);
/* Per-shard exit: frees what ag_store_shard_start made. */
void ag_store_shard_exit(struct ag_shard *s);

#endif
