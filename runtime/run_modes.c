#include "runtime/run_modes.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "graph/engine.h"
#include "runtime/run.h"

/* A subgraph's event goes out as "<event>|<namespace>", as LangGraph Platform names it. */
static void put(struct ag_run_modes *m, const char *event, const json_t *data)
{
    if (!m->ns) {
        m->emit(m->ud, event, data);
        return;
    }
    char name[640];
    snprintf(name, sizeof name, "%s|%s", event, m->ns);
    m->emit(m->ud, name, data);
}

static json_t *ckpt_ref(const char *thread_id, const char *ns, const json_t *id)
{
    return json_pack("{s:s,s:O,s:s,s:n}", "thread_id", thread_id, "checkpoint_id", id, "checkpoint_ns", ns,
                     "checkpoint_map");
}

static json_t *ckpt_config(const char *thread_id, const char *ns, const json_t *id)
{
    if (!json_is_string(id))
        return json_null();
    return json_pack("{s:{s:s,s:s,s:O}}", "configurable", "thread_id", thread_id, "checkpoint_ns", ns, "checkpoint_id",
                     id);
}

static void emit_checkpoint(struct ag_run_modes *m, const json_t *cp)
{
    const char *tid = m->thread_id, *ns = m->ns ? m->ns : "";
    const json_t *id = json_object_get(cp, "checkpoint_id"), *pid = json_object_get(cp, "parent_checkpoint_id");
    if (m->modes & AG_SM_CHECKPOINTS) {
        json_t *d = json_pack("{s:o,s:o,s:O,s:O,s:O,s:O}", "config", ckpt_config(tid, ns, id), "parent_config",
                              ckpt_config(tid, ns, pid), "values", json_object_get(cp, "values"), "metadata",
                              json_object_get(cp, "metadata"), "next", json_object_get(cp, "next"), "tasks",
                              json_object_get(cp, "tasks"));
        put(m, "checkpoints", d);
        json_decref(d);
    }
    if (m->modes & AG_SM_DEBUG) {
        char ts[32];
        ag_clock_iso8601(ag_clock_real_us(), ts);
        json_t *payload = json_pack("{s:o,s:O,s:O,s:O,s:O,s:o,s:o}", "config", ckpt_config(tid, ns, id), "values",
                                    json_object_get(cp, "values"), "metadata", json_object_get(cp, "metadata"), "next",
                                    json_object_get(cp, "next"), "tasks", json_object_get(cp, "tasks"), "checkpoint",
                                    ckpt_ref(tid, ns, id), "parent_checkpoint",
                                    json_is_string(pid) ? ckpt_ref(tid, ns, pid) : json_null());
        if (json_is_string(pid)) json_object_set_new(payload, "parent_config", ckpt_config(tid, ns, pid));
        json_t *d = json_pack("{s:O,s:s,s:s,s:o}", "step", json_object_get(cp, "step"), "type", "checkpoint",
                              "timestamp", ts, "payload", payload);
        put(m, "debug", d);
        json_decref(d);
    }
}

static void emit_task_debug(struct ag_run_modes *m, const struct ag_graph_event *ev)
{
    char ts[32];
    ag_clock_iso8601(ag_clock_real_us(), ts);
    json_t *d = json_pack("{s:i,s:s,s:s,s:O}", "step", ev->step, "type",
                          ev->kind == AG_GEV_TASK_START ? "task" : "task_result", "timestamp", ts, "payload", ev->data);
    put(m, "debug", d);
    json_decref(d);
}

/* messages mode: metadata on the first sighting of an id, then the message accumulated so far. */
static void emit_message(struct ag_run_modes *m, const struct ag_graph_event *ev)
{
    const json_t *msg = ev->data;
    if (m->modes & AG_SM_MESSAGES_TUPLE) {
        json_t *d = json_pack("[O,O]", msg, ev->meta ? ev->meta : json_object());
        put(m, "messages", d);
        json_decref(d);
    }
    if (!(m->modes & AG_SM_MESSAGES))
        return;
    const char *id = json_string_value(json_object_get(msg, "id"));
    const char *type = json_string_value(json_object_get(msg, "type"));
    /* A chunk of a streaming model: AIMessageChunk (its dict has tool_call_chunks even when typed "ai"). */
    bool chunk = (type && strstr(type, "Chunk")) || json_object_get(msg, "tool_call_chunks");
    if (!m->msg_acc)
        m->msg_acc = json_object();
    json_t *acc = id ? json_object_get(m->msg_acc, id) : NULL;
    if (id && !acc) {
        json_t *d = json_pack("{s:{s:O}}", id, "metadata", ev->meta ? ev->meta : json_object());
        put(m, "messages/metadata", d);
        json_decref(d);
    }
    json_t *now;
    if (chunk && acc && json_is_string(json_object_get(acc, "content")) &&
        json_is_string(json_object_get(msg, "content"))) {
        now = json_deep_copy(acc);
        json_t *c = json_object_get(now, "content");
        size_t a = json_string_length(c), b = json_string_length(json_object_get(msg, "content"));
        char *cat = ag_malloc(a + b + 1);
        memcpy(cat, json_string_value(c), a);
        memcpy(cat + a, json_string_value(json_object_get(msg, "content")), b);
        cat[a + b] = 0;
        json_object_set_new(now, "content", json_stringn(cat, a + b));
        ag_free(cat);
    } else {
        now = json_deep_copy(msg);
    }
    if (id)
        json_object_set(m->msg_acc, id, now);
    json_t *d = json_pack("[o]", now);
    put(m, chunk ? "messages/partial" : "messages/complete", d);
    json_decref(d);
}

/* events mode: LangChain astream_events (v2) objects for the graph and each of its node runs. */
static void emit_lc(struct ag_run_modes *m, const char *event, const char *name, const char *id, json_t *tags, json_t *md,
                    json_t *data)
{
    json_t *d = json_pack("{s:s,s:o,s:s,s:o,s:s,s:o}", "event", event, "data", data, "name", name, "tags", tags,
                          "run_id", id, "metadata", md);
    put(m, "events", d);
    json_decref(d);
}

static json_t *node_md(struct ag_run_modes *m, const struct ag_graph_event *ev)
{
    json_t *md = json_deep_copy(m->md);
    char ns[160];
    snprintf(ns, sizeof ns, "%s:%s", ev->node ? ev->node : "", ev->task_id ? ev->task_id : "");
    json_object_set_new(md, "langgraph_step", json_integer(ev->step));
    json_object_set_new(md, "langgraph_node", json_string(ev->node ? ev->node : ""));
    json_object_set_new(md, "langgraph_triggers", json_pack("[s+]", "branch:to:", ev->node ? ev->node : ""));
    json_object_set_new(md, "langgraph_path", json_pack("[s,s]", "__pregel_pull", ev->node ? ev->node : ""));
    json_object_set_new(md, "langgraph_checkpoint_ns", json_string(ns));
    json_object_set_new(md, "checkpoint_ns", json_string(ns));
    return md;
}

static void emit_task_events(struct ag_run_modes *m, const struct ag_graph_event *ev)
{
    const char *id = ev->task_id ? ev->task_id : json_string_value(json_object_get(ev->data, "id"));
    const char *name = json_string_value(json_object_get(ev->data, "name"));
    if (!id || !name || !strcmp(name, "__start__"))
        return;
    char step[32];
    snprintf(step, sizeof step, "graph:step:%d", ev->step);
    json_t *tags = json_pack("[s]", step);
    if (ev->kind == AG_GEV_TASK_START)
        emit_lc(m, "on_chain_start", name, id, tags, node_md(m, ev),
                json_pack("{s:O}", "input", json_object_get(ev->data, "input")));
    else
        emit_lc(m, "on_chain_end", name, id, tags, node_md(m, ev),
                json_pack("{s:O}", "output", json_object_get(ev->data, "result")));
}


void ag_run_modes_start(struct ag_run_modes *m, const json_t *input)
{
    if ((m->modes & AG_SM_EVENTS) && m->md)
        emit_lc(m, "on_chain_start", "LangGraph", m->run_id, json_array(), json_incref((json_t *)m->md),
                json_pack("{s:O}", "input", input ? input : json_null()));
}

void ag_run_modes_event(struct ag_run_modes *m, const struct ag_graph_event *ev)
{
    if (ev->ns && !m->subgraphs) return;
    m->ns = ev->ns;
    unsigned mo = m->modes;
    switch (ev->kind) {
    case AG_GEV_CHECKPOINT: emit_checkpoint(m, ev->data); break;
    case AG_GEV_VALUES:
        if (mo & AG_SM_VALUES)
            put(m, "values", ev->data);
        break;
    case AG_GEV_UPDATES:
        if (mo & AG_SM_UPDATES)
            put(m, "updates", ev->data);
        else if ((mo & AG_SM_VALUES) && json_object_get(ev->data, "__interrupt__"))
            put(m, "values", ev->data); /* v1 clients that asked only for values still see the interrupt */
        break;
    case AG_GEV_CUSTOM:
        if (mo & AG_SM_CUSTOM)
            put(m, "custom", ev->data);
        break;
    case AG_GEV_MESSAGE:
        if (mo & (AG_SM_MESSAGES | AG_SM_MESSAGES_TUPLE))
            emit_message(m, ev);
        if ((mo & AG_SM_EVENTS) && json_is_string(json_object_get(ev->data, "id")) &&
            json_object_get(ev->data, "tool_call_chunks"))
            emit_lc(m, "on_chat_model_stream", "FakeStreamingChatModel", json_string_value(json_object_get(ev->data, "id")),
                    json_array(), ev->meta ? json_incref(ev->meta) : json_object(),
                    json_pack("{s:O}", "chunk", ev->data));
        break;
    case AG_GEV_TASK_START:
    case AG_GEV_TASK_RESULT:
        if (mo & AG_SM_EVENTS)
            emit_task_events(m, ev);
        if (mo & AG_SM_TASKS)
            put(m, "tasks", ev->data);
        if (mo & AG_SM_DEBUG)
            emit_task_debug(m, ev);
        break;
    }
    m->ns = NULL;
}

void ag_run_modes_end(struct ag_run_modes *m, const char *status, const char *error, const json_t *output)
{
    if ((m->modes & AG_SM_EVENTS) && m->md)
        emit_lc(m, "on_chain_end", "LangGraph", m->run_id, json_array(), json_incref((json_t *)m->md),
                json_pack("{s:O}", "output", output ? output : json_object()));
    bool timeout = !strcmp(status, "timeout");
    if (timeout || !strcmp(status, "error")) {
        json_t *e = json_pack("{s:s,s:s}", "error", timeout ? "TimeoutError" : "GraphError", "message",
                              error ? error : "execution failed");
        put(m, "error", e);
        json_decref(e);
    }
}

void ag_run_modes_clear(struct ag_run_modes *m)
{
    json_decref(m->msg_acc);
    m->msg_acc = NULL;
}
