/* Which shard owns an agent thread: hash(thread_id) % nshards (design.md §2.1). Every request about a
 * thread runs there, so its live state needs no locks. New ids are minted on the accepting shard so
 * that they hash to it and creating a thread never crosses shards. */
#ifndef AG_RUNTIME_OWNER_H
#define AG_RUNTIME_OWNER_H

#include <stddef.h>
#include <stdint.h>

struct ag_shard;

/* The owner shard (0..nshards-1) of the thread id[0..len) (the decoded id, not its URL form). ASCII
 * letters hash the same in either case, so an id in upper and lower case has one owner. */
int ag_owner_shard(const char *id, size_t len, int nshards);

/* Writes a random UUID4 whose owner shard is s (36 chars + NUL) into out. */
void ag_owner_mint_thread_id(struct ag_shard *s, char out[37]);

#endif
