#include "runtime/v2proj.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/buf.h"
#include "graph/engine.h"
#include "runtime/tlog.h"
#include "runtime/v2values.h"

/* A node task of the run. */
struct ptask {
    char *id, *node;
    json_t *ns;       /* ["node:id"] */
    bool opened;      /* lifecycle started was sent */
    bool closed;
    char *msg_id;     /* the message being streamed, or NULL */
    const char *role;
    struct ag_buf text; /* its text so far */
};

struct ag_v2proj {
    char thread_id[37], run_id[37];
    char *graph;
    struct ptask *tasks;
    size_t ntasks, cap;
    json_t *seen_interrupts; /* id → true */
    json_t *seen_checkpoints;
    json_t *latest;       /* the run's latest checkpoint as stored (NULL: states are stored whole) */
    json_t *values_raw;   /* a values event waiting for the checkpoint it belongs to: the state... */
    json_t *values_event; /* ...and its event data */
};

/* {"$agentd.state": versions} when state is the values of p's latest checkpoint, else NULL. */
static json_t *state_ref(const struct ag_v2proj *p, const json_t *state)
{
    if (!p->latest || !state || json_object_get(p->latest, "values") != state) return NULL;
    json_t *versions = json_object_get(p->latest, "channel_versions");
    if (!json_is_object(versions)) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(versions, k, v)
    {
        if (strpbrk(k, "{}\\\"")) /* a name the log's text form could not hold as it is read back */
            return NULL;
    }
    return json_pack("{s:O}", AG_TLOG_STATE_REF, versions);
}

static void put_stored(struct ag_v2proj *p, const char *method, const json_t *ns, json_t *data, json_t *stored)
{
    ag_tlog_append(p->thread_id, p->run_id, method, ns, data, stored, false);
    json_decref(data);
    json_decref(stored);
}

static void put(struct ag_v2proj *p, const char *method, const json_t *ns, json_t *data)
{
    put_stored(p, method, ns, data, NULL);
}

/* The values event held for its checkpoint goes now: named by versions when its state is the latest's. */
static void flush_values(struct ag_v2proj *p)
{
    if (!p->values_event) return;
    json_t *raw = p->values_raw, *data = p->values_event;
    p->values_raw = p->values_event = NULL;
    put_stored(p, "values", NULL, data, state_ref(p, raw));
    json_decref(raw);
}

void ag_v2proj_checkpoint(struct ag_v2proj *p, const json_t *stored)
{
    json_decref(p->latest);
    p->latest = json_incref((json_t *)stored);
    flush_values(p);
}

struct ag_v2proj *ag_v2proj_new(const char *thread_id, const char *run_id, const char *graph_name)
{
    struct ag_v2proj *p = ag_calloc(1, sizeof *p);
    snprintf(p->thread_id, sizeof p->thread_id, "%s", thread_id);
    snprintf(p->run_id, sizeof p->run_id, "%s", run_id);
    p->graph = graph_name ? ag_strdup(graph_name) : NULL;
    p->seen_interrupts = json_object();
    p->seen_checkpoints = json_object();
    return p;
}

void ag_v2proj_free(struct ag_v2proj *p)
{
    if (!p)
        return;
    json_decref(p->latest);
    json_decref(p->values_raw);
    json_decref(p->values_event);
    for (size_t i = 0; i < p->ntasks; i++) {
        struct ptask *t = &p->tasks[i];
        ag_free(t->id);
        ag_free(t->node);
        ag_free(t->msg_id);
        json_decref(t->ns);
        ag_buf_free(&t->text);
    }
    ag_free(p->tasks);
    ag_free(p->graph);
    json_decref(p->seen_interrupts);
    json_decref(p->seen_checkpoints);
    ag_free(p);
}

static json_t *lifecycle(const char *event, const char *graph)
{
    json_t *d = json_pack("{s:s}", "event", event);
    if (graph)
        json_object_set_new(d, "graph_name", json_string(graph));
    return d;
}

void ag_v2proj_start(struct ag_v2proj *p)
{
    put(p, "lifecycle", NULL, lifecycle("running", p->graph));
}

/* --- tasks and their namespaces --- */

static struct ptask *task_find(struct ag_v2proj *p, const char *id, const char *node, bool create)
{
    if (!id)
        return NULL;
    for (size_t i = 0; i < p->ntasks; i++)
        if (!strcmp(p->tasks[i].id, id))
            return &p->tasks[i];
    if (!create)
        return NULL;
    if (p->ntasks == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->tasks = ag_realloc(p->tasks, p->cap * sizeof *p->tasks);
    }
    struct ptask *t = &p->tasks[p->ntasks++];
    memset(t, 0, sizeof *t);
    t->id = ag_strdup(id);
    t->node = ag_strdup(node ? node : "");
    char seg[200];
    snprintf(seg, sizeof seg, "%s:%s", t->node, t->id);
    t->ns = json_pack("[s]", seg);
    return t;
}

static void task_open(struct ag_v2proj *p, struct ptask *t)
{
    if (t->opened)
        return;
    t->opened = true;
    put(p, "lifecycle", t->ns, lifecycle("started", t->node));
}

static void message_put(struct ag_v2proj *p, struct ptask *t, json_t *data)
{
    put(p, "messages", t->ns, data);
}

static void message_finish(struct ag_v2proj *p, struct ptask *t)
{
    if (!t->msg_id)
        return;
    json_t *block = json_pack("{s:s,s:s%}", "type", "text", "text", t->text.base ? t->text.base : "", t->text.len);
    message_put(p, t, json_pack("{s:s,s:i,s:o}", "event", "content-block-finish", "index", 0, "content", block));
    message_put(p, t, json_pack("{s:s,s:s}", "event", "message-finish", "reason", "stop"));
    ag_free(t->msg_id);
    t->msg_id = NULL;
    t->text.len = 0;
}

/* The text of a message's content: the string, or its text blocks joined. */
static void content_text(const json_t *content, struct ag_buf *out)
{
    if (json_is_string(content)) {
        ag_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        json_t *text = json_object_get(b, "text");
        if (json_is_string(b))
            ag_buf_append(out, json_string_value(b), json_string_length(b));
        else if (type && !strcmp(type, "text") && json_is_string(text))
            ag_buf_append(out, json_string_value(text), json_string_length(text));
    }
}

static void on_message(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    struct ptask *t = task_find(p, ev->task_id, ev->node, true);
    if (!t)
        return;
    const json_t *m = ev->data;
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *type = json_string_value(json_object_get(m, "type"));
    bool chunk = (type && strstr(type, "Chunk")) || json_object_get(m, "tool_call_chunks");
    task_open(p, t);
    if (t->msg_id && (!id || strcmp(t->msg_id, id)))
        message_finish(p, t);
    if (!t->msg_id) {
        t->msg_id = ag_strdup(id ? id : "");
        t->role = ag_v2_role_of(type);
        json_t *start = json_pack("{s:s,s:s,s:s}", "event", "message-start", "role", t->role, "id", t->msg_id);
        message_put(p, t, start);
        message_put(p, t,
                    json_pack("{s:s,s:i,s:{s:s,s:s}}", "event", "content-block-start", "index", 0, "content", "type",
                              "text", "text", ""));
    }
    struct ag_buf piece = {0};
    content_text(json_object_get(m, "content"), &piece);
    if (piece.len) {
        ag_buf_append(&t->text, piece.base, piece.len);
        message_put(p, t,
                    json_pack("{s:s,s:i,s:{s:s,s:s%}}", "event", "content-block-delta", "index", 0, "delta", "type",
                              "text-delta", "text", piece.base, piece.len));
    }
    ag_buf_free(&piece);
    if (chunk)
        return;
    /* A whole message: its text block, then its tool calls, then its end. */
    json_t *calls = json_object_get(m, "tool_calls");
    if (json_array_size(calls)) {
        json_t *block = json_pack("{s:s,s:s%}", "type", "text", "text", t->text.base ? t->text.base : "", t->text.len);
        message_put(p, t, json_pack("{s:s,s:i,s:o}", "event", "content-block-finish", "index", 0, "content", block));
        json_t *norm = ag_v2_normalize_tool_calls(calls);
        size_t i;
        json_t *c;
        json_array_foreach(norm, i, c) {
            int index = (int)i + 1;
            message_put(p, t,
                        json_pack("{s:s,s:i,s:{s:s,s:O,s:O,s:s}}", "event", "content-block-start", "index", index,
                                  "content", "type", "tool_call_chunk", "id", json_object_get(c, "id"), "name",
                                  json_object_get(c, "name"), "args", ""));
            message_put(p, t, json_pack("{s:s,s:i,s:O}", "event", "content-block-finish", "index", index, "content", c));
        }
        json_decref(norm);
        message_put(p, t, json_pack("{s:s,s:s}", "event", "message-finish", "reason", "tool_calls"));
        ag_free(t->msg_id);
        t->msg_id = NULL;
        t->text.len = 0;
        return;
    }
    message_finish(p, t);
}

static void on_task_result(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    struct ptask *t = task_find(p, ev->task_id, ev->node, false);
    if (t)
        message_finish(p, t);
    put(p, "tasks", NULL, json_incref(ev->data));
    if (!t || !t->opened || t->closed)
        return;
    t->closed = true;
    json_t *err = json_object_get(ev->data, "error");
    json_t *d = lifecycle(json_is_string(err) ? "failed" : "completed", t->node);
    if (json_is_string(err))
        json_object_set(d, "error", err);
    put(p, "lifecycle", t->ns, d);
}

static void on_updates(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    const char *k;
    json_t *v;
    json_object_foreach(ev->data, k, v) {
        if (strcmp(k, "__interrupt__")) {
            json_t *vals = json_is_object(v) ? ag_v2_normalize_values(v)
                           : json_is_null(v) ? json_object()
                                             : json_pack("{s:O}", "value", v);
            put(p, "updates", NULL, json_pack("{s:s,s:o}", "node", k, "values", vals));
            continue;
        }
        size_t i;
        json_t *intr;
        json_array_foreach(v, i, intr) {
            const char *id = json_string_value(json_object_get(intr, "id"));
            if (!id || json_object_get(p->seen_interrupts, id))
                continue;
            json_object_set_new(p->seen_interrupts, id, json_true());
            json_t *d = json_pack("{s:s}", "interrupt_id", id);
            json_t *value = json_object_get(intr, "value");
            if (value) {
                json_object_set(d, "payload", value);
                json_object_set(d, "value", value);
            }
            put(p, "input.requested", NULL, d);
        }
    }
}

static void on_checkpoint(struct ag_v2proj *p, const json_t *cp)
{
    const char *id = json_string_value(json_object_get(cp, "checkpoint_id"));
    if (!id || json_object_get(p->seen_checkpoints, id))
        return;
    json_object_set_new(p->seen_checkpoints, id, json_true());
    json_t *md = json_object_get(cp, "metadata");
    json_t *d = json_pack("{s:s}", "id", id);
    json_t *parent = json_object_get(cp, "parent_checkpoint_id");
    if (json_is_string(parent))
        json_object_set(d, "parent_id", parent);
    json_t *step = json_object_get(cp, "step");
    json_object_set(d, "step", step ? step : json_object_get(md, "step"));
    json_t *source = json_object_get(cp, "source");
    json_object_set(d, "source", source ? source : json_object_get(md, "source"));
    put(p, "checkpoints", NULL, d);
}

void ag_v2proj_event(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    flush_values(p);
    switch (ev->kind) {
    case AG_GEV_CHECKPOINT: on_checkpoint(p, ev->data); break;
    case AG_GEV_VALUES: {
        if (json_is_object(ev->data) && json_object_size(ev->data) == 1 && json_object_get(ev->data, "__interrupt__"))
            break; /* only an interrupt: input.requested says it */
        /* Held until the next event: the checkpoint of the same step names this state when it is written. */
        p->values_raw = json_incref(ev->data);
        p->values_event = ag_v2_normalize_values(ev->data);
        break;
    }
    case AG_GEV_UPDATES: on_updates(p, ev); break;
    case AG_GEV_CUSTOM: put(p, "custom", NULL, json_pack("{s:O}", "payload", ev->data)); break;
    case AG_GEV_MESSAGE: on_message(p, ev); break;
    case AG_GEV_TASK_START: {
        task_find(p, ev->task_id, ev->node, true);
        json_t *ref = state_ref(p, json_object_get(ev->data, "input")), *stored = NULL;
        if (ref) {
            stored = json_copy(ev->data);
            json_object_set_new(stored, "input", ref);
        }
        put_stored(p, "tasks", NULL, json_incref(ev->data), stored);
        break;
    }
    case AG_GEV_TASK_RESULT: on_task_result(p, ev); break;
    }
}

uint64_t ag_v2proj_end(struct ag_v2proj *p, const char *status, const char *error)
{
    flush_values(p);
    for (size_t i = p->ntasks; i-- > 0;) {
        struct ptask *t = &p->tasks[i];
        message_finish(p, t);
        if (t->opened && !t->closed) {
            t->closed = true;
            put(p, "lifecycle", t->ns, lifecycle("completed", t->node));
        }
    }
    bool ok = !strcmp(status, "success"), intr = !strcmp(status, "interrupted");
    json_t *d = lifecycle(ok ? "completed" : intr ? "interrupted" : "failed", p->graph);
    if (!ok && !intr)
        json_object_set_new(d, "error", json_string(error ? error : status));
    uint64_t seq = ag_tlog_append(p->thread_id, p->run_id, "lifecycle", NULL, d, NULL, true);
    json_decref(d);
    return seq;
}
