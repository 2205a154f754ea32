#include "protocol/agent/threads.h"

void ag_threads_shard_start(struct ag_shard *s)
{
}

void ag_threads_shard_exit(struct ag_shard *s)
{
}
