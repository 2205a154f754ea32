#include "protocol/agent/store.h"

void ag_store_shard_start(struct ag_shard *s)
{
}

void ag_store_shard_exit(struct ag_shard *s)
{
}
