#include "persist/cpstore.h"

#include <stdbool.h>
#include <string.h>

#include "core/buf.h"
#include "core/jsontext.h"

/* v extends base: both arrays, v at least as long, and v's first items are base's (the same nodes, as
 * reducers that append share them, or equal ones). */
static bool extends(const json_t *base, const json_t *v)
{
    if (!json_is_array(base) || !json_is_array(v) || json_array_size(v) < json_array_size(base)) return false;
    for (size_t i = 0; i < json_array_size(base); i++) {
        const json_t *a = json_array_get(base, i), *b = json_array_get(v, i);
        if (a != b && !json_equal(a, b)) return false;
    }
    return true;
}

/* The blob entry of channel k in stamped cp's blobs (NULL: none). */
static json_t *blob_of(const json_t *cp, const char *k)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(cp, "blobs"), i, b)
    {
        if (!strcmp(json_string_value(json_array_get(b, 0)), k)) return b;
    }
    return NULL;
}

/* The encoded size of v (encoded in the thread's scratch buffer: nothing allocated). */
static size_t dumped(const json_t *v)
{
    size_t n = 0;
    return ag_json_scratch_text(v, JSON_COMPACT | JSON_ENCODE_ANY, &n) ? n : 0;
}

size_t ag_cpstore_bytes(const json_t *cp)
{
    if (!cp) return 0;
    json_t *b = json_object_get(cp, "bytes");
    return json_is_integer(b) ? (size_t)json_integer_value(b) : dumped(json_object_get(cp, "values"));
}

json_t *ag_cpstore_stamp(const json_t *prev, const json_t *cp)
{
    json_t *out = json_copy((json_t *)cp);
    const char *id = json_string_value(json_object_get(cp, "checkpoint_id"));
    const json_t *pv = json_object_get(prev, "values");
    const json_t *pver = json_object_get(prev, "channel_versions");
    bool again = id && json_equal(json_object_get(prev, "checkpoint_id"), json_object_get(cp, "checkpoint_id"));
    json_t *versions = json_object(), *blobs = json_array();
    size_t bytes = ag_cpstore_bytes(prev); /* what was replaced is not taken off: an estimate from above */
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(cp, "values"), k, v)
    {
        const json_t *old = json_object_get(pv, k);
        const json_t *oldver = json_object_get(pver, k);
        if (old && json_is_string(oldver) && (old == v || json_equal(old, v))) {
            json_object_set(versions, k, (json_t *)oldver);
            json_t *b = again ? blob_of(prev, k) : NULL; /* prev not written yet: its blob goes with cp */
            if (b) json_array_append(blobs, b);
            continue;
        }
        json_object_set_new(versions, k, json_string(id));
        /* Emitted again with a changed value: its version is its own id, so it is stored whole. */
        if (!again && old && json_is_string(oldver) && extends(old, v)) {
            json_array_append_new(blobs, json_pack("[s,O,I]", k, oldver, (json_int_t)json_array_size(old)));
            for (size_t i = json_array_size(old); i < json_array_size(v); i++)
                bytes += dumped(json_array_get(v, i)) + 1;
        } else {
            json_array_append_new(blobs, json_pack("[s,n,i]", k, 0));
            bytes += dumped(v);
        }
    }
    json_object_set_new(out, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(out, "channel_versions", versions);
    json_object_set_new(out, "blobs", blobs);
    return out;
}

/* Appends s as a JSON string (object keys: the engine's checkpoint keys, escaped all the same). */
static void put_key(struct ag_buf *out, const char *s)
{
    ag_buf_puts(out, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ag_buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            ag_buf_printf(out, "\\u%04x", c);
        else
            ag_buf_append(out, s, 1);
    }
    ag_buf_puts(out, "\":");
}

static void put_value(struct ag_buf *out, const json_t *v)
{
    if (!v || ag_json_append(out, v, JSON_COMPACT | JSON_ENCODE_ANY) < 0) ag_buf_puts(out, "null");
}

/* Appends the stored value of blob b of checkpoint cp: the whole value, or the items from b's index on. */
static void put_blob_value(struct ag_buf *out, const json_t *cp, const json_t *b)
{
    const json_t *v = json_object_get(json_object_get(cp, "values"), json_string_value(json_array_get(b, 0)));
    if (json_is_null(json_array_get(b, 1))) {
        put_value(out, v);
        return;
    }
    ag_buf_puts(out, "[");
    for (size_t i = (size_t)json_integer_value(json_array_get(b, 2)); i < json_array_size(v); i++) {
        if (i > (size_t)json_integer_value(json_array_get(b, 2))) ag_buf_puts(out, ",");
        put_value(out, json_array_get(v, i));
    }
    ag_buf_puts(out, "]");
}

/* Written as text directly (no JSON tree built to be encoded and freed: a run's three checkpoints took
 * ninety allocations that way). */
const char *ag_cpstore_param(struct ag_pg_args *a, const json_t *cps)
{
    struct ag_buf out = {0};
    ag_buf_reserve(&out, 4096);
    ag_buf_puts(&out, "[");
    size_t i;
    json_t *cp;
    json_array_foreach(cps, i, cp)
    {
        ag_buf_puts(&out, i ? ",{" : "{");
        const char *k;
        json_t *v;
        bool any = false, versions = false;
        json_object_foreach((json_t *)cp, k, v)
        {
            if (!strcmp(k, "values") || !strcmp(k, "blobs") || !strcmp(k, "bytes")) continue;
            if (any) ag_buf_puts(&out, ",");
            put_key(&out, k);
            put_value(&out, v);
            any = true;
            versions |= !strcmp(k, "channel_versions");
        }
        if (!versions) {
            ag_buf_puts(&out, any ? "," : "");
            ag_buf_puts(&out, "\"channel_versions\":{}");
            any = true;
        }
        ag_buf_puts(&out, any ? ",\"blobs\":[" : "\"blobs\":[");
        size_t j;
        json_t *b;
        json_array_foreach(json_object_get(cp, "blobs"), j, b)
        {
            ag_buf_puts(&out, j ? ",[" : "[");
            put_value(&out, json_array_get(b, 0));
            ag_buf_puts(&out, ",");
            put_value(&out, json_array_get(b, 1));
            ag_buf_puts(&out, ",");
            put_blob_value(&out, cp, b);
            ag_buf_puts(&out, "]");
        }
        ag_buf_puts(&out, "]}");
    }
    ag_buf_puts(&out, "]");
    const char *p = ag_pg_args_dup(a, out.base, out.len);
    ag_buf_free(&out);
    return p;
}
