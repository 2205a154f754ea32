#include "graph/messages.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/uuid.h"

enum mtype { M_HUMAN, M_AI, M_SYSTEM, M_TOOL, M_REMOVE, M_BAD };

static const char *const type_names[] = {"human", "ai", "system", "tool", "remove"};

/* LangChain's _create_message_from_message_type accepts these spellings (role or type). */
static enum mtype parse_type(const char *s, bool *developer)
{
    static const struct {
        const char *name;
        enum mtype t;
    } map[] = {
        {"human", M_HUMAN},   {"user", M_HUMAN},     {"HumanMessage", M_HUMAN},     {"HumanMessageChunk", M_HUMAN},
        {"ai", M_AI},         {"assistant", M_AI},   {"AIMessage", M_AI},           {"AIMessageChunk", M_AI},
        {"system", M_SYSTEM}, {"SystemMessage", M_SYSTEM}, {"SystemMessageChunk", M_SYSTEM}, {"developer", M_SYSTEM},
        {"tool", M_TOOL},     {"ToolMessage", M_TOOL}, {"ToolMessageChunk", M_TOOL}, {"remove", M_REMOVE},
        {"RemoveMessage", M_REMOVE},
    };
    *developer = !strcmp(s, "developer");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].name, s))
            return map[i].t;
    return M_BAD;
}

static void describe(const json_t *m, char *out, size_t n)
{
    char *s = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, n, "%.200s%s", s ? s : "?", s && strlen(s) > 200 ? "..." : "");
    ag_free(s);
}

/* OpenAI's {"id","type":"function","function":{"name","arguments":"<json>"}} or LangChain's
 * {"name","args","id"}: both become {"name","args","id","type":"tool_call"}. */
static json_t *coerce_tool_calls(const json_t *v, char *err, size_t errlen)
{
    if (!json_is_array(v)) {
        snprintf(err, errlen, "tool_calls must be a list");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(v, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function");
        const json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : json_object_get(tc, "name");
        if (!json_is_object(tc) || !json_is_string(name)) {
            snprintf(err, errlen, "each tool call needs a name");
            json_decref(out);
            return NULL;
        }
        json_t *args;
        if (json_is_object(fn)) {
            const json_t *a = json_object_get(fn, "arguments");
            args = json_is_string(a) ? json_loads(json_string_value(a), 0, NULL) : NULL;
            if (!json_is_object(args)) {
                json_decref(args);
                args = json_object();
            }
        } else {
            const json_t *a = json_object_get(tc, "args");
            args = json_is_object(a) ? json_incref((json_t *)a) : json_object();
        }
        const json_t *id = json_object_get(tc, "id");
        json_array_append_new(out, json_pack("{s:O,s:o,s:O,s:s}", "name", name, "args", args, "id",
                                             json_is_string(id) ? id : json_null(), "type", "tool_call"));
    }
    return out;
}

/* Fields placed by the canonical layout; everything else given is kept. */
static bool is_layout_key(const char *k)
{
    static const char *const keys[] = {"role",       "type", "content", "id", "name", "additional_kwargs",
                                       "response_metadata", "tool_calls", "invalid_tool_calls", "tool_call_id",
                                       "lc", "kwargs"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(keys[i], k))
            return true;
    return false;
}

static json_t *coerce_dict(const json_t *m, char *err, size_t errlen)
{
    const json_t *src = m;
    const char *tname = NULL;
    const json_t *lc = json_object_get(m, "lc");
    if (lc && json_is_string(json_object_get(m, "type")) &&
        !strcmp(json_string_value(json_object_get(m, "type")), "constructor")) {
        const json_t *path = json_object_get(m, "id");
        src = json_object_get(m, "kwargs");
        const json_t *cls = json_array_get(path, json_array_size(path) ? json_array_size(path) - 1 : 0);
        if (!json_is_object(src) || !json_is_string(cls)) {
            char d[256];
            describe(m, d, sizeof d);
            snprintf(err, errlen, "Unsupported serialized message: %s", d);
            return NULL;
        }
        tname = json_string_value(cls);
    } else {
        const json_t *role = json_object_get(m, "role");
        const json_t *type = json_object_get(m, "type");
        tname = json_is_string(role) ? json_string_value(role) : json_is_string(type) ? json_string_value(type) : NULL;
    }
    const json_t *content = json_object_get(src, "content");
    bool developer = false;
    enum mtype t = tname ? parse_type(tname, &developer) : M_BAD;
    if (!tname || (!content && t != M_REMOVE)) {
        char d[256];
        describe(m, d, sizeof d);
        snprintf(err, errlen, "Message dict must contain 'role' and 'content' keys, got %s", d);
        return NULL;
    }
    if (t == M_BAD) {
        snprintf(err, errlen,
                 "Unexpected message type: '%.64s'. Use one of 'human', 'user', 'ai', 'assistant', 'function', "
                 "'tool', 'system', or 'developer'.",
                 tname);
        return NULL;
    }
    if (content && !json_is_string(content) && !json_is_array(content)) {
        snprintf(err, errlen, "Message content must be a string or a list, got %s",
                 json_is_null(content) ? "null" : json_is_object(content) ? "an object" : "a scalar");
        return NULL;
    }
    const json_t *id = json_object_get(src, "id");
    if (id && !json_is_null(id) && !json_is_string(id)) {
        snprintf(err, errlen, "Message id must be a string");
        return NULL;
    }
    if (t == M_REMOVE && !json_is_string(id)) {
        snprintf(err, errlen, "A remove message needs the id of the message to remove");
        return NULL;
    }
    const json_t *tcid = json_object_get(src, "tool_call_id");
    if (t == M_TOOL && !json_is_string(tcid)) {
        snprintf(err, errlen, "A tool message needs a tool_call_id (string)");
        return NULL;
    }
    json_t *out = json_object();
    json_object_set_new(out, "content", content ? json_incref((json_t *)content) : json_string(""));
    if (t == M_AI) {
        const json_t *tc = json_object_get(src, "tool_calls");
        json_t *calls = tc && !json_is_null(tc) ? coerce_tool_calls(tc, err, errlen) : json_array();
        if (!calls) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tool_calls", calls);
        const json_t *itc = json_object_get(src, "invalid_tool_calls");
        json_object_set_new(out, "invalid_tool_calls", json_is_array(itc) ? json_incref((json_t *)itc) : json_array());
    }
    if (t == M_TOOL)
        json_object_set(out, "tool_call_id", (json_t *)tcid);
    const json_t *ak = json_object_get(src, "additional_kwargs");
    json_t *kw = json_is_object(ak) ? json_copy((json_t *)ak) : json_object();
    if (developer)
        json_object_set_new(kw, "__openai_role__", json_string("developer"));
    json_object_set_new(out, "additional_kwargs", kw);
    const json_t *rm = json_object_get(src, "response_metadata");
    json_object_set_new(out, "response_metadata", json_is_object(rm) ? json_incref((json_t *)rm) : json_object());
    const json_t *name = json_object_get(src, "name");
    if (name && !json_is_null(name))
        json_object_set(out, "name", (json_t *)name);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v)
    {
        if (!is_layout_key(k))
            json_object_set(out, k, v);
    }
    if (json_is_string(id)) {
        json_object_set(out, "id", (json_t *)id);
    } else {
        char u[37];
        ag_uuid4(u);
        json_object_set_new(out, "id", json_string(u));
    }
    json_object_set_new(out, "type", json_string(type_names[t]));
    return out;
}

json_t *ag_msg_coerce(const json_t *m, char *err, size_t errlen)
{
    if (json_is_string(m)) {
        char u[37];
        ag_uuid4(u);
        return json_pack("{s:O,s:{},s:{},s:s,s:s}", "content", m, "additional_kwargs", "response_metadata", "id", u,
                         "type", "human");
    }
    if (json_is_object(m))
        return coerce_dict(m, err, errlen);
    char d[256];
    describe(m, d, sizeof d);
    snprintf(err, errlen, "Unable to coerce message from %s: %s", json_is_array(m) ? "a list" : "a non-object value",
             d);
    return NULL;
}

json_t *ag_msg_coerce_list(const json_t *v, char *err, size_t errlen)
{
    json_t *out = json_array();
    if (!json_is_array(v)) {
        json_t *one = ag_msg_coerce(v, err, errlen);
        if (!one) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, one);
        return out;
    }
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m)
    {
        json_t *one = ag_msg_coerce(m, err, errlen);
        if (!one) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, one);
    }
    return out;
}

static const char *msg_id(const json_t *m)
{
    return json_string_value(json_object_get(m, "id"));
}

static bool is_remove(const json_t *m)
{
    const char *t = json_string_value(json_object_get(m, "type"));
    return t && !strcmp(t, "remove");
}

json_t *ag_msg_merge(const json_t *left, const json_t *right, char *err, size_t errlen)
{
    size_t nr = json_array_size(right), start = 0;
    for (size_t i = 0; i < nr; i++) {
        const json_t *m = json_array_get(right, i);
        const char *id = msg_id(m);
        if (is_remove(m) && id && !strcmp(id, AG_MSG_REMOVE_ALL))
            start = i + 1;
    }
    if (start) {
        /* Everything after the last remove-all replaces the channel (LangGraph: right[idx+1:]). */
        json_t *out = json_array();
        for (size_t i = start; i < nr; i++)
            json_array_append(out, json_array_get(right, i));
        return out;
    }
    /* Channels are small (a conversation), so linear id lookups beat building a hash per merge. */
    json_t *merged = left ? json_copy((json_t *)left) : json_array();
    size_t nl = json_array_size(merged);
    bool *removed = ag_calloc(nl + nr + 1, sizeof *removed);
    for (size_t i = 0; i < nr; i++) {
        json_t *m = json_array_get(right, i);
        const char *id = msg_id(m);
        size_t at = SIZE_MAX;
        for (size_t j = 0; id && j < json_array_size(merged); j++) {
            const char *mid = msg_id(json_array_get(merged, j));
            if (mid && !strcmp(mid, id)) {
                at = j;
                break;
            }
        }
        if (at != SIZE_MAX) {
            if (is_remove(m)) {
                removed[at] = true;
            } else {
                removed[at] = false;
                json_array_set(merged, at, m);
            }
        } else if (is_remove(m)) {
            snprintf(err, errlen, "Attempting to delete a message with an ID that doesn't exist ('%.64s')", id);
            json_decref(merged);
            ag_free(removed);
            return NULL;
        } else {
            json_array_append(merged, m);
        }
    }
    json_t *out = json_array();
    for (size_t j = 0; j < json_array_size(merged); j++)
        if (!removed[j])
            json_array_append(out, json_array_get(merged, j));
    json_decref(merged);
    ag_free(removed);
    return out;
}

json_t *ag_msg_add(const json_t *left, const json_t *right, char *err, size_t errlen)
{
    json_t *l = left ? ag_msg_coerce_list(left, err, errlen) : json_array();
    if (!l)
        return NULL;
    json_t *r = ag_msg_coerce_list(right, err, errlen);
    json_t *out = r ? ag_msg_merge(l, r, err, errlen) : NULL;
    json_decref(l);
    json_decref(r);
    return out;
}
