/* LangGraph's add_messages and LangChain's message coercion (graph/messages). */
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "graph/messages.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    if (!v)
        fprintf(stderr, "bad test JSON: %s: %s\n", s, e.text);
    return v;
}

/* m's keys in order, comma-separated, into out. */
static const char *keys(const json_t *m, char *out, size_t n)
{
    out[0] = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (out[0])
            strncat(out, ",", n - strlen(out) - 1);
        strncat(out, k, n - strlen(out) - 1);
    }
    return out;
}

static const char *str(const json_t *m, const char *key)
{
    return json_string_value(json_object_get(m, key));
}

static json_t *coerce(const char *text, char *err, size_t errlen)
{
    json_t *in = parse(text);
    json_t *out = ag_msg_coerce(in, err, errlen);
    json_decref(in);
    return out;
}

static void test_coerce(void)
{
    char err[512], k[256];
    json_t *m = coerce("{\"role\":\"user\",\"content\":\"hello\"}", err, sizeof err);
    CHECK(m);
    CHECK_STREQ(keys(m, k, sizeof k), "content,additional_kwargs,response_metadata,id,type");
    CHECK_STREQ(str(m, "type"), "human");
    CHECK_STREQ(str(m, "content"), "hello");
    CHECK(str(m, "id") && strlen(str(m, "id")) == 36 && str(m, "id")[14] == '4');
    json_decref(m);

    m = coerce("{\"role\":\"assistant\",\"content\":\"hi\",\"name\":\"bot\"}", err, sizeof err);
    CHECK_STREQ(keys(m, k, sizeof k),
                "content,tool_calls,invalid_tool_calls,additional_kwargs,response_metadata,name,id,type");
    CHECK_STREQ(str(m, "type"), "ai");
    CHECK_STREQ(str(m, "name"), "bot");
    json_decref(m);

    m = coerce("{\"type\":\"ai\",\"content\":\"x\",\"id\":\"keep\",\"usage_metadata\":{\"n\":1}}", err, sizeof err);
    CHECK_STREQ(str(m, "id"), "keep");
    CHECK(json_object_get(m, "usage_metadata"));
    json_decref(m);

    m = coerce("\"just text\"", err, sizeof err);
    CHECK_STREQ(str(m, "type"), "human");
    CHECK_STREQ(str(m, "content"), "just text");
    json_decref(m);

    m = coerce("{\"role\":\"system\",\"content\":\"be nice\"}", err, sizeof err);
    CHECK_STREQ(str(m, "type"), "system");
    json_decref(m);

    m = coerce("{\"role\":\"developer\",\"content\":\"be nice\"}", err, sizeof err);
    CHECK_STREQ(str(m, "type"), "system");
    CHECK_STREQ(str(json_object_get(m, "additional_kwargs"), "__openai_role__"), "developer");
    json_decref(m);

    m = coerce("{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c1\"}", err, sizeof err);
    CHECK_STREQ(str(m, "type"), "tool");
    CHECK_STREQ(str(m, "tool_call_id"), "c1");
    json_decref(m);

    m = coerce("{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
               "\"function\":{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":1}\"}}]}",
               err, sizeof err);
    json_t *tc = json_array_get(json_object_get(m, "tool_calls"), 0);
    CHECK_STREQ(str(tc, "name"), "add");
    CHECK(json_integer_value(json_object_get(json_object_get(tc, "args"), "a")) == 1);
    CHECK_STREQ(str(tc, "type"), "tool_call");
    json_decref(m);

    m = coerce("{\"lc\":1,\"type\":\"constructor\",\"id\":[\"langchain_core\",\"messages\",\"HumanMessage\"],"
               "\"kwargs\":{\"content\":\"from lc\"}}",
               err, sizeof err);
    CHECK_STREQ(str(m, "type"), "human");
    CHECK_STREQ(str(m, "content"), "from lc");
    json_decref(m);

    /* Refused, each with a reason. */
    static const char *const bad[] = {
        "{\"role\":\"wizard\",\"content\":\"x\"}", "{\"content\":\"no role\"}", "{\"role\":\"user\"}",
        "{\"role\":\"tool\",\"content\":\"x\"}",  "42",                          "{\"role\":\"user\",\"content\":5}",
        "{\"type\":\"remove\"}",                  "{\"role\":\"user\",\"content\":\"x\",\"id\":7}", "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        m = coerce(bad[i], err, sizeof err);
        CHECK(!m);
        CHECK(err[0]);
        json_decref(m);
    }
    m = coerce("{\"role\":\"wizard\",\"content\":\"x\"}", err, sizeof err);
    CHECK(strstr(err, "Unexpected message type: 'wizard'"));
}

static void test_merge(void)
{
    char err[512];
    json_t *left = parse("[{\"type\":\"human\",\"content\":\"a\",\"id\":\"1\"},{\"type\":\"ai\",\"content\":\"b\","
                         "\"id\":\"2\"}]");
    /* A single message instead of a list; a replacement by id; an append. */
    json_t *right = parse("{\"type\":\"ai\",\"content\":\"B\",\"id\":\"2\"}");
    json_t *out = ag_msg_add(left, right, err, sizeof err);
    CHECK(json_array_size(out) == 2);
    CHECK_STREQ(str(json_array_get(out, 1), "content"), "B");
    json_decref(right);
    json_decref(out);

    right = parse("[\"c\",{\"type\":\"remove\",\"id\":\"1\"}]");
    out = ag_msg_add(left, right, err, sizeof err);
    CHECK(json_array_size(out) == 2);
    CHECK_STREQ(str(json_array_get(out, 0), "id"), "2");
    CHECK_STREQ(str(json_array_get(out, 1), "content"), "c");
    json_decref(right);
    json_decref(out);

    /* Remove then re-add in the same update keeps it (LangGraph discards the removal). */
    right = parse("[{\"type\":\"remove\",\"id\":\"1\"},{\"type\":\"human\",\"content\":\"again\",\"id\":\"1\"}]");
    out = ag_msg_add(left, right, err, sizeof err);
    CHECK(json_array_size(out) == 2);
    CHECK_STREQ(str(json_array_get(out, 0), "content"), "again");
    json_decref(right);
    json_decref(out);

    right = parse("[{\"type\":\"remove\",\"id\":\"nope\"}]");
    out = ag_msg_add(left, right, err, sizeof err);
    CHECK(!out);
    CHECK(strstr(err, "Attempting to delete a message with an ID that doesn't exist ('nope')"));
    json_decref(right);

    right = parse("[\"x\",{\"type\":\"remove\",\"id\":\"__remove_all__\"},\"y\",\"z\"]");
    out = ag_msg_add(left, right, err, sizeof err);
    CHECK(json_array_size(out) == 2);
    CHECK_STREQ(str(json_array_get(out, 0), "content"), "y");
    json_decref(right);
    json_decref(out);

    right = parse("[{\"role\":\"bogus\",\"content\":\"x\"}]");
    out = ag_msg_add(left, right, err, sizeof err);
    CHECK(!out);
    json_decref(right);

    /* Missing ids on the left get one too; left is never modified. */
    json_t *noid = parse("[{\"type\":\"human\",\"content\":\"q\"}]");
    right = parse("[]");
    out = ag_msg_add(noid, right, err, sizeof err);
    CHECK(str(json_array_get(out, 0), "id"));
    CHECK(!json_object_get(json_array_get(noid, 0), "id"));
    json_decref(noid);
    json_decref(right);
    json_decref(out);
    json_decref(left);
}

int main(void)
{
    test_coerce();
    test_merge();
    return CHECK_DONE();
}
