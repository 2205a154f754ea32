#include "runtime/v2values.h"

#include <stdbool.h>
#include <string.h>

#include "core/common.h"

const char *ag_v2_role_of(const char *type)
{
    if (!type)
        return "ai";
    if (!strncmp(type, "ai", 2) || !strncmp(type, "AI", 2))
        return "ai";
    if (!strncmp(type, "human", 5) || !strncmp(type, "Human", 5) || !strcmp(type, "user"))
        return "human";
    if (!strncmp(type, "system", 6) || !strncmp(type, "System", 6))
        return "system";
    if (!strncmp(type, "tool", 4) || !strncmp(type, "Tool", 4))
        return "tool";
    return type;
}

static bool is_message(const json_t *m)
{
    return json_is_object(m) && json_is_string(json_object_get(m, "type")) && json_object_get(m, "content");
}

json_t *ag_v2_normalize_tool_calls(const json_t *calls)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        json_t *n = json_pack("{s:s}", "type", "tool_call");
        json_t *v;
        if ((v = json_object_get(c, "id")))
            json_object_set(n, "id", v);
        if ((v = json_object_get(c, "name")))
            json_object_set(n, "name", v);
        v = json_object_get(c, "args");
        json_object_set_new(n, "args", json_is_object(v) ? json_incref(v) : json_object());
        json_array_append_new(out, n);
    }
    return out;
}

static json_t *normalize_message(const json_t *m)
{
    const char *role = ag_v2_role_of(json_string_value(json_object_get(m, "type")));
    json_t *n = json_pack("{s:s,s:O}", "type", role, "content", json_object_get(m, "content"));
    static const char *const keep[] = {"id", "name", "tool_call_id", "status", "artifact", "example"};
    for (size_t i = 0; i < AG_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(m, keep[i]);
        if (v && !json_is_null(v) && !(json_is_false(v) && !strcmp(keep[i], "example")))
            json_object_set(n, keep[i], v);
    }
    json_t *tc = json_object_get(m, "tool_calls");
    if (json_array_size(tc))
        json_object_set_new(n, "tool_calls", ag_v2_normalize_tool_calls(tc));
    json_t *itc = json_object_get(m, "invalid_tool_calls");
    if (json_array_size(itc))
        json_object_set(n, "invalid_tool_calls", itc);
    return n;
}

json_t *ag_v2_normalize_values(const json_t *values)
{
    if (!json_is_object(values))
        return json_deep_copy(values);
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)values, k, v) {
        if (!strcmp(k, "__interrupt__"))
            continue;
        if (json_is_array(v) && json_array_size(v) && is_message(json_array_get(v, 0))) {
            json_t *list = json_array();
            size_t i;
            json_t *m;
            json_array_foreach(v, i, m) json_array_append_new(list, is_message(m) ? normalize_message(m) : json_incref(m));
            json_object_set_new(out, k, list);
        } else {
            json_object_set(out, k, v);
        }
    }
    return out;
}
