#include "graph/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shard.h"
#include "core/timer.h"
#include "graph/engine_internal.h"
#include "graph/graph_internal.h"
#include "core/uuid.h"
#include "graph/ids.h"

/* --- the shard's work budget --- */

static void spend(struct ag_graph_run *r)
{
    if (r->h.shard) ag_shard_spend(r->h.shard, 1);
}

static bool should_yield(const struct ag_graph_run *r)
{
    return r->h.shard && ag_shard_should_yield(r->h.shard);
}

/* --- events --- */

void ag_graph__emit(struct ag_graph_run *r, enum ag_graph_ev_kind kind, int step, const struct ag_graph_task *t,
                    json_t *data, json_t *meta)
{
    if (r->h.on_event && r->phase != RP_ENDED) {
        spend(r);
        struct ag_graph_event ev = {.kind = kind,
                                    .step = step,
                                    .node = t ? t->name : NULL,
                                    .task_id = t ? t->id : NULL,
                                    .data = data,
                                    .meta = meta};
        r->in_cb++;
        r->h.on_event(r->h.ud, &ev);
        r->in_cb--;
    }
    json_decref(data);
    json_decref(meta);
}

void ag_graph__forward(struct ag_graph_run *r, const struct ag_graph_event *ev)
{
    if (!r->h.on_event || r->phase == RP_ENDED) return;
    r->in_cb++;
    r->h.on_event(r->h.ud, ev);
    r->in_cb--;
}

bool ag_graph__ended(const struct ag_graph_run *r)
{
    return r->phase == RP_ENDED;
}

void ag_graph__end_run(struct ag_graph_run *r, enum ag_graph_outcome outcome, json_t *interrupts, const char *error)
{
    if (ag_graph__ended(r)) {
        json_decref(interrupts);
        return;
    }
    r->phase = RP_ENDED;
    ag_timer_cancel(r->h.timers, &r->yield);
    for (size_t i = 0; i < r->ntasks; i++)
        ag_graph__task_stop_io(r->tasks[i]);
    if (!interrupts) interrupts = json_array();
    if (r->h.on_done) {
        r->in_cb++;
        r->h.on_done(r->h.ud, outcome, r->values, interrupts, error);
        r->in_cb--;
    }
    json_decref(interrupts);
}

static json_t *meta_copy(const json_t *m)
{
    return m ? json_copy((json_t *)m) : json_object();
}

/* What triggered a task, as LangGraph names it: the edge into its node, or a Send packet. */
static json_t *task_triggers(const struct ag_graph_task *t)
{
    return t->push < 0 ? json_pack("[s+]", "branch:to:", t->name) : json_pack("[s]", "__pregel_push");
}

/* A task's path: ["__pregel_pull", node] or ["__pregel_push", packet index]. */
static json_t *task_path(const struct ag_graph_task *t)
{
    return t->push < 0 ? json_pack("[s,s]", "__pregel_pull", t->name) : json_pack("[s,i]", "__pregel_push", t->push);
}

/* tags, name, the run metadata, then LangGraph's per-task keys: the order LangGraph's messages mode shows. */
static json_t *task_meta(struct ag_graph_run *r, const struct ag_graph_task *t, bool chunk)
{
    json_t *m = json_object();
    if (chunk) {
        json_object_set_new(m, "tags", json_array());
    } else {
        char tag[32];
        snprintf(tag, sizeof tag, "graph:step:%d", r->step + 1);
        json_object_set_new(m, "tags", json_pack("[s]", tag));
        json_object_set_new(m, "name", json_string(t->name));
    }
    json_object_update(m, r->metadata);
    json_t *ns = json_pack("s++", t->name, ":", t->id);
    json_t *extra = json_pack("{s:i,s:s,s:o,s:o,s:O,s:O}", "langgraph_step", r->step + 1, "langgraph_node", t->name,
                              "langgraph_triggers", task_triggers(t), "langgraph_path", task_path(t),
                              "langgraph_checkpoint_ns", ns, "checkpoint_ns", ns);
    json_decref(ns);
    json_object_update(m, extra);
    json_decref(extra);
    return m;
}

/* --- checkpoints --- */

json_t *ag_graph__task_json(const char *id, const char *name, const char *error, json_t *interrupts, json_t *result,
                            json_t *resume)
{
    json_t *t = json_pack("{s:s,s:s,s:o,s:o,s:[s,s],s:n,s:n,s:o}", "id", id, "name", name, "error",
                          error ? json_string(error) : json_null(), "interrupts",
                          interrupts ? json_incref(interrupts) : json_array(), "path", "__pregel_pull", name,
                          "checkpoint", "state", "result", result ? json_incref(result) : json_null());
    if (json_array_size(resume)) json_object_set(t, "resume", resume);
    return t;
}

json_t *ag_graph__push_task_json(const char *id, const char *name, int idx, const json_t *arg, const char *error,
                                 json_t *interrupts, json_t *result, json_t *resume)
{
    json_t *t = ag_graph__task_json(id, name, error, interrupts, result, resume);
    json_object_set_new(t, "path", json_pack("[s,i]", "__pregel_push", idx));
    json_object_set(t, "send_arg", arg ? (json_t *)arg : json_null());
    return t;
}

int ag_graph__task_push_index(const json_t *task)
{
    const json_t *path = json_object_get(task, "path");
    const char *kind = json_string_value(json_array_get(path, 0));
    if (!kind || strcmp(kind, "__pregel_push") || !json_is_integer(json_array_get(path, 1))) return -1;
    json_int_t i = json_integer_value(json_array_get(path, 1));
    return i >= 0 && i < 1000000 ? (int)i : -1;
}

void ag_graph__push_task_id(const char *ckpt, const char *name, int idx, char out[37])
{
    char key[256];
    snprintf(key, sizeof key, "__pregel_push:%d:%.200s", idx, name);
    ag_graph_make_task_id(ckpt, key, out);
}

/* next and tasks are stolen, values is not. */
json_t *ag_graph__checkpoint_json(const char *id, const char *parent, int step, const char *source, json_t *values,
                                  json_t *next, json_t *tasks, const json_t *metadata)
{
    json_t *meta = meta_copy(metadata);
    json_object_set_new(meta, "source", json_string(source));
    json_object_set_new(meta, "step", json_integer(step));
    json_object_set_new(meta, "parents", json_object());
    return json_pack("{s:s,s:o,s:i,s:s,s:O,s:o,s:o,s:o}", "checkpoint_id", id, "parent_checkpoint_id",
                     parent ? json_string(parent) : json_null(), "step", step, "source", source, "values", values,
                     "next", next, "tasks", tasks, "metadata", meta);
}

const char *ag_graph__ckpt_id(const json_t *ckpt)
{
    return json_string_value(json_object_get(ckpt, "checkpoint_id"));
}

/* The tasks of r->ckpt as they stand: results, errors and interrupts of the tasks that ended. */
static json_t *tasks_json(const struct ag_graph_run *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->ntasks; i++) {
        const struct ag_graph_task *t = r->tasks[i];
        json_t *result = NULL;
        if (t->st == TS_DONE)
            result = t->update ? json_incref(t->update) : json_object();
        else if (!t->node && r->input)
            result = json_incref(r->input);
        const char *error = t->st == TS_FAILED ? t->error : NULL;
        json_t *ints = t->st == TS_INTERRUPTED ? t->interrupts : NULL;
        json_t *e = t->push < 0
                        ? ag_graph__task_json(t->id, t->name, error, ints, result, t->resume)
                        : ag_graph__push_task_json(t->id, t->name, t->push, t->arg, error, ints, result, t->resume);
        /* A subgraph stopped at an interrupt: its checkpoint, for the resume to go on from (not shown by the API). */
        if (t->st == TS_INTERRUPTED && t->sub_ckpt) json_object_set(e, "subgraph_checkpoint", t->sub_ckpt);
        json_array_append_new(a, e);
        json_decref(result);
    }
    return a;
}

static json_t *task_names(const struct ag_graph_run *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->ntasks; i++)
        json_array_append_new(a, json_string(r->tasks[i]->name));
    return a;
}

/* --- tasks --- */

static void task_timer_cb(struct ag_timer *tm);

void ag_graph__task_free_ud(struct ag_graph_task *t)
{
    void *ud = t->ud;
    void (*fn)(void *) = t->ud_free;
    t->ud = NULL;
    t->ud_free = NULL;
    if (fn) fn(ud);
}

void ag_graph__task_stop_io(struct ag_graph_task *t)
{
    struct ag_graph_run *r = t->run;
    ag_timer_cancel(r->h.timers, &t->timer);
    if (t->store_op) {
        if (r->h.store_cancel) r->h.store_cancel(r->h.ud, t->store_op);
        t->store_op = NULL;
    }
}

static void task_free(struct ag_graph_task *t)
{
    ag_graph__task_stop_io(t);
    json_decref(t->store_result);
    ag_free(t->store_error);
    ag_graph__task_free_ud(t);
    json_decref(t->update);
    json_decref(t->interrupts);
    json_decref(t->resume);
    json_decref(t->streamed);
    json_decref(t->chunk_meta);
    json_decref(t->arg);
    json_decref(t->go);
    json_decref(t->sub_from);
    json_decref(t->carried_ints);
    json_decref(t->resume_new);
    json_decref(t->sub_ckpt);
    ag_free(t->error);
    ag_free(t);
}

void ag_graph__free_tasks(struct ag_graph_run *r)
{
    for (size_t i = 0; i < r->ntasks; i++)
        task_free(r->tasks[i]);
    ag_free(r->tasks);
    r->tasks = NULL;
    r->ntasks = 0;
}

const json_t *ag_graph__find_task(const json_t *tasks, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, name)) return t;
    }
    return NULL;
}

/* The entry of `carried` (a checkpoint's tasks) for node name with push index push (-1: pull), or NULL. */
static const json_t *carried_task(const json_t *carried, const char *name, int push)
{
    size_t i;
    json_t *t;
    json_array_foreach(carried, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, name) && ag_graph__task_push_index(t) == push) return t;
    }
    return NULL;
}

/* Schedules the tasks for names (sorted) and sends from checkpoint id ckpt: pull tasks first, then one
 * push task per packet. A task of `carried` (a checkpoint's tasks) for the same node and packet index keeps
 * its id and answers; one that finished there keeps its result and does not run again. resume_extra (task
 * id → array of answers to append) adds this run's answers. */
void ag_graph__schedule(struct ag_graph_run *r, const json_t *names, const json_t *sends, const char *ckpt,
                        const json_t *carried, const json_t *resume_extra)
{
    ag_graph__free_tasks(r);
    size_t npull = json_array_size(names), npush = json_array_size(sends);
    r->ntasks = npull + npush;
    r->tasks = ag_calloc(r->ntasks ? r->ntasks : 1, sizeof *r->tasks);
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *t = ag_calloc(1, sizeof *t);
        const json_t *packet = i < npull ? NULL : json_array_get(sends, i - npull);
        const char *name =
            packet ? json_string_value(json_object_get(packet, "node")) : json_string_value(json_array_get(names, i));
        t->run = r;
        t->push = packet ? (int)(i - npull) : -1;
        t->arg = packet ? json_incref(json_object_get(packet, "arg")) : NULL;
        t->node = ag_graph__node(r->g, name);
        t->name = t->node ? t->node->name : AG_GRAPH_START;
        ag_timer_init(&t->timer, task_timer_cb);
        const json_t *c = carried ? carried_task(carried, name, t->push) : NULL;
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (cid && strlen(cid) == 36)
            memcpy(t->id, cid, 37);
        else if (packet)
            ag_graph__push_task_id(ckpt, name, t->push, t->id);
        else
            ag_graph_make_task_id(ckpt, name, t->id);
        const json_t *res = json_object_get(c, "resume");
        t->resume = json_is_array(res) ? json_copy((json_t *)res) : json_array();
        const json_t *extra = json_object_get(resume_extra, t->id);
        if (extra) json_array_extend(t->resume, (json_t *)extra);
        if (t->node && t->node->sub) {
            const json_t *sc = json_object_get(c, "subgraph_checkpoint");
            t->sub_from = json_is_object(sc) ? json_incref((json_t *)sc) : NULL;
            const json_t *ints = json_object_get(c, "interrupts");
            t->carried_ints = json_array_size(ints) ? json_incref((json_t *)ints) : NULL;
            t->resume_new = extra ? json_incref((json_t *)extra) : NULL;
        }
        const json_t *result = json_object_get(c, "result");
        if (c && json_is_object(result) && !json_array_size(json_object_get(c, "interrupts")) &&
            json_is_null(json_object_get(c, "error")) && t->node) {
            t->st = TS_DONE;
            t->update = json_object_size(result) ? json_incref((json_t *)result) : NULL;
        }
        r->tasks[i] = t;
    }
}

/* Writes a checkpoint: a new id, r->ckpt as its parent, the current values, next = names, tasks scheduled
 * for them. Emits VALUES (unless source is "input") then CHECKPOINT. */
void ag_graph__write_checkpoint(struct ag_graph_run *r, const char *source, const json_t *names, const json_t *sends,
                                const json_t *carried, const json_t *resume_extra)
{
    int step = r->step + 1;
    char id[37];
    ag_graph_checkpoint_id(step, id);
    ag_graph__schedule(r, names, sends, id, carried, resume_extra);
    json_t *ck = ag_graph__checkpoint_json(id, r->ckpt ? ag_graph__ckpt_id(r->ckpt) : NULL, step, source, r->values,
                                           task_names(r), tasks_json(r), r->metadata);
    if (r->barriers) json_object_set(ck, "barriers", r->barriers);
    json_decref(r->ckpt);
    r->ckpt = ck;
    r->step = step;
    if (strcmp(source, "input")) ag_graph__emit(r, AG_GEV_VALUES, step, NULL, json_incref(r->values), NULL);
    ag_graph__emit(r, AG_GEV_CHECKPOINT, step, NULL, json_incref(ck), NULL);
}

/* The checkpoint again, its tasks showing how they ended (interrupts, errors, results). */
static void rewrite_checkpoint(struct ag_graph_run *r)
{
    json_t *ck = json_copy(r->ckpt);
    json_object_set_new(ck, "tasks", tasks_json(r));
    json_decref(r->ckpt);
    r->ckpt = ck;
    ag_graph__emit(r, AG_GEV_CHECKPOINT, r->step, NULL, json_incref(ck), NULL);
}

/* --- the step machine --- */

static bool names_match(const json_t *filter, const char *name)
{
    if (!filter || !name) return false;
    if (json_is_string(filter)) return true; /* "*" */
    size_t i;
    json_t *v;
    json_array_foreach(filter, i, v)
    {
        if (!strcmp(json_string_value(v), name)) return true;
    }
    return false;
}

static bool any_task_matches(const struct ag_graph_run *r, const json_t *filter)
{
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->node && names_match(filter, r->tasks[i]->name)) return true;
    return false;
}

static void settle(struct ag_graph_task *t, enum task_st st);

static void cancel_siblings(struct ag_graph_run *r, const struct ag_graph_task *except)
{
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *o = r->tasks[i];
        if (o == except || o->in_call) continue;
        if (o->st == TS_NEW || o->st == TS_SLEEPING || o->st == TS_PENDING) {
            ag_graph__task_stop_io(o);
            ag_graph__task_free_ud(o);
            o->st = TS_CANCELLED;
            r->npending--;
        }
    }
}

static void settle(struct ag_graph_task *t, enum task_st st)
{
    struct ag_graph_run *r = t->run;
    t->st = st;
    r->npending--;
    if (st == TS_FAILED) cancel_siblings(r, t);
    if (r->npending == 0 && r->phase == RP_WAITING) {
        r->phase = RP_STEP_DONE;
        if (!r->driving) ag_graph__drive(r);
    }
}

static void fail_task(struct ag_graph_task *t, char *msg)
{
    ag_free(t->error);
    t->error = msg;
    if (t->node)
        ag_graph__emit(
            t->run, AG_GEV_TASK_RESULT, t->run->step + 1, t,
            json_pack("{s:s,s:s,s:{},s:[],s:s}", "id", t->id, "name", t->name, "result", "interrupts", "error", msg),
            NULL);
    if (!ag_graph__ended(t->run)) settle(t, TS_FAILED);
}

static char *vfmt(const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return ag_strdup(buf);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = vfmt(f, ap);
    va_end(ap);
    return s;
}

/* The pause before the next attempt under policy p after `attempt` attempts, in ms. */
static uint64_t retry_pause_ms(const struct ag_graph_retry *p, int attempt)
{
    double ms = p->initial_ms;
    for (int i = 1; i < attempt && ms < p->max_ms; i++)
        ms *= p->backoff > 0 ? p->backoff : 1;
    if (ms > p->max_ms) ms = p->max_ms;
    uint64_t pause = (uint64_t)ms;
    if (p->jitter) pause += ag_uuid_random_u64() % 1001;
    return pause;
}

/* The task failed with msg (taken): under its node's retry policy, the node runs again from the start
 * after a pause (its execution state reset); else the task fails. */
static void fail_or_retry(struct ag_graph_task *t, char *msg)
{
    const struct ag_graph_retry *p = t->node ? &t->node->retry : NULL;
    struct ag_graph_run *r = t->run;
    if (!p || p->max_attempts <= 1 || t->attempt >= (int)p->max_attempts || ag_graph__ended(r) ||
        (p->retry_on && !p->retry_on(msg, p->retry_on_ud))) {
        fail_task(t, msg);
        return;
    }
    ag_free(msg);
    ag_graph__task_free_ud(t);
    memset(t->slots, 0, sizeof t->slots);
    json_decref(t->interrupts);
    t->interrupts = NULL;
    t->ninterrupts = 0;
    json_decref(t->go);
    t->go = NULL;
    t->attempt++;
    t->cont = t->node->fn;
    t->st = TS_SLEEPING;
    uint64_t now = r->h.now_ns(r->h.ud);
    ag_timer_arm(r->h.timers, &t->timer, now + ag_ms_to_ns(retry_pause_ms(p, t->attempt - 1)));
}

/* A task stopped at an interrupt: the tasks stream shows it with its interrupts. */
static void settle_interrupted(struct ag_graph_task *t)
{
    ag_graph__emit(t->run, AG_GEV_TASK_RESULT, t->run->step + 1, t,
                   json_pack("{s:s,s:s,s:{},s:O,s:n}", "id", t->id, "name", t->name, "result", "interrupts",
                             t->interrupts, "error"),
                   NULL);
    if (!ag_graph__ended(t->run)) settle(t, TS_INTERRUPTED);
}

void ag_graph__call_node(struct ag_graph_task *t, ag_graph_node_fn fn)
{
    struct ag_graph_run *r = t->run;
    bool was = r->driving;
    if (!t->attempt) t->attempt = 1;
    t->st = TS_RUNNING;
    t->in_call = true;
    r->driving = true;
    spend(r);
    if (r->h.shard) ag_shard_activity_begin(r->h.shard, "graph=%s node=%s run=%s", r->g->graph_id, t->name, r->run_id);
    fn(t);
    if (r->h.shard) ag_shard_activity_end(r->h.shard);
    r->driving = was;
    t->in_call = false;
    if (ag_graph__ended(r) || t->st != TS_RUNNING) return;
    if (t->interrupted)
        settle_interrupted(t);
    else
        fail_or_retry(t, fmt("Node '%s' returned without finishing its task", t->name));
}

static void task_timer_cb(struct ag_timer *tm)
{
    struct ag_graph_task *t = AG_CONTAINER_OF(tm, struct ag_graph_task, timer);
    struct ag_graph_run *r = t->run;
    if (ag_graph__ended(r) || t->st != TS_SLEEPING) return;
    ag_graph__call_node(t, t->cont);
    if (r->phase == RP_STEP_DONE && !r->driving) ag_graph__drive(r);
}

static void run_step(struct ag_graph_run *r)
{
    if (!r->ntasks) {
        ag_graph__end_run(r, AG_GRAPH_SUCCESS, NULL, NULL);
        return;
    }
    if (++r->steps > r->limit) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Recursion limit of %d reached without hitting a stop condition. You can increase the limit by "
                 "setting the \"recursionLimit\" config key.",
                 r->limit);
        ag_graph__end_run(r, AG_GRAPH_ERROR, NULL, msg);
        return;
    }
    if (!r->skip_ibefore && any_task_matches(r, r->ibefore)) {
        ag_graph__emit(r, AG_GEV_UPDATES, r->step, NULL, json_pack("{s:[]}", "__interrupt__"), NULL);
        ag_graph__end_run(r, AG_GRAPH_INTERRUPTED, NULL, NULL);
        return;
    }
    r->skip_ibefore = false;
    r->phase = RP_WAITING;
    r->npending = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->st == TS_NEW) r->npending++;
    int step = r->step + 1;
    for (size_t i = 0; i < r->ntasks && !ag_graph__ended(r); i++) {
        struct ag_graph_task *t = r->tasks[i];
        if (t->st != TS_NEW) continue;
        if (!t->node) {
            /* __start__: the input through the reducers' coercion; no events (LangGraph shows none). */
            char err[512];
            json_t *u = json_is_object(r->input) ? ag_graph__normalize(r->g, r->input, err, sizeof err) : NULL;
            if (!u)
                fail_task(t, ag_strdup(json_is_object(r->input) ? err : "Invalid input: expected an object"));
            else {
                t->update = u;
                settle(t, TS_DONE);
            }
            continue;
        }
        ag_graph__emit(r, AG_GEV_TASK_START, step, t,
                       json_pack("{s:s,s:s,s:O,s:o,s:[],s:O}", "id", t->id, "name", t->name, "input",
                                 t->push < 0 ? r->values : t->arg, "triggers", task_triggers(t), "interrupts",
                                 "metadata", r->metadata),
                       NULL);
        if (!ag_graph__ended(r)) ag_graph__call_node(t, t->node->fn);
    }
    if (!ag_graph__ended(r) && r->npending == 0) r->phase = RP_STEP_DONE;
}

static void complete_step(struct ag_graph_run *r)
{
    char err[512];
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->tasks[i]->st != TS_FAILED) continue;
        char *msg = ag_strdup(r->tasks[i]->error);
        rewrite_checkpoint(r);
        ag_graph__end_run(r, AG_GRAPH_ERROR, NULL, msg);
        ag_free(msg);
        return;
    }
    json_t *ints = json_array();
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->st == TS_INTERRUPTED) json_array_extend(ints, r->tasks[i]->interrupts);
    if (json_array_size(ints)) {
        rewrite_checkpoint(r);
        ag_graph__end_run(r, AG_GRAPH_INTERRUPTED, ints, NULL);
        return;
    }
    json_decref(ints);
    /* Updates in task order, which is node name order (LangGraph sorts writes by task path). */
    json_t **ups = ag_calloc(r->ntasks + 1, sizeof *ups);
    size_t n = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->update) ups[n++] = r->tasks[i]->update;
    json_t *nv = ag_graph__apply(r->g, r->values, ups, n, err, sizeof err);
    ag_free(ups);
    json_t *set = json_object(), *sends = json_array(), *names = NULL;
    if (nv) {
        /* Edges out of each task's node (packets in task order, then edge order), then its command's goto. */
        for (size_t i = 0; i < r->ntasks && nv; i++) {
            const struct ag_graph_task *t = r->tasks[i];
            if (ag_graph__successors(r->g, t->name, nv, r->config, set, sends, err, sizeof err) < 0 ||
                ag_graph__add_goto(r->g, t->go, "Command goto", set, sends, err, sizeof err) < 0) {
                json_decref(nv);
                nv = NULL;
            }
        }
    }
    if (!nv) {
        json_decref(set);
        json_decref(sends);
        ag_graph__end_run(r, AG_GRAPH_ERROR, NULL, err);
        return;
    }
    /* Wait-for-all edges: the nodes that ran this step count towards their targets. */
    if (r->g->njoins) {
        json_t *ran = task_names(r);
        json_t *barriers = ag_graph__barriers_step(r->g, r->barriers, ran, set);
        json_decref(ran);
        json_decref(r->barriers);
        r->barriers = barriers;
    }
    names = ag_graph__sorted_names(set);
    json_decref(set);
    json_decref(r->values);
    r->values = nv;
    json_decref(r->input);
    r->input = NULL;
    /* interrupt_after looks at the tasks that just ran, before they are replaced. */
    bool after = any_task_matches(r, r->iafter);
    ag_graph__write_checkpoint(r, "loop", names, sends, NULL, NULL);
    json_decref(names);
    json_decref(sends);
    if (ag_graph__ended(r)) return;
    if (after) {
        ag_graph__emit(r, AG_GEV_UPDATES, r->step, NULL, json_pack("{s:[]}", "__interrupt__"), NULL);
        ag_graph__end_run(r, AG_GRAPH_INTERRUPTED, NULL, NULL);
        return;
    }
    r->phase = RP_STEP;
}

/* The host holds the next superstep back (durability "sync"). */
static bool held(const struct ag_graph_run *r)
{
    return r->h.hold && r->h.hold(r->h.ud);
}

void ag_graph_run_proceed(struct ag_graph_run *r)
{
    if (!ag_graph__ended(r) && r->phase == RP_STEP && !r->driving)
        ag_timer_arm(r->h.timers, &r->yield, r->h.now_ns(r->h.ud));
}

void ag_graph__drive(struct ag_graph_run *r)
{
    bool was = r->driving;
    r->driving = true;
    while (r->phase == RP_STEP || r->phase == RP_STEP_DONE) {
        if (r->phase == RP_STEP) {
            if (held(r))
                break; /* ag_graph_run_proceed goes on */
            /* A run of many quick supersteps goes on in a later turn once this one's budget is spent. */
            if (should_yield(r)) {
                ag_timer_arm(r->h.timers, &r->yield, r->h.now_ns(r->h.ud));
                break;
            }
            spend(r);
            run_step(r);
        } else {
            /* Applying a step (reducers, checkpoint, values) can be the longest piece of a big run. */
            if (r->h.shard)
                ag_shard_activity_begin(r->h.shard, "graph=%s step=%d run=%s", r->g->graph_id, r->step + 1, r->run_id);
            complete_step(r);
            if (r->h.shard) ag_shard_activity_end(r->h.shard);
        }
    }
    r->driving = was;
}

void ag_graph__on_yield_timer(struct ag_timer *tm)
{
    struct ag_graph_run *r = AG_CONTAINER_OF(tm, struct ag_graph_run, yield);
    if (ag_graph__ended(r) || r->driving || held(r)) return;
    /* One superstep even when the budget is already spent again, so the run always moves on. */
    if (r->phase == RP_STEP) {
        r->driving = true;
        spend(r);
        run_step(r);
        r->driving = false;
    }
    ag_graph__drive(r);
}

/* --- the node API --- */

const json_t *ag_graph_task_state(const struct ag_graph_task *t)
{
    return t->push < 0 ? t->run->values : t->arg;
}

const json_t *ag_graph_task_config(const struct ag_graph_task *t)
{
    return t->run->config;
}

const json_t *ag_graph_task_context(const struct ag_graph_task *t)
{
    return t->run->context;
}

const json_t *ag_graph_task_metadata(const struct ag_graph_task *t)
{
    return t->run->metadata;
}

const json_t *ag_graph_task_configurable(const struct ag_graph_task *t, const char *key)
{
    return json_object_get(json_object_get(t->run->config, "configurable"), key);
}

const char *ag_graph_task_node(const struct ag_graph_task *t)
{
    return t->name;
}

int ag_graph_task_step(const struct ag_graph_task *t)
{
    return t->run->step + 1;
}

const char *ag_graph_task_id(const struct ag_graph_task *t)
{
    return t->id;
}

const char *ag_graph_task_run_id(const struct ag_graph_task *t)
{
    return t->run->run_id;
}

const char *ag_graph_task_thread_id(const struct ag_graph_task *t)
{
    return t->run->thread_id;
}

int ag_graph_task_attempt(const struct ag_graph_task *t)
{
    return t->attempt ? t->attempt : 1;
}

void *ag_graph_task_node_ud(const struct ag_graph_task *t)
{
    return t->node ? t->node->ud : NULL;
}

int64_t *ag_graph_task_slots(struct ag_graph_task *t)
{
    return t->slots;
}

void ag_graph_task_set_ud(struct ag_graph_task *t, void *ud, void (*free_fn)(void *ud))
{
    if (t->ud != ud) ag_graph__task_free_ud(t);
    t->ud = ud;
    t->ud_free = free_fn;
}

void *ag_graph_task_ud(const struct ag_graph_task *t)
{
    return t->ud;
}

/* Whether the task may still act: its run goes on and it has not ended. */
bool ag_graph__task_live(const struct ag_graph_task *t)
{
    return !ag_graph__ended(t->run) && (t->st == TS_RUNNING || t->st == TS_PENDING || t->st == TS_SLEEPING) &&
           !t->interrupted;
}

void ag_graph_task_custom(struct ag_graph_task *t, json_t *payload)
{
    if (!ag_graph__task_live(t)) {
        json_decref(payload);
        return;
    }
    ag_graph__emit(t->run, AG_GEV_CUSTOM, t->run->step + 1, t, payload, NULL);
}

void ag_graph_task_message_chunk(struct ag_graph_task *t, json_t *chunk)
{
    if (!ag_graph__task_live(t) || !json_is_object(chunk)) {
        json_decref(chunk);
        return;
    }
    const char *id = json_string_value(json_object_get(chunk, "id"));
    if (id) {
        if (!t->streamed) t->streamed = json_object();
        json_object_set_new(t->streamed, id, json_true());
    }
    if (!t->chunk_meta) t->chunk_meta = task_meta(t->run, t, true);
    ag_graph__emit(t->run, AG_GEV_MESSAGE, t->run->step + 1, t, chunk, json_incref(t->chunk_meta));
}

/* The messages of a task's update not streamed as chunks, as LangGraph's messages mode shows them when
 * the node ends. */
static void emit_end_messages(struct ag_graph_task *t)
{
    struct ag_graph_run *r = t->run;
    const char *k;
    json_t *v;
    json_object_foreach(t->update, k, v)
    {
        const struct ag_graph_channel *c = ag_graph__channel(r->g, k);
        if (!c || c->reducer != AG_GRAPH_MESSAGES) continue;
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            const char *type = json_string_value(json_object_get(m, "type"));
            if ((type && !strcmp(type, "remove")) || (id && json_object_get(t->streamed, id))) continue;
            ag_graph__emit(r, AG_GEV_MESSAGE, r->step + 1, t, json_incref(m), task_meta(r, t, false));
            if (ag_graph__ended(r)) return;
        }
    }
}

void ag_graph_task_finish(struct ag_graph_task *t, json_t *update)
{
    ag_graph_task_finish_command(t, update, NULL);
}

void ag_graph_task_finish_command(struct ag_graph_task *t, json_t *update, json_t *go)
{
    if (t->interrupted && !ag_graph__ended(t->run) && t->st != TS_INTERRUPTED) {
        json_decref(update);
        json_decref(go);
        settle_interrupted(t);
        return;
    }
    if (!ag_graph__task_live(t)) {
        json_decref(update);
        json_decref(go);
        return;
    }
    struct ag_graph_run *r = t->run;
    char err[512];
    if (go) {
        json_t *set = json_object(), *sends = json_array();
        int rc = ag_graph__add_goto(r->g, go, "Command goto", set, sends, err, sizeof err);
        json_decref(set);
        json_decref(sends);
        if (rc < 0) {
            json_decref(update);
            json_decref(go);
            fail_task(t, fmt("Node '%s': %s", t->name, err));
            return;
        }
        json_decref(t->go);
        t->go = go;
    }
    if (update && !json_is_object(update)) {
        json_decref(update);
        fail_task(t, fmt("Expected node '%s' to return an object (a state update)", t->name));
        return;
    }
    json_t *u = update ? ag_graph__normalize(r->g, update, err, sizeof err) : NULL;
    json_decref(update);
    if (update && !u) {
        fail_task(t, ag_strdup(err));
        return;
    }
    t->update = u;
    emit_end_messages(t);
    if (ag_graph__ended(r)) return;
    json_t *up = json_object();
    json_object_set(up, t->name, u ? u : json_null());
    ag_graph__emit(r, AG_GEV_UPDATES, r->step + 1, t, up, NULL);
    if (ag_graph__ended(r)) return;
    ag_graph__emit(r, AG_GEV_TASK_RESULT, r->step + 1, t,
                   json_pack("{s:s,s:s,s:o,s:[],s:n}", "id", t->id, "name", t->name, "result",
                             u ? json_incref(u) : json_object(), "interrupts", "error"),
                   NULL);
    if (ag_graph__ended(r)) return;
    settle(t, TS_DONE);
}

void ag_graph_task_finish_parent(struct ag_graph_task *t, json_t *update, json_t *go)
{
    struct ag_graph_run *r = t->run;
    if (!ag_graph__task_live(t) || t->interrupted) {
        json_decref(update);
        json_decref(go);
        return;
    }
    if (!r->h.on_parent_command) {
        json_decref(update);
        json_decref(go);
        fail_task(t, fmt("Node '%s' sent a command to its parent graph, but its graph runs as no subgraph", t->name));
        return;
    }
    r->in_cb++;
    r->h.on_parent_command(r->h.ud, update, go);
    r->in_cb--;
    ag_graph_run_cancel(r);
}

void ag_graph_task_fail(struct ag_graph_task *t, const char *f, ...)
{
    if (t->interrupted && !ag_graph__ended(t->run) && t->st != TS_INTERRUPTED) {
        settle_interrupted(t);
        return;
    }
    if (!ag_graph__task_live(t)) return;
    va_list ap;
    va_start(ap, f);
    char *msg = vfmt(f, ap);
    va_end(ap);
    fail_or_retry(t, msg);
}

void ag_graph_task_sleep(struct ag_graph_task *t, uint64_t ms, ag_graph_node_fn cont)
{
    if (!ag_graph__task_live(t)) return;
    struct ag_graph_run *r = t->run;
    t->cont = cont;
    t->st = TS_SLEEPING;
    uint64_t now = r->h.now_ns(r->h.ud);
    uint64_t d = ms > (UINT64_MAX - now) / AG_NS_PER_MS ? UINT64_MAX : now + ag_ms_to_ns(ms);
    ag_timer_arm(r->h.timers, &t->timer, d);
}

static bool behind(const struct ag_graph_run *r)
{
    return r->h.behind && r->h.behind(r->h.ud);
}

bool ag_graph_task_should_yield(const struct ag_graph_task *t)
{
    return should_yield(t->run) || behind(t->run);
}

void ag_graph_task_yield(struct ag_graph_task *t, ag_graph_node_fn cont)
{
    ag_graph_task_sleep(t, behind(t->run) ? AG_GRAPH_YIELD_BEHIND_MS : 0, cont);
}

void ag_graph_task_pending(struct ag_graph_task *t)
{
    if (ag_graph__task_live(t)) t->st = TS_PENDING;
}

json_t *ag_graph_task_interrupt(struct ag_graph_task *t, json_t *payload)
{
    if (!ag_graph__task_live(t)) {
        json_decref(payload);
        return NULL;
    }
    int idx = t->ninterrupts++;
    json_t *answer = json_array_get(t->resume, (size_t)idx);
    if (answer) {
        json_decref(payload);
        return answer;
    }
    char id[33];
    ag_graph_interrupt_id(t->id, idx, id);
    if (!t->interrupts) t->interrupts = json_array();
    json_t *intr = json_pack("{s:o,s:s}", "value", payload ? payload : json_null(), "id", id);
    json_array_append(t->interrupts, intr);
    t->interrupted = true;
    ag_graph__emit(t->run, AG_GEV_UPDATES, t->run->step + 1, t, json_pack("{s:[o]}", "__interrupt__", intr), NULL);
    return NULL;
}
