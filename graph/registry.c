#include "graph/registry.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "graph/builtin.h"
#include "graph/graph.h"

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

/* --- the table --- */

static const struct ag_graph_def **table;
static size_t ntable;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static int add(struct ag_graph_def *g, char *err, size_t errlen)
{
    if (ag_graph_def_compile(g, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < ntable; i++)
        if (!strcmp(ag_graph_def_id(table[i]), ag_graph_def_id(g))) {
            snprintf(err, errlen, "graph %s is registered twice", ag_graph_def_id(g));
            return -1;
        }
    table = ag_realloc(table, (ntable + 1) * sizeof *table);
    table[ntable++] = g;
    return 0;
}

static void register_builtins(void)
{
    struct ag_graph_def *(*const make[])(void) = {ag_graph_builtin_echo, ag_graph_builtin_stress,
                                                  ag_graph_builtin_interrupt};
    char err[256];
    for (size_t i = 0; i < AG_ARRAY_LEN(make); i++) {
        struct ag_graph_def *g = make[i]();
        if (add(g, err, sizeof err) < 0) {
            fprintf(stderr, "agentd: built-in graph: %s\n", err);
            abort();
        }
    }
}

int ag_graph_register(struct ag_graph_def *g, char *err, size_t errlen)
{
    pthread_once(&builtins_once, register_builtins);
    return add(g, err, errlen);
}

/* --- lookup --- */

size_t ag_graph_count(void)
{
    pthread_once(&builtins_once, register_builtins);
    return ntable;
}

const struct ag_graph_info *ag_graph_at(size_t i)
{
    pthread_once(&builtins_once, register_builtins);
    return i < ntable ? ag_graph_def_info(table[i]) : NULL;
}

const struct ag_graph_info *ag_graph_find_n(const char *id, size_t len)
{
    pthread_once(&builtins_once, register_builtins);
    for (size_t i = 0; i < ntable; i++) {
        const char *gid = ag_graph_def_id(table[i]);
        if (strlen(gid) == len && !memcmp(gid, id, len))
            return ag_graph_def_info(table[i]);
    }
    return NULL;
}

const struct ag_graph_info *ag_graph_find(const char *graph_id)
{
    return ag_graph_find_n(graph_id, strlen(graph_id));
}

const struct ag_graph_def *ag_graph_def_find(const char *graph_id)
{
    const struct ag_graph_info *g = ag_graph_find(graph_id);
    return g ? g->def : NULL;
}

const char *ag_graph_resolve_assistant(const char *id)
{
    const struct ag_graph_info *g = ag_graph_find(id);
    return g ? g->assistant_id : id;
}
