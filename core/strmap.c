#include "core/strmap.h"

#include <string.h>

#include "core/alloc.h"

static uint32_t hash_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static struct ag_strmap_slot *find(const struct ag_strmap *m, const char *key, size_t len, uint32_t h)
{
    uint32_t mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        struct ag_strmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len && !memcmp(s->key, key, len)))
            return s;
    }
}

void *ag_strmap_get(const struct ag_strmap *m, const char *key, size_t len)
{
    if (!m->len)
        return NULL;
    struct ag_strmap_slot *s = find(m, key, len, hash_of(key, len));
    return s->key ? s->val : NULL;
}

static void grow(struct ag_strmap *m)
{
    struct ag_strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->slots = ag_calloc(m->cap, sizeof *m->slots);
    m->len = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.slots[i].key) {
            struct ag_strmap_slot *s = find(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash);
            *s = old.slots[i];
            m->len++;
        }
    ag_free(old.slots);
}

void ag_strmap_put(struct ag_strmap *m, const char *key, size_t len, void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    uint32_t h = hash_of(key, len);
    struct ag_strmap_slot *s = find(m, key, len, h);
    if (!s->key)
        m->len++;
    *s = (struct ag_strmap_slot){key, (uint32_t)len, h, val};
}

void *ag_strmap_del(struct ag_strmap *m, const char *key, size_t len)
{
    if (!m->len)
        return NULL;
    struct ag_strmap_slot *s = find(m, key, len, hash_of(key, len));
    if (!s->key)
        return NULL;
    void *val = s->val;
    uint32_t mask = m->cap - 1, i = (uint32_t)(s - m->slots);
    /* Backward-shift: move later members of the probe run into the hole when their home allows. */
    for (uint32_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        uint32_t home = m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->len--;
    return val;
}

void ag_strmap_free(struct ag_strmap *m)
{
    ag_free(m->slots);
    *m = (struct ag_strmap){0};
}
