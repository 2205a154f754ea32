#include "core/uuid.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/common.h"

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

uint64_t ag_uuid_random_u64(void)
{
    return rng_next();
}

void ag_uuid4(char out[37])
{
    uint64_t hi = rng_next(), lo = rng_next();
    hi = (hi & ~0xf000ull) | 0x4000ull;                            /* version 4 */
    lo = (lo & ~0xc000000000000000ull) | 0x8000000000000000ull; /* variant 10 */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffffu,
             (unsigned)hi & 0xffffu, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
}

/* --- SHA-1 (FIPS 180-4), only for UUID5: not used for anything that needs collision resistance --- */

struct sha1 {
    uint32_t h[5];
    uint64_t len; /* bytes hashed */
    uint8_t block[64];
    size_t fill;
};

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(struct sha1 *c, const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ cc ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

static void sha1_init(struct sha1 *c)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->fill = 0;
}

static void sha1_update(struct sha1 *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    c->len += n;
    while (n) {
        size_t take = AG_MIN(n, sizeof c->block - c->fill);
        memcpy(c->block + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill == sizeof c->block) {
            sha1_block(c, c->block);
            c->fill = 0;
        }
    }
}

static void sha1_final(struct sha1 *c, uint8_t out[20])
{
    uint64_t bits = c->len * 8;
    static const uint8_t pad0 = 0x80, zero = 0;
    sha1_update(c, &pad0, 1);
    while (c->fill != 56)
        sha1_update(c, &zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

int ag_uuid5(const char *ns, const char *name, size_t name_len, char out[37])
{
    uint8_t nsb[16] = {0};
    if (strlen(ns) != 36)
        return -1;
    for (size_t i = 0, nib = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ns[i] != '-')
                return -1;
            continue;
        }
        int v = ag_hexval(ns[i]);
        if (v < 0)
            return -1;
        nsb[nib / 2] |= (uint8_t)(nib % 2 ? v : v << 4);
        nib++;
    }
    struct sha1 c;
    uint8_t h[20];
    sha1_init(&c);
    sha1_update(&c, nsb, sizeof nsb);
    sha1_update(&c, name, name_len);
    sha1_final(&c, h);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x50);
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[h[i] >> 4];
        *p++ = hex[h[i] & 15];
    }
    *p = 0;
    return 0;
}

void ag_uuid6(uint16_t seq, char out[37])
{
    static _Thread_local uint64_t last_ticks;
    /* 100 ns intervals since the Gregorian epoch (1582-10-15), 60 bits. */
    uint64_t ticks = ag_clock_real_us() * 10 + 0x01b21dd213814000ull;
    if (ticks <= last_ticks)
        ticks = last_ticks + 1;
    last_ticks = ticks;
    uint64_t high = ticks >> 12;
    unsigned low = (unsigned)(ticks & 0xfff);
    snprintf(out, 37, "%08x-%04x-6%03x-%04x-%012llx", (unsigned)(high >> 16), (unsigned)(high & 0xffff), low,
             (unsigned)seq, (unsigned long long)(rng_next() & 0xffffffffffffull));
}

void ag_uuid7(char out[37])
{
    static _Thread_local uint64_t last_ms, seq;
    uint64_t ms = ag_us_to_ms(ag_clock_real_us());
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

bool ag_uuid_canon(const char *s, size_t len, char out[37])
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
        out[i] = c;
    }
    out[36] = 0;
    return true;
}
