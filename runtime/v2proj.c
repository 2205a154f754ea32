#include "runtime/v2proj.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/jsontext.h"
#include "graph/engine.h"
#include "runtime/tlog.h"
#include "runtime/v2values.h"

/* A node task of the run. */
struct ptask {
    char *id, *node;
    json_t *ns;       /* ["node:id"], under its subgraph's namespace segments when in one */
    char *ns_text;    /* the same as JSON text */
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
    struct ag_buf out;    /* the payload being written (put_text) */
    json_t *prefix;       /* the namespace of the subgraph event being projected (NULL: the root's) */
    char *prefix_text;    /* the same as JSON text */
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

/* Payloads written as JSON text (no tree built to be encoded and freed): begin() empties p->out, the
 * writers below append to it, put_text() logs it, in t's namespace (NULL: the root). */
static struct ag_buf *begin(struct ag_v2proj *p)
{
    p->out.len = 0;
    return &p->out;
}

static void put_text_ns(struct ag_v2proj *p, const char *method, const json_t *ns, const char *ns_text)
{
    ag_tlog_append_text(p->thread_id, p->run_id, method, ns, ns_text, p->out.base, p->out.len, NULL, false);
}

static void put_text(struct ag_v2proj *p, const char *method, const struct ptask *t)
{
    put_text_ns(p, method, t ? t->ns : NULL, t ? t->ns_text : NULL);
}

/* ,"key":"s" (key: a literal that needs no escaping) */
static void w_str(struct ag_buf *b, const char *key, const char *s, size_t n)
{
    ag_buf_printf(b, ",\"%s\":", key);
    if (ag_json_append_str(b, s, n) < 0) ag_buf_puts(b, "\"\"");
}

/* ,"key":<v> (v: a JSON value, NULL written as null) */
static void w_json(struct ag_buf *b, const char *key, const json_t *v)
{
    ag_buf_printf(b, ",\"%s\":", key);
    if (!v || ag_json_append(b, v, JSON_COMPACT | JSON_ENCODE_ANY) < 0) ag_buf_puts(b, "null");
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
        ag_free(t->ns_text);
        ag_buf_free(&t->text);
    }
    ag_free(p->tasks);
    ag_buf_free(&p->out);
    ag_free(p->graph);
    json_decref(p->seen_interrupts);
    json_decref(p->seen_checkpoints);
    ag_free(p);
}

/* A lifecycle event: {"event", "graph_name"?, "error"?} in t's namespace (NULL: the root). */
static void lifecycle(struct ag_v2proj *p, const struct ptask *t, const char *event, const char *graph,
                      const json_t *error)
{
    struct ag_buf *b = begin(p);
    ag_buf_printf(b, "{\"event\":\"%s\"", event);
    if (graph) w_str(b, "graph_name", graph, strlen(graph));
    if (error) w_json(b, "error", error);
    ag_buf_puts(b, "}");
    put_text(p, "lifecycle", t);
}

void ag_v2proj_start(struct ag_v2proj *p)
{
    lifecycle(p, NULL, "running", p->graph, NULL);
}

/* --- tasks and their namespaces --- */

/* The task id (36 chars) of a namespace segment "<node>:<task id>", or NULL. */
static const char *segment_task(const char *seg, size_t len)
{
    return len > 37 && seg[len - 37] == ':' ? seg + len - 36 : NULL;
}

/* A subgraph's namespace ("a:id|b:id") as the protocol's array of segments. */
static json_t *ns_array(const char *ns)
{
    json_t *a = json_array();
    for (const char *p = ns; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        p = bar ? bar + 1 : p + n;
    }
    return a;
}

static struct ptask *task_find(struct ag_v2proj *p, const char *id, const char *node, const json_t *prefix, bool create)
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
    t->ns = prefix ? json_copy((json_t *)prefix) : json_array();
    json_array_append_new(t->ns, json_string(seg));
    t->ns_text = ag_json_text(t->ns, JSON_COMPACT, NULL);
    return t;
}

static void task_open(struct ag_v2proj *p, struct ptask *t)
{
    if (t->opened)
        return;
    t->opened = true;
    lifecycle(p, t, "started", t->node, NULL);
}

/* {"event":"content-block-finish","index":0,"content":{"type":"text","text":<t's text>}} */
static void text_block_finish(struct ag_v2proj *p, struct ptask *t)
{
    struct ag_buf *b = begin(p);
    ag_buf_puts(b, "{\"event\":\"content-block-finish\",\"index\":0,\"content\":{\"type\":\"text\"");
    w_str(b, "text", t->text.base ? t->text.base : "", t->text.len);
    ag_buf_puts(b, "}}");
    put_text(p, "messages", t);
}

static void message_end(struct ag_v2proj *p, struct ptask *t, const char *reason)
{
    ag_buf_printf(begin(p), "{\"event\":\"message-finish\",\"reason\":\"%s\"}", reason);
    put_text(p, "messages", t);
    ag_free(t->msg_id);
    t->msg_id = NULL;
    t->text.len = 0;
}

static void message_finish(struct ag_v2proj *p, struct ptask *t)
{
    if (!t->msg_id) return;
    text_block_finish(p, t);
    message_end(p, t, "stop");
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
    struct ptask *t = task_find(p, ev->task_id, ev->node, p->prefix, true);
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
        struct ag_buf *b = begin(p);
        ag_buf_printf(b, "{\"event\":\"message-start\",\"role\":\"%s\"", t->role);
        w_str(b, "id", t->msg_id, strlen(t->msg_id));
        ag_buf_puts(b, "}");
        put_text(p, "messages", t);
        ag_buf_puts(begin(p),
                    "{\"event\":\"content-block-start\",\"index\":0,\"content\":{\"type\":\"text\",\"text\":\"\"}}");
        put_text(p, "messages", t);
    }
    size_t before = t->text.len;
    content_text(json_object_get(m, "content"), &t->text);
    if (t->text.len > before) {
        struct ag_buf *b = begin(p);
        ag_buf_puts(b, "{\"event\":\"content-block-delta\",\"index\":0,\"delta\":{\"type\":\"text-delta\"");
        w_str(b, "text", t->text.base + before, t->text.len - before);
        ag_buf_puts(b, "}}");
        put_text(p, "messages", t);
    }
    if (chunk)
        return;
    /* A whole message: its text block, then its tool calls, then its end. */
    json_t *calls = json_object_get(m, "tool_calls");
    if (json_array_size(calls)) {
        text_block_finish(p, t);
        json_t *norm = ag_v2_normalize_tool_calls(calls);
        size_t i;
        json_t *c;
        json_array_foreach(norm, i, c) {
            struct ag_buf *b = begin(p);
            ag_buf_printf(
                b, "{\"event\":\"content-block-start\",\"index\":%zu,\"content\":{\"type\":\"tool_call_chunk\"", i + 1);
            w_json(b, "id", json_object_get(c, "id"));
            w_json(b, "name", json_object_get(c, "name"));
            ag_buf_puts(b, ",\"args\":\"\"}}");
            put_text(p, "messages", t);
            b = begin(p);
            ag_buf_printf(b, "{\"event\":\"content-block-finish\",\"index\":%zu", i + 1);
            w_json(b, "content", c);
            ag_buf_puts(b, "}");
            put_text(p, "messages", t);
        }
        json_decref(norm);
        message_end(p, t, "tool_calls");
        return;
    }
    message_finish(p, t);
}

static void on_task_result(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    struct ptask *t = task_find(p, ev->task_id, ev->node, p->prefix, false);
    if (t)
        message_finish(p, t);
    put(p, "tasks", p->prefix, json_incref(ev->data));
    if (!t || !t->opened || t->closed)
        return;
    t->closed = true;
    json_t *err = json_object_get(ev->data, "error");
    lifecycle(p, t, json_is_string(err) ? "failed" : "completed", t->node, json_is_string(err) ? err : NULL);
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
            struct ag_buf *b = begin(p);
            ag_buf_puts(b, "{\"node\":");
            if (ag_json_append_str(b, k, strlen(k)) < 0) ag_buf_puts(b, "\"\"");
            w_json(b, "values", vals);
            ag_buf_puts(b, "}");
            json_decref(vals);
            put_text_ns(p, "updates", p->prefix, p->prefix_text);
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
            put(p, "input.requested", p->prefix, d);
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
    struct ag_buf *b = begin(p);
    ag_buf_puts(b, "{\"id\":");
    if (ag_json_append_str(b, id, strlen(id)) < 0) ag_buf_puts(b, "\"\"");
    json_t *parent = json_object_get(cp, "parent_checkpoint_id");
    if (json_is_string(parent)) w_json(b, "parent_id", parent);
    json_t *step = json_object_get(cp, "step");
    if (!step) step = json_object_get(md, "step");
    if (step) w_json(b, "step", step);
    json_t *source = json_object_get(cp, "source");
    if (!source) source = json_object_get(md, "source");
    if (source) w_json(b, "source", source);
    ag_buf_puts(b, "}");
    put_text_ns(p, "checkpoints", p->prefix, p->prefix_text);
}

/* An event of a subgraph (ev->ns): in its namespace, after the `started` of the subgraph node's task. */
static void project_sub(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    p->prefix = ns_array(ev->ns);
    p->prefix_text = ag_json_text(p->prefix, JSON_COMPACT, NULL);
    const char *first = json_string_value(json_array_get(p->prefix, 0));
    const char *tid = first ? segment_task(first, strlen(first)) : NULL;
    struct ptask *owner = tid ? task_find(p, tid, NULL, NULL, false) : NULL;
    if (owner && !owner->closed) task_open(p, owner);
    if (ev->kind == AG_GEV_VALUES) {
        /* A subgraph's state is not a checkpoint of the thread: sent as it is. */
        if (!json_object_get(ev->data, "__interrupt__") || json_object_size(ev->data) > 1)
            put(p, "values", p->prefix, ag_v2_normalize_values(ev->data));
    } else {
        ag_v2proj_event(p, ev);
    }
    json_decref(p->prefix);
    ag_free(p->prefix_text);
    p->prefix = NULL;
    p->prefix_text = NULL;
}

void ag_v2proj_event(struct ag_v2proj *p, const struct ag_graph_event *ev)
{
    flush_values(p);
    if (ev->ns && !p->prefix) {
        project_sub(p, ev);
        return;
    }
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
    case AG_GEV_CUSTOM: {
        /* No "name": the engine has no named streams (custom:<name> matches data.name). */
        struct ag_buf *b = begin(p);
        ag_buf_puts(b, "{\"payload\":");
        if (ag_json_append(b, ev->data, JSON_COMPACT | JSON_ENCODE_ANY) < 0) ag_buf_puts(b, "null");
        ag_buf_puts(b, "}");
        put_text_ns(p, "custom", p->prefix, p->prefix_text);
        break;
    }
    case AG_GEV_MESSAGE: on_message(p, ev); break;
    case AG_GEV_TASK_START: {
        task_find(p, ev->task_id, ev->node, p->prefix, true);
        json_t *ref = state_ref(p, json_object_get(ev->data, "input")), *stored = NULL;
        if (ref) {
            stored = json_copy(ev->data);
            json_object_set_new(stored, "input", ref);
        }
        put_stored(p, "tasks", p->prefix, json_incref(ev->data), stored);
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
            lifecycle(p, t, "completed", t->node, NULL);
        }
    }
    bool ok = !strcmp(status, "success"), intr = !strcmp(status, "interrupted");
    struct ag_buf *b = begin(p);
    ag_buf_printf(b, "{\"event\":\"%s\"", ok ? "completed" : intr ? "interrupted" : "failed");
    if (p->graph) w_str(b, "graph_name", p->graph, strlen(p->graph));
    if (!ok && !intr) w_str(b, "error", error ? error : status, strlen(error ? error : status));
    ag_buf_puts(b, "}");
    return ag_tlog_append_text(p->thread_id, p->run_id, "lifecycle", NULL, NULL, b->base, b->len, NULL, true);
}
