#include "graph/ids.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/common.h"
#include "graph/registry.h"

static _Thread_local uint64_t rng_state[2];
static _Thread_local uint64_t last_ticks;

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

void ag_graph_uuid4(char out[37])
{
    uint64_t hi = rng_next(), lo = rng_next();
    hi = (hi & ~0xf000ull) | 0x4000ull;
    lo = (lo & ~0xc000000000000000ull) | 0x8000000000000000ull;
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffffu,
             (unsigned)hi & 0xffffu, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
}

void ag_graph_checkpoint_id(int step, char out[37])
{
    /* 100 ns intervals since the Gregorian epoch (1582-10-15), 60 bits. */
    uint64_t ticks = ag_clock_real_us() * 10 + 0x01b21dd213814000ull;
    if (ticks <= last_ticks)
        ticks = last_ticks + 1;
    last_ticks = ticks;
    uint64_t high = ticks >> 12;
    unsigned low = (unsigned)(ticks & 0xfff);
    unsigned seq = ((unsigned)step & 0xffffu) | 0x8000u;
    snprintf(out, 37, "%08x-%04x-6%03x-%04x-%012llx", (unsigned)(high >> 16), (unsigned)(high & 0xffff), low, seq,
             (unsigned long long)(rng_next() & 0xffffffffffffull));
}

void ag_graph_make_task_id(const char *checkpoint_id, const char *node, char out[37])
{
    if (ag_uuid5(checkpoint_id, node, strlen(node), out) < 0)
        ag_graph_uuid4(out);
}

void ag_graph_interrupt_id(const char *task_id, int idx, char out[33])
{
    char name[32], u[37];
    int n = snprintf(name, sizeof name, "interrupt:%d", idx);
    if (ag_uuid5(task_id, name, (size_t)n, u) < 0)
        ag_graph_uuid4(u);
    char *p = out;
    for (const char *s = u; *s; s++)
        if (*s != '-')
            *p++ = *s;
    *p = 0;
}
