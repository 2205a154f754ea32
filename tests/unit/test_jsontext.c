/* JSON text without jansson's growing buffer (core/jsontext.h): the same bytes as json_dumps, one
 * allocation per text, a scratch buffer that is reused and does not stay large. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
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

    /* Once the scratch buffer has grown, a text costs one allocation (its copy) and appending to a grown
     * buffer none, where json_dumps allocates per container (jansson's loop check) and grows its
     * buffer step by step. */
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
        /* vals[0] holds a real (jansson prints it: its own allocations); the big one's text is beyond
         * AG_JSON_SCRATCH_KEEP: the scratch buffer was let go after it, and grows again. */
        bool ok = i ? encoder == 0 && ours > 1 && ours * 100 < dumps : ours == encoder + 1 && ours < dumps;
        CHECKF(ok, "value %zu: %llu allocations, appending %llu, json_dumps %llu", i, (unsigned long long)ours,
               (unsigned long long)encoder, (unsigned long long)dumps);
        ag_free(t);
        ag_free(d);
    }

    /* The same bytes for what jansson escapes or refuses: every control character, quotes, backslashes,
     * slashes, 2- to 4-byte UTF-8, NUL inside strings and keys, integer limits, reals, deep nesting. */
    char ctl[40];
    for (int c = 0; c < 0x20; c++)
        ctl[c] = (char)(c + 1 == 0x20 ? 0x7f : c + 1);
    memcpy(ctl + 0x20, "\"\\/x", 5);
    json_t *odd = json_object();
    json_object_set_new(odd, "ctl", json_stringn(ctl, 0x25));
    json_object_set_new(odd, "nul", json_stringn("a\0b", 3));
    json_object_set_new(odd, "utf8", json_string("é € 𝄞 \xe2\x80\xa8"));
    json_object_setn_new(odd, "k\0\"\n\\", 5, json_integer(INT64_MIN));
    json_object_set_new(odd, "max", json_integer(INT64_MAX));
    json_object_set_new(odd, "reals", json_pack("[f,f,f,f,f]", 1.0, -0.0, 0.1, 1e300, 123456789.25));
    json_object_set_new(odd, "empty", json_pack("{s:{},s:[],s:s}", "o", "a", "s", ""));
    json_t *deep = json_array(), *at = deep;
    for (int i = 0; i < 500; i++) {
        json_t *next = i % 2 ? json_array() : json_object();
        if (json_is_array(at))
            json_array_append_new(at, next);
        else
            json_object_set_new(at, "d", next);
        at = next;
    }
    json_object_set_new(odd, "deep", deep);
    const size_t flags[] = {
        JSON_COMPACT,   JSON_COMPACT | JSON_ENCODE_ANY,  0, JSON_ENCODE_ANY, JSON_COMPACT | JSON_REAL_PRECISION(5),
        JSON_SORT_KEYS, JSON_ENSURE_ASCII | JSON_COMPACT};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        same_as_dumps(odd, flags[f]);
        same_as_dumps(json_object_get(odd, "ctl"), flags[f] | JSON_ENCODE_ANY);
        same_as_dumps(json_object_get(odd, "reals"), flags[f]);
    }
    /* A string on its own (ag_json_append_str): json_dumps' bytes; invalid UTF-8 refused, b unchanged. */
    const char *strs[] = {ctl, "a\0b", "é € 𝄞", ""};
    const size_t lens[] = {0x25, 3, strlen(strs[2]), 0};
    for (size_t i = 0; i < 4; i++) {
        json_t *js = json_stringn(strs[i], lens[i]);
        char *want = json_dumps(js, JSON_ENCODE_ANY);
        struct ag_buf sb = {0};
        ag_buf_puts(&sb, "x");
        long n = ag_json_append_str(&sb, strs[i], lens[i]);
        CHECK(want && n == (long)strlen(want) && sb.len == 1 + strlen(want) && !memcmp(sb.base + 1, want, strlen(want)));
        ag_buf_free(&sb);
        ag_free(want);
        json_decref(js);
    }
    struct ag_buf sb = {0};
    ag_buf_puts(&sb, "x");
    CHECK(ag_json_append_str(&sb, "ab\xe2\x82", 4) == -1 && sb.len == 1);
    ag_buf_free(&sb);

    /* Invalid UTF-8 (made without jansson's check): refused by both. */
    const char *bad[] = {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82", "\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *w = json_pack("{s:[o]}", "x", json_stringn_nocheck(bad[i], strlen(bad[i])));
        same_as_dumps(w, JSON_COMPACT);
        json_decref(w);
    }
    json_decref(odd);

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
