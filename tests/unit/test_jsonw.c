/* The JSON writer: nesting, commas, escaping of quotes, backslashes and control characters. */
#include <jansson.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "protocol/jsonw.h"

int main(void)
{
    struct ag_buf b = {0};
    struct ag_jw w;
    ag_jw_init(&w, &b);
    ag_jw_obj(&w);
    ag_jw_key(&w, "a");
    ag_jw_int(&w, -5);
    ag_jw_key(&w, "s\"k");
    ag_jw_str(&w, "q\"b\\n\n\x01\x1f\xc3\xa9");
    ag_jw_key(&w, "arr");
    ag_jw_arr(&w);
    ag_jw_bool(&w, true);
    ag_jw_null(&w);
    ag_jw_obj(&w);
    ag_jw_end(&w);
    ag_jw_arr(&w);
    ag_jw_end(&w);
    ag_jw_raw(&w, "{\"x\":[1]}", 9);
    ag_jw_uint(&w, 9007199254740993ull);
    ag_jw_end(&w);
    ag_jw_end(&w);
    ag_buf_append(&b, "", 1);
    CHECK_STREQ(b.base, "{\"a\":-5,\"s\\\"k\":\"q\\\"b\\\\n\\n\\u0001\\u001f\xc3\xa9\",\"arr\":[true,null,{},[],{\"x\":[1]},"
                        "9007199254740993]}");
    json_error_t je;
    json_t *j = json_loads(b.base, 0, &je);
    if (!j)
        fprintf(stderr, "jansson: %s at %d\n", je.text, je.position);
    CHECK(j != NULL);
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "s\"k")), "q\"b\\n\n\x01\x1f\xc3\xa9"));
    json_decref(j);
    ag_buf_free(&b);

    /* Well-formed UTF-8 (2, 3 and 4 bytes) passes through; anything else becomes U+FFFD. */
    static const struct {
        const char *in, *out;
    } utf8[] = {
        {"\xe2\x82\xac \xf0\x9f\x98\x80", "\xe2\x82\xac \xf0\x9f\x98\x80"},
        {"a\xff" "b", "a\\ufffd" "b"},                      /* never valid */
        {"\xc0\xaf", "\\ufffd\\ufffd"},              /* overlong '/' */
        {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},   /* a surrogate */
        {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* above U+10FFFF */
        {"\xe2\x82", "\\ufffd\\ufffd"},              /* truncated */
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        struct ag_buf u = {0};
        ag_json_escape(&u, utf8[i].in, strlen(utf8[i].in));
        ag_buf_append(&u, "", 1);
        CHECK_STREQ(u.base, utf8[i].out);
        ag_buf_free(&u);
    }
    return CHECK_DONE();
}
