#include "runtime/run_spec.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "graph/graph.h"
#include "graph/registry.h"

static const struct {
    const char *name;
    unsigned bit;
} modes[] = {
    {"values", AG_SM_VALUES},     {"updates", AG_SM_UPDATES}, {"messages", AG_SM_MESSAGES},
    {"messages-tuple", AG_SM_MESSAGES_TUPLE}, {"custom", AG_SM_CUSTOM}, {"events", AG_SM_EVENTS},
    {"debug", AG_SM_DEBUG},       {"tasks", AG_SM_TASKS},     {"checkpoints", AG_SM_CHECKPOINTS},
    {"tools", AG_SM_TOOLS},       {"lifecycle", AG_SM_LIFECYCLE},
};

void ag_run_spec_clear(struct ag_run_spec *spec)
{
    json_decref(spec->input);
    json_decref(spec->command);
    json_decref(spec->config);
    json_decref(spec->context);
    json_decref(spec->metadata);
    json_decref(spec->checkpoint);
    json_decref(spec->interrupt_before);
    json_decref(spec->interrupt_after);
    json_decref(spec->stream_mode);
    json_decref(spec->feedback_keys);
    memset(spec, 0, sizeof *spec);
}

unsigned ag_run_spec_mode(const char *name)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(modes); i++)
        if (!strcmp(name, modes[i].name))
            return modes[i].bit;
    return 0;
}

/* The graph of a system assistant, or NULL. */
static const struct ag_graph_def *system_graph(const char *assistant_id)
{
    for (size_t i = 0; i < ag_graph_count(); i++)
        if (!strcmp(ag_graph_at(i)->assistant_id, assistant_id))
            return ag_graph_at(i)->def;
    return NULL;
}

bool ag_run_spec_check_config(const char *assistant_id, const json_t *config, const char **key, char *msg,
                              size_t msglen)
{
    const struct ag_graph_def *g = system_graph(assistant_id);
    const json_t *c = json_object_get(config, "configurable");
    *key = NULL;
    return !g || (c && !json_is_object(c)) || ag_graph_def_check_config(g, c, key, msg, msglen) == 0;
}

/* A field that is present and not null. */
static json_t *present(const json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* Takes a reference to body[key] when it is an object; false when it is there but something else. */
static bool take_object(const json_t *body, const char *key, json_t **out)
{
    json_t *v = present(body, key);
    if (v && !json_is_object(v))
        return false;
    *out = json_incref(v);
    return true;
}

/* "*" or a list of node names. */
static bool node_list(const json_t *v)
{
    if (!v || (json_is_string(v) && !strcmp(json_string_value(v), "*")))
        return true;
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x))
            return false;
    }
    return true;
}

/* A stream mode or a non-empty list of them; absent: values. */
static bool map_stream_mode(json_t *v, struct ag_run_spec *sp)
{
    if (!v) {
        sp->modes = AG_SM_VALUES;
        return true;
    }
    json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    sp->stream_mode = list;
    if (!json_is_array(list) || !json_array_size(list))
        return false;
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        unsigned b = json_is_string(x) ? ag_run_spec_mode(json_string_value(x)) : 0;
        if (!b)
            return false;
        sp->modes |= b;
    }
    return true;
}

static bool fail(struct ag_run_spec *sp, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    ag_run_spec_clear(sp);
    return false;
}

bool ag_run_spec_from_payload(const json_t *body, bool stateless, struct ag_run_spec *sp, char *err, size_t errlen)
{
    if (!json_is_object(body))
        return fail(sp, err, errlen, "the run fields are not an object");
    json_t *v;
    if ((v = json_object_get(body, "assistant_id"))) {
        const char *resolved = json_is_string(v) ? ag_graph_resolve_assistant(json_string_value(v)) : NULL;
        if (!resolved || strlen(resolved) >= sizeof sp->assistant_id)
            return fail(sp, err, errlen, "assistant_id: expected a string of at most 129 bytes");
        snprintf(sp->assistant_id, sizeof sp->assistant_id, "%s", resolved);
    }
    if ((v = present(body, "input")))
        sp->input = json_incref(v);
    if (!take_object(body, "command", &sp->command))
        return fail(sp, err, errlen, "command: expected an object");
    if (!take_object(body, "config", &sp->config))
        return fail(sp, err, errlen, "config: expected an object");
    if (!take_object(body, "context", &sp->context))
        return fail(sp, err, errlen, "context: expected an object");
    if (!take_object(body, "metadata", &sp->metadata))
        return fail(sp, err, errlen, "metadata: expected an object");
    if (!map_stream_mode(present(body, "stream_mode"), sp))
        return fail(sp, err, errlen, "stream_mode: expected a stream mode or a non-empty list of them");
    sp->subgraphs = json_is_true(json_object_get(body, "stream_subgraphs"));
    sp->resumable = json_is_true(json_object_get(body, "stream_resumable"));
    json_t *ib = present(body, "interrupt_before"), *ia = present(body, "interrupt_after");
    if (!node_list(ib) || !node_list(ia))
        return fail(sp, err, errlen, "interrupt_before, interrupt_after: expected \"*\" or a list of node names");
    sp->interrupt_before = json_incref(ib);
    sp->interrupt_after = json_incref(ia);
    if (!take_object(body, "checkpoint", &sp->checkpoint))
        return fail(sp, err, errlen, "checkpoint: expected an object");
    /* checkpoint.checkpoint_id wins over the top-level checkpoint_id. */
    const char *cpid = json_string_value(present(body, "checkpoint_id"));
    json_t *id = json_object_get(sp->checkpoint, "checkpoint_id");
    if (json_is_string(id))
        cpid = json_string_value(id);
    if (cpid && strlen(cpid) >= sizeof sp->checkpoint_id)
        return fail(sp, err, errlen, "checkpoint_id: too long");
    if (cpid)
        snprintf(sp->checkpoint_id, sizeof sp->checkpoint_id, "%s", cpid);
    const char *mt = json_string_value(present(body, "multitask_strategy"));
    if (!mt || !strcmp(mt, "reject"))
        sp->mt = AG_MT_REJECT;
    else if (!strcmp(mt, "enqueue"))
        sp->mt = AG_MT_ENQUEUE;
    else if (!strcmp(mt, "interrupt"))
        sp->mt = AG_MT_INTERRUPT;
    else if (!strcmp(mt, "rollback"))
        sp->mt = AG_MT_ROLLBACK;
    else
        return fail(sp, err, errlen, "multitask_strategy: expected reject, enqueue, interrupt or rollback");
    sp->strict_resume = json_is_true(present(body, "strict_resume"));
    const char *od = json_string_value(present(body, "on_disconnect"));
    sp->cancel_on_disconnect = !od || !strcmp(od, "cancel");
    const char *oc = json_string_value(present(body, "on_completion"));
    sp->stateless = stateless;
    sp->delete_thread = stateless && (!oc || !strcmp(oc, "delete"));
    const char *ine = json_string_value(present(body, "if_not_exists"));
    sp->create_thread = stateless || (ine && !strcmp(ine, "create"));
    if ((v = present(body, "after_seconds"))) {
        double s = json_number_value(v);
        if (!json_is_number(v) || s < 0 || s > 86400 * 365)
            return fail(sp, err, errlen, "after_seconds: expected a number between 0 and one year");
        sp->after_seconds = s;
    }
    /* durability wins over the older checkpoint_during (false: "exit", true: "async"). */
    const char *du = json_string_value(present(body, "durability"));
    json_t *cd = present(body, "checkpoint_during");
    if (du && !strcmp(du, "async"))
        sp->durability = AG_DURABILITY_ASYNC;
    else if (du && !strcmp(du, "sync"))
        sp->durability = AG_DURABILITY_SYNC;
    else if (du && !strcmp(du, "exit"))
        sp->durability = AG_DURABILITY_EXIT;
    else if (du)
        return fail(sp, err, errlen, "durability: expected async, sync or exit");
    else if (cd && !json_is_boolean(cd))
        return fail(sp, err, errlen, "checkpoint_during: expected a boolean");
    else if (cd)
        sp->durability = json_is_true(cd) ? AG_DURABILITY_ASYNC : AG_DURABILITY_EXIT;
    return true;
}

const char *ag_durability_name(enum ag_durability d)
{
    switch (d) {
    case AG_DURABILITY_ASYNC: return "async";
    case AG_DURABILITY_SYNC: return "sync";
    case AG_DURABILITY_EXIT: return "exit";
    case AG_DURABILITY_DEFAULT: break;
    }
    return NULL;
}

bool ag_run_spec_for_cron(const char *cron_id, const char *assistant_id, bool stateless, const json_t *payload,
                          const char *on_run_completed, struct ag_run_spec *sp, char *err, size_t errlen)
{
    memset(sp, 0, sizeof *sp);
    json_t *empty = json_is_object(payload) ? NULL : json_object();
    bool ok = ag_run_spec_from_payload(empty ? empty : payload, stateless, sp, err, errlen);
    json_decref(empty);
    if (!ok)
        return false;
    const char *resolved = ag_graph_resolve_assistant(assistant_id);
    if (strlen(resolved) >= sizeof sp->assistant_id)
        return fail(sp, err, errlen, "assistant_id: too long");
    snprintf(sp->assistant_id, sizeof sp->assistant_id, "%s", resolved);
    json_decref(sp->metadata);
    sp->metadata = json_pack("{s:s}", "cron_id", cron_id);
    sp->delete_thread = stateless && !(on_run_completed && !strcmp(on_run_completed, "keep"));
    const char *key;
    char msg[200];
    if (!ag_run_spec_check_config(sp->assistant_id, sp->config, &key, msg, sizeof msg)) {
        snprintf(err, errlen, "config.configurable.%s: %s", key ? key : "", msg);
        ag_run_spec_clear(sp);
        return false;
    }
    return true;
}
