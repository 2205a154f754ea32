#include "runtime/owner.h"

#include <stdio.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/shard.h"

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

static _Thread_local uint64_t rng_state[2];

static uint64_t rng_next(void)
{
    /* xorshift128+, seeded once per thread from the kernel: ids must not repeat, not be secret. */
    if (!rng_state[0] && !rng_state[1]) {
        if (getrandom(rng_state, sizeof rng_state, 0) != sizeof rng_state || (!rng_state[0] && !rng_state[1]))
            rng_state[0] = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&rng_state;
    }
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_state[1] + s0;
}

void ag_uuid4(char out[37])
{
    uint64_t hi = rng_next(), lo = rng_next();
    hi = (hi & ~0xf000ull) | 0x4000ull;                            /* version 4 */
    lo = (lo & ~0xc000000000000000ull) | 0x8000000000000000ull; /* variant 10 */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffffu,
             (unsigned)hi & 0xffffu, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
}

void ag_uuid7(char out[37])
{
    static _Thread_local uint64_t last_ms, seq;
    uint64_t ms = ag_clock_real_us() / 1000u;
    if (ms <= last_ms) {
        ms = last_ms;
        seq++;
        if (seq > 0xfff) { /* 4096 ids in one millisecond: borrow the next one */
            ms++;
            seq = 0;
        }
    } else {
        seq = rng_next() & 0x3ff; /* a random start leaves room to count up */
    }
    last_ms = ms;
    uint64_t lo = (rng_next() & 0x3fffffffffffffffull) | 0x8000000000000000ull; /* variant 10 */
    snprintf(out, 37, "%08x-%04x-7%03x-%04x-%012llx", (unsigned)(ms >> 16), (unsigned)(ms & 0xffffu),
             (unsigned)seq, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
}

void ag_owner_mint_thread_id(struct ag_shard *s, char out[37])
{
    int n = s->rt->nshards;
    do
        ag_uuid4(out);
    while (ag_owner_shard(out, 36, n) != s->id);
}
