/* How a checkpoint is stored (persist/cpstore.h): which channels a checkpoint writes, and how. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "persist/cpstore.h"

/* A checkpoint in the engine's shape with these values (stolen). */
static json_t *cp(const char *id, json_t *values)
{
    return json_pack("{s:s,s:n,s:i,s:s,s:o,s:[],s:[],s:{}}", "checkpoint_id", id, "parent_checkpoint_id", "step", 0,
                     "source", "loop", "values", values, "next", "tasks", "metadata");
}

/* cp(id, values) stamped against prev. */
static json_t *stamp(const json_t *prev, const char *id, json_t *values)
{
    json_t *c = cp(id, values);
    json_t *out = ag_cpstore_stamp(prev, c);
    json_decref(c);
    return out;
}

/* Compact JSON text of member k of o (static buffer). */
static const char *text(const json_t *o, const char *k)
{
    static char buf[512];
    char *s = json_dumps(json_object_get(o, k), JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, sizeof buf, "%s", s ? s : "(none)");
    free(s);
    return buf;
}

int main(void)
{
    /* The first checkpoint of a thread stores every channel whole, at its own version. */
    json_t *m1 = json_pack("{s:s}", "content", "hi"), *m2 = json_pack("{s:s}", "content", "yo");
    json_t *a = stamp(NULL, "a", json_pack("{s:[O],s:s}", "messages", m1, "topic", "t"));
    CHECK_STREQ(text(a, "channel_versions"), "{\"messages\":\"a\",\"topic\":\"a\"}");
    CHECK_STREQ(text(a, "blobs"), "[[\"messages\",null,0],[\"topic\",null,0]]");

    /* The next appends to messages (sharing its items, as reducers do) and keeps topic: only the new
     * message, based on a's version; topic is not written again. */
    json_t *b = stamp(a, "b", json_pack("{s:[O,O],s:s}", "messages", m1, m2, "topic", "t"));
    CHECK_STREQ(text(b, "channel_versions"), "{\"messages\":\"b\",\"topic\":\"a\"}");
    CHECK_STREQ(text(b, "blobs"), "[[\"messages\",\"a\",1]]");

    /* An equal item that is not the same node still extends; a replaced value is stored whole. */
    json_t *c = stamp(b, "c", json_pack("{s:[{s:s},O],s:s}", "messages", "content", "hi", m2, "topic", "other"));
    CHECK_STREQ(text(c, "channel_versions"), "{\"messages\":\"b\",\"topic\":\"c\"}");
    CHECK_STREQ(text(c, "blobs"), "[[\"topic\",null,0]]");
    json_t *d = stamp(c, "d", json_pack("{s:[O],s:s}", "messages", m2, "topic", "other"));
    CHECK_STREQ(text(d, "blobs"), "[[\"messages\",null,0]]");

    /* Emitted again (same id, its tasks' ends) before it was written: it keeps its blobs. */
    json_t *b2 = stamp(b, "b", json_pack("{s:[O,O],s:s}", "messages", m1, m2, "topic", "t"));
    CHECK_STREQ(text(b2, "channel_versions"), "{\"messages\":\"b\",\"topic\":\"a\"}");
    CHECK_STREQ(text(b2, "blobs"), "[[\"messages\",\"a\",1]]");
    /* ... and one that changed a value stores it whole (its version is its own id). */
    json_t *b3 = stamp(b, "b", json_pack("{s:[O,O,O],s:s}", "messages", m1, m2, m2, "topic", "t"));
    CHECK_STREQ(text(b3, "blobs"), "[[\"messages\",null,0]]");

    /* The statement's parameter: no values; a delta's value is the appended items, a whole one the value. */
    struct ag_pg_args args = {0};
    json_t *cps = json_pack("[O,O,O]", a, b, c);
    json_t *p = json_loads(ag_cpstore_param(&args, cps), 0, NULL);
    CHECK(p && json_array_size(p) == 3);
    CHECK(!json_object_get(json_array_get(p, 1), "values"));
    CHECK_STREQ(text(json_array_get(p, 0), "blobs"), "[[\"messages\",null,[{\"content\":\"hi\"}]],[\"topic\",null,\"t\"]]");
    CHECK_STREQ(text(json_array_get(p, 1), "blobs"), "[[\"messages\",\"a\",[{\"content\":\"yo\"}]]]");
    CHECK_STREQ(text(json_array_get(p, 2), "blobs"), "[[\"topic\",null,\"other\"]]");
    CHECK_STREQ(text(json_array_get(p, 1), "checkpoint_id"), "\"b\"");
    ag_pg_args_reset(&args);

    json_decref(p);
    json_decref(cps);
    json_decref(a), json_decref(b), json_decref(c), json_decref(d), json_decref(b2), json_decref(b3);
    json_decref(m1), json_decref(m2);
    return CHECK_DONE();
}
