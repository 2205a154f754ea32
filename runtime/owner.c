#include "runtime/owner.h"

#include "core/shard.h"
#include "core/uuid.h"

int ag_owner_shard(const char *id, size_t len, int nshards)
{
    /* FNV-1a, 64 bit: stable across processes and versions, which matters because several agentd
     * processes with the same shard count agree on owners. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        /* ASCII case is folded: thread ids are UUIDs, which name the same thread in either case. */
        h ^= c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
        h *= 0x100000001b3ull;
    }
    return nshards > 1 ? (int)(h % (uint64_t)nshards) : 0;
}

void ag_owner_mint_thread_id(struct ag_shard *s, char out[37])
{
    int n = s->rt->nshards;
    do
        ag_uuid4(out);
    while (ag_owner_shard(out, 36, n) != s->id);
}
