/* A string-keyed map of pointers for shard-local indexes (thread id → thread runtime, run id → run).
 * Open addressing with linear probing and tombstone-free deletion (backward shift). Keys are not
 * copied: each key must stay valid and unchanged while it is in the map (typically it is a member of
 * the value). Not thread-safe; each shard owns its maps. */
#ifndef AG_CORE_STRMAP_H
#define AG_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct ag_strmap_slot {
    const char *key; /* NULL: empty */
    uint32_t len;
    uint32_t hash;
    void *val;
};

struct ag_strmap {
    struct ag_strmap_slot *slots;
    uint32_t cap; /* a power of two, or 0 before the first insert */
    uint32_t len;
};

/* The value stored under key[0..len), or NULL. */
void *ag_strmap_get(const struct ag_strmap *m, const char *key, size_t len);
/* Stores val under key[0..len) (replacing any value there); key must outlive the entry. */
void ag_strmap_put(struct ag_strmap *m, const char *key, size_t len, void *val);
/* Removes key[0..len); returns the value it had, or NULL. */
void *ag_strmap_del(struct ag_strmap *m, const char *key, size_t len);
/* Frees the table (not the keys or values). */
void ag_strmap_free(struct ag_strmap *m);

#endif
