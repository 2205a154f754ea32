/* Thread ownership and URL decoding: the owner hash is stable and spreads ids over the shards,
 * minted ids are UUID4s that hash to the minting shard, percent-decoding and query iteration. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "core/shard.h"
#include "core/uuid.h"
#include "runtime/owner.h"
#include "protocol/urlenc.h"

static int is_uuid4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

int main(void)
{
    /* FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c: pinned so owners never move between versions. */
    CHECK(ag_owner_shard("a", 1, 1000) == (int)(0xaf63dc4c8601ec8cull % 1000));
    CHECK(ag_owner_shard("anything", 8, 1) == 0);

    struct ag_runtime rt = {.nshards = 3};
    int counts[3] = {0};
    for (int k = 0; k < 3; k++) {
        struct ag_shard s = {.id = k, .rt = &rt};
        for (int i = 0; i < 300; i++) {
            char id[37];
            ag_owner_mint_thread_id(&s, id);
            CHECK(is_uuid4(id));
            CHECK(ag_owner_shard(id, 36, 3) == k);
        }
    }
    for (int i = 0; i < 3000; i++) {
        char id[37];
        ag_uuid4(id);
        counts[ag_owner_shard(id, 36, 3)]++;
    }
    for (int k = 0; k < 3; k++)
        CHECK(counts[k] > 800 && counts[k] < 1200);

    char out[64];
    size_t n = ag_url_decode(out, "a%20b%2Fc+d", 11, false);
    CHECK(n == 7 && !memcmp(out, "a b/c+d", 7));
    n = ag_url_decode(out, "a+b%41", 6, true);
    CHECK(n == 4 && !memcmp(out, "a bA", 4));
    CHECK(ag_url_decode(out, "%4", 2, false) == (size_t)-1);
    CHECK(ag_url_decode(out, "%zz", 3, false) == (size_t)-1);
    CHECK(ag_url_decode(out, "abc%", 4, false) == (size_t)-1);

    char q[] = "namespace=a.b&&key=k%20x&flag&=v";
    struct ag_iov it = {q, strlen(q)}, name, value;
    const char *want[][2] = {{"namespace", "a.b"}, {"key", "k x"}, {"flag", ""}, {"", "v"}};
    int got = 0;
    while (ag_query_next(&it, &name, &value)) {
        CHECK(got < 4);
        if (got >= 4)
            break;
        char *nm = ag_query_str(name), *v = ag_query_str(value);
        CHECK_STREQ(nm, want[got][0]);
        CHECK_STREQ(v, want[got][1]);
        ag_free(nm);
        ag_free(v);
        got++;
    }
    CHECK(got == 4);
    CHECK(ag_query_str((struct ag_iov){"a%00b", 5}) == NULL);
    return CHECK_DONE();
}
