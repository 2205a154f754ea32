#include "protocol/agent/state_apply.h"

#include "protocol/validate.h"

void ag_state_apply_check_values(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    static const char msg[] = "Input should be a valid dictionary or a list of dictionaries";
    if (!v || json_is_null(v) || json_is_object(v)) return;
    ag_vpath_push_key(p, "values");
    if (!json_is_array(v)) {
        ag_verr_add(e, p, "dict_type", msg, v);
    } else {
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            if (json_is_object(it)) continue;
            ag_vpath_push_index(p, (int64_t)i);
            ag_verr_add(e, p, "dict_type", "Input should be a valid dictionary", it);
            ag_vpath_pop(p);
        }
    }
    ag_vpath_pop(p);
}

json_t *ag_state_apply_values(const json_t *v)
{
    if (json_is_object(v)) return json_incref((json_t *)v);
    if (!json_is_array(v)) return NULL;
    json_t *m = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        json_object_update(m, it);
    }
    return m;
}

json_t *ag_state_apply_interrupts(const json_t *ck, const char **status)
{
    json_t *out = json_object();
    size_t i;
    json_t *task;
    json_array_foreach(json_object_get(ck, "tasks"), i, task)
    {
        json_t *ints = json_object_get(task, "interrupts");
        const char *tid = json_string_value(json_object_get(task, "id"));
        if (tid && json_array_size(ints)) json_object_set(out, tid, ints);
    }
    *status = json_object_size(out) ? "interrupted" : "idle";
    return out;
}
