/* JSON text without jansson's growing buffer (core/jsontext.h): the same bytes as json_dumps, one
 * allocation per text, a scratch buffer that is reused and does not stay large. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/jsontext.h"

/* ag_json_text gives what json_dumps gives, byte for byte. */
static void same_as_dumps(const json_t *v, size_t flags)
{
    char *want = json_dumps(v, flags);
    size_t n = 0;
    char *got = ag_json_text(v, flags, &n);
    if (want) {
        CHECK_STREQ(got, want);
        CHECK(n == strlen(want));
    } else {
        CHECK(got == NULL);
    }
    ag_free(got);
    ag_free(want);
}

int main(void)
{
    json_t *big = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(big, json_pack("{s:i,s:s}", "i", i, "text", "some words \"quoted\" and \\ é"));
    json_t *vals[] = {
        json_pack("{s:[{s:s,s:s}],s:n,s:b,s:f}", "messages", "type", "human", "content", "hi \"there\"\n", "x", "ok",
                  1, "pi", 3.25),
        json_object(),
        json_array(),
        json_string("plain"),
        json_integer(-42),
        big,
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        same_as_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
        same_as_dumps(vals[i], JSON_COMPACT);
        same_as_dumps(vals[i], JSON_INDENT(2) | JSON_ENCODE_ANY);
    }

    /* Not encodable: NULL, as json_dumps. */
    json_t *s = json_string("bare");
    CHECK(ag_json_text(s, JSON_COMPACT, NULL) == NULL);
    CHECK(ag_json_text(NULL, JSON_COMPACT | JSON_ENCODE_ANY, NULL) == NULL);
    json_decref(s);

    /* Once the scratch buffer has grown, a text costs one allocation besides the encoder's own (jansson's
     * loop check allocates per container), where json_dumps also grows its buffer step by step. */
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = i ? big : vals[0];
        struct ag_buf grown = {0};
        ag_json_append(&grown, v, JSON_COMPACT);
        grown.len = 0;
        uint64_t a0 = ag_alloc_count();
        ag_json_append(&grown, v, JSON_COMPACT);
        uint64_t encoder = ag_alloc_count() - a0;
        ag_buf_free(&grown);
        ag_free(ag_json_text(v, JSON_COMPACT, NULL)); /* grows the scratch buffer */
        a0 = ag_alloc_count();
        char *t = ag_json_text(v, JSON_COMPACT, NULL);
        uint64_t ours = ag_alloc_count() - a0;
        a0 = ag_alloc_count();
        char *d = json_dumps(v, JSON_COMPACT);
        uint64_t dumps = ag_alloc_count() - a0;
        /* The big one's text is beyond AG_JSON_SCRATCH_KEEP: the scratch buffer was let go after it, and
         * grows again (still no more than json_dumps). */
        bool ok = i ? ours > encoder + 1 && ours <= dumps : ours == encoder + 1 && ours < dumps;
        CHECKF(ok, "value %zu: %llu allocations, the encoder's %llu, json_dumps %llu", i, (unsigned long long)ours,
               (unsigned long long)encoder, (unsigned long long)dumps);
        ag_free(t);
        ag_free(d);
    }

    /* The scratch text, and appending to a buffer. */
    size_t n;
    const char *st = ag_json_scratch_text(vals[1], JSON_COMPACT, &n);
    CHECK(n == 2 && !memcmp(st, "{}", 2));
    struct ag_buf b = {0};
    ag_buf_append(&b, "x=", 2);
    CHECK(ag_json_append(&b, vals[3], JSON_ENCODE_ANY) == 7);
    CHECK(ag_json_append(&b, NULL, JSON_ENCODE_ANY) == -1);
    CHECK(b.len == 9 && !memcmp(b.base, "x=\"plain\"", 9));
    ag_buf_free(&b);

    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        json_decref(vals[i]);
    ag_json_scratch_free();
    return CHECK_DONE();
}
