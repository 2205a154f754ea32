/* Subgraph nodes (graph/graph.h ag_graph_def_subgraph): the node's task runs the subgraph as a child run
 * of the engine on the same shard. The child's host passes its events up with the task's namespace
 * prefixed, and its end comes back to the task in a later loop turn (never from inside the child's
 * callbacks, which must not see their run freed). */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/timer.h"
#include "graph/engine.h"
#include "graph/engine_internal.h"
#include "graph/graph_internal.h"

/* A subgraph node's task state (its ud). */
struct sub {
    struct ag_graph_task *t;
    struct ag_graph_run *child;
    char ns[160];      /* "<node>:<task id>" */
    json_t *last_ckpt; /* the child's latest checkpoint */
    bool freeing;      /* the task is being freed: the child's end is not the task's any more */
    /* the child's end, until the task takes it */
    enum ag_graph_outcome outcome;
    json_t *values, *interrupts;
    char *error;
    bool to_parent; /* a node of the subgraph sent a command to this graph: */
    json_t *parent_update, *parent_go;
};

/* A child run freed once it is out of its callbacks (a timer of its own on the shard's heap). */
struct orphan {
    struct ag_timer tm;
    struct ag_graph_run *child;
};

static void on_orphan(struct ag_timer *tm)
{
    struct orphan *o = AG_CONTAINER_OF(tm, struct orphan, tm);
    ag_graph_run_free(o->child);
    ag_free(o);
}

static void sub_free(void *ud)
{
    struct sub *s = ud;
    s->freeing = true;
    if (s->child) {
        struct ag_graph_run *parent = s->t->run;
        if (s->child->in_cb) {
            /* Freed from inside one of its own callbacks (the host cancelled the run on a child's event). */
            ag_graph_run_cancel(s->child);
            struct orphan *o = ag_calloc(1, sizeof *o);
            o->child = s->child;
            ag_timer_init(&o->tm, on_orphan);
            ag_timer_arm(parent->h.timers, &o->tm, parent->h.now_ns(parent->h.ud));
        } else {
            ag_graph_run_free(s->child);
        }
    }
    json_decref(s->last_ckpt);
    json_decref(s->values);
    json_decref(s->interrupts);
    json_decref(s->parent_update);
    json_decref(s->parent_go);
    ag_free(s->error);
    ag_free(s);
}

/* --- the child's host: the parent's, with the namespace added --- */

static uint64_t sub_now(void *ud)
{
    struct sub *s = ud;
    struct ag_graph_run *r = s->t->run;
    return r->h.now_ns(r->h.ud);
}

static void sub_event(void *ud, const struct ag_graph_event *ev)
{
    struct sub *s = ud;
    if (s->freeing) return;
    if (ev->kind == AG_GEV_CHECKPOINT && !ev->ns) {
        json_decref(s->last_ckpt);
        s->last_ckpt = json_incref(ev->data);
    }
    char ns[512];
    snprintf(ns, sizeof ns, "%s%s%s", s->ns, ev->ns ? "|" : "", ev->ns ? ev->ns : "");
    struct ag_graph_event up = *ev;
    up.ns = ns;
    ag_graph__forward(s->t->run, &up);
}

static bool sub_behind(void *ud)
{
    struct sub *s = ud;
    struct ag_graph_run *r = s->t->run;
    return r->h.behind && r->h.behind(r->h.ud);
}

static void *sub_store_start(void *ud, const struct ag_graph_store_req *req, ag_graph_store_done_fn done, void *cookie,
                             char *err, size_t errlen)
{
    struct sub *s = ud;
    struct ag_graph_run *r = s->t->run;
    if (!r->h.store_start) {
        snprintf(err, errlen, "no store: this host runs graphs without one");
        return NULL;
    }
    return r->h.store_start(r->h.ud, req, done, cookie, err, errlen);
}

static void sub_parent_command(void *ud, json_t *update, json_t *go)
{
    struct sub *s = ud;
    s->to_parent = true;
    s->parent_update = update;
    s->parent_go = go;
}

static void sub_store_cancel(void *ud, void *handle)
{
    struct sub *s = ud;
    struct ag_graph_run *r = s->t->run;
    if (r->h.store_cancel) r->h.store_cancel(r->h.ud, handle);
}

/* The task takes the child's end, in a later loop turn than the child's on_done. */
static void sub_finish(struct ag_graph_task *t)
{
    struct sub *s = ag_graph_task_ud(t);
    struct ag_graph_run *r = t->run;
    if (s->to_parent) {
        /* Command(graph=PARENT): the node ends with it here, as if it had returned it. */
        json_t *update = s->parent_update, *go = s->parent_go;
        s->parent_update = s->parent_go = NULL;
        ag_graph_task_finish_command(t, update, go);
        return;
    }
    switch (s->outcome) {
    case AG_GRAPH_SUCCESS: {
        /* The subgraph's final values, for the keys that are channels here, are the node's update. */
        json_t *update = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(s->values, k, v)
        {
            if (ag_graph__channel(r->g, k)) json_object_set(update, k, v);
        }
        ag_graph_task_finish(t, update);
        return;
    }
    case AG_GRAPH_INTERRUPTED:
        /* The node stops at the subgraph's interrupts (their ids: a resume names them); its checkpoint
         * entry keeps the subgraph's checkpoint for the resume to go on from. */
        json_decref(t->interrupts);
        t->interrupts = json_copy(s->interrupts);
        json_decref(t->sub_ckpt);
        t->sub_ckpt = json_incref(s->last_ckpt);
        t->interrupted = true;
        ag_graph__emit(r, AG_GEV_UPDATES, r->step + 1, t, json_pack("{s:O}", "__interrupt__", s->interrupts), NULL);
        return; /* call_node settles it as interrupted */
    case AG_GRAPH_ERROR:
        ag_graph_task_fail(t, "%s", s->error ? s->error : "subgraph failed");
        return;
    case AG_GRAPH_CANCELLED:
        ag_graph_task_fail(t, "subgraph %s was cancelled", t->name);
        return;
    }
}

static void sub_done(void *ud, enum ag_graph_outcome outcome, const json_t *values, const json_t *interrupts,
                     const char *error)
{
    struct sub *s = ud;
    if (s->freeing) return;
    s->outcome = outcome;
    s->values = json_incref((json_t *)values);
    s->interrupts = interrupts ? json_incref((json_t *)interrupts) : json_array();
    s->error = error ? ag_strdup(error) : NULL;
    ag_graph_task_sleep(s->t, 0, sub_finish);
}

/* The child's command when the task goes on from the subgraph's checkpoint: this run's answers to the
 * interrupts it stopped at, by id. NULL: none. */
static json_t *child_command(const struct ag_graph_task *t)
{
    if (!t->resume_new || !t->carried_ints) return NULL;
    json_t *by_id = json_object();
    for (size_t k = 0; k < json_array_size(t->resume_new) && k < json_array_size(t->carried_ints); k++) {
        const char *id = json_string_value(json_object_get(json_array_get(t->carried_ints, k), "id"));
        if (id) json_object_set(by_id, id, json_array_get(t->resume_new, k));
    }
    return json_pack("{s:o}", "resume", by_id);
}

void ag_graph__run_subgraph(struct ag_graph_task *t)
{
    struct ag_graph_run *r = t->run;
    const json_t *input = ag_graph_task_state(t);
    if (!t->sub_from && !json_is_object(input)) {
        ag_graph_task_fail(t, "Subgraph %s needs an object as its input", t->name);
        return;
    }
    struct sub *s = ag_calloc(1, sizeof *s);
    s->t = t;
    snprintf(s->ns, sizeof s->ns, "%s:%s", t->name, t->id);
    ag_graph_task_set_ud(t, s, sub_free);
    ag_graph_task_pending(t);
    struct ag_graph_host h = {
        .ud = s,
        .timers = r->h.timers,
        .now_ns = sub_now,
        .on_event = sub_event,
        .on_done = sub_done,
        .shard = r->h.shard,
        .behind = sub_behind,
        .store_start = sub_store_start,
        .store_cancel = sub_store_cancel,
        .on_parent_command = sub_parent_command,
    };
    json_t *command = t->sub_from ? child_command(t) : NULL;
    struct ag_graph_run_params p = {
        .graph = t->node->sub,
        .thread_id = r->thread_id,
        .run_id = r->run_id,
        .config = r->config,
        .context = r->context,
        .metadata = r->metadata,
        .input = t->sub_from ? NULL : (json_t *)input,
        .command = command,
        .from = t->sub_from,
        .recursion_limit = r->limit,
    };
    char err[512];
    /* A child that never waits ends inside this call: its end is taken in a later turn (sub_done). */
    struct ag_graph_run *child = ag_graph_run_start(&h, &p, err, sizeof err);
    json_decref(command);
    if (!child) {
        ag_graph_task_fail(t, "Subgraph %s: %s", t->name, err);
        return;
    }
    s->child = child;
}
