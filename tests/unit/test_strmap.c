/* core/strmap: insert, replace, lookup, delete with backward shift, growth. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/strmap.h"

int main(void)
{
    struct ag_strmap m = {0};
    static char keys[5000][16];
    CHECK(ag_strmap_get(&m, "x", 1) == NULL);
    CHECK(ag_strmap_del(&m, "x", 1) == NULL);
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ag_strmap_put(&m, keys[i], strlen(keys[i]), keys[i]);
    }
    CHECK(m.len == 5000);
    for (int i = 0; i < 5000; i++)
        CHECK(ag_strmap_get(&m, keys[i], strlen(keys[i])) == keys[i]);
    /* Replace keeps the count. */
    ag_strmap_put(&m, keys[7], strlen(keys[7]), keys[8]);
    CHECK(m.len == 5000 && ag_strmap_get(&m, "k7", 2) == keys[8]);
    /* Delete every other key; the rest stay reachable (probe runs repaired). */
    for (int i = 0; i < 5000; i += 2)
        CHECK(ag_strmap_del(&m, keys[i], strlen(keys[i])) != NULL);
    CHECK(m.len == 2500);
    for (int i = 0; i < 5000; i++) {
        void *v = ag_strmap_get(&m, keys[i], strlen(keys[i]));
        CHECK(i % 2 ? v != NULL : v == NULL);
    }
    /* Prefixes and lengths matter. */
    CHECK(ag_strmap_get(&m, "k1", 1) == NULL);
    ag_strmap_free(&m);
    CHECK(m.len == 0 && ag_strmap_get(&m, "k1", 2) == NULL);
    return CHECK_DONE();
}
