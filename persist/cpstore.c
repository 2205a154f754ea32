#include "persist/cpstore.h"

#include <stdbool.h>
#include <string.h>

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

/* The encoded size of v. */
static size_t dumped(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
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

/* The stored value of blob b of checkpoint cp: the whole value, or the items from b's index on. */
static json_t *blob_value(const json_t *cp, const json_t *b)
{
    json_t *v = json_object_get(json_object_get(cp, "values"), json_string_value(json_array_get(b, 0)));
    if (json_is_null(json_array_get(b, 1))) return json_incref(v ? v : json_null());
    json_t *items = json_array();
    for (size_t i = (size_t)json_integer_value(json_array_get(b, 2)); i < json_array_size(v); i++)
        json_array_append(items, json_array_get(v, i));
    return items;
}

const char *ag_cpstore_param(struct ag_pg_args *a, const json_t *cps)
{
    json_t *out = json_array();
    size_t i;
    json_t *cp;
    json_array_foreach(cps, i, cp)
    {
        json_t *row = json_object();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)cp, k, v)
        {
            if (strcmp(k, "values") && strcmp(k, "blobs") && strcmp(k, "bytes")) json_object_set(row, k, v);
        }
        if (!json_object_get(row, "channel_versions")) json_object_set_new(row, "channel_versions", json_object());
        json_t *blobs = json_array();
        size_t j;
        json_t *b;
        json_array_foreach(json_object_get(cp, "blobs"), j, b)
        {
            json_array_append_new(blobs,
                                  json_pack("[O,O,o]", json_array_get(b, 0), json_array_get(b, 1), blob_value(cp, b)));
        }
        json_object_set_new(row, "blobs", blobs);
        json_array_append_new(out, row);
    }
    const char *p = ag_pg_args_json(a, out);
    json_decref(out);
    return p;
}
