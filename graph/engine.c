#include "graph/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shard.h"
#include "core/timer.h"
#include "graph/graph_internal.h"
#include "graph/ids.h"

#define DEFAULT_RECURSION_LIMIT 25

enum task_st {
    TS_NEW,         /* not started */
    TS_RUNNING,     /* inside its node function */
    TS_SLEEPING,    /* timer armed */
    TS_PENDING,     /* the node finishes it from its own completion */
    TS_DONE,        /* finished (or carried over finished from the checkpoint) */
    TS_FAILED,      /* failed */
    TS_INTERRUPTED, /* stopped at an interrupt */
    TS_CANCELLED,   /* a sibling failed, or the run was cancelled */
};

struct ag_graph_task {
    struct ag_graph_run *run;
    const struct ag_graph_node *node; /* NULL for the __start__ task */
    const char *name;
    char id[37];
    enum task_st st;
    bool in_call;     /* its node function is on the stack */
    bool interrupted; /* interrupt() returned NULL in this execution */
    json_t *update;   /* normalized update once finished (NULL: none) */
    char *error;
    json_t *interrupts; /* [{id,value}] recorded in this execution */
    json_t *resume;     /* answers, by interrupt index */
    int ninterrupts;    /* interrupt() calls so far in this execution */
    json_t *streamed;   /* ids of messages streamed as chunks (an object used as a set) */
    json_t *chunk_meta; /* MESSAGE meta for chunks, built on first use */
    struct ag_timer timer;
    ag_graph_node_fn cont;
    void *ud;
    void (*ud_free)(void *);
    int64_t slots[AG_GRAPH_TASK_SLOTS];
};

enum run_phase {
    RP_STEP,      /* the tasks in r->tasks are to run next */
    RP_WAITING,   /* tasks are running */
    RP_STEP_DONE, /* all tasks of the step ended; apply them */
    RP_ENDED,
};

struct ag_graph_run {
    struct ag_graph_host h;
    const struct ag_graph_def *g;
    char *thread_id, *run_id;
    json_t *config, *context, *metadata;
    json_t *input;  /* the __start__ task's write, until applied */
    json_t *values; /* current state; never modified once shown (new object per step) */
    json_t *ckpt;   /* latest checkpoint emitted (or `from`); never modified */
    int step;       /* its step */
    struct ag_graph_task **tasks; /* the tasks scheduled from ckpt, in name order */
    size_t ntasks, npending;
    json_t *ibefore, *iafter; /* arrays of names, or the string "*" */
    bool skip_ibefore;        /* the first step of a continuing run goes past interrupt_before */
    int limit, steps;
    enum run_phase phase;
    struct ag_timer yield; /* the next superstep, in a later turn, once the turn's work budget is spent */
    bool driving; /* inside drive() or a node call: task ends only count down */
    int in_cb;    /* inside a host callback */
};

static void drive(struct ag_graph_run *r);

/* --- the shard's work budget --- */

static void spend(struct ag_graph_run *r)
{
    if (r->h.shard)
        ag_shard_spend(r->h.shard, 1);
}

static bool should_yield(const struct ag_graph_run *r)
{
    return r->h.shard && ag_shard_should_yield(r->h.shard);
}

/* --- events --- */

static void emit(struct ag_graph_run *r, enum ag_graph_ev_kind kind, int step, const struct ag_graph_task *t,
                 json_t *data, json_t *meta)
{
    if (r->h.on_event && r->phase != RP_ENDED) {
        spend(r);
        struct ag_graph_event ev = {kind, step, t ? t->name : NULL, t ? t->id : NULL, data, meta};
        r->in_cb++;
        r->h.on_event(r->h.ud, &ev);
        r->in_cb--;
    }
    json_decref(data);
    json_decref(meta);
}

static bool ended(const struct ag_graph_run *r)
{
    return r->phase == RP_ENDED;
}

static void end_run(struct ag_graph_run *r, enum ag_graph_outcome outcome, json_t *interrupts, const char *error)
{
    if (ended(r)) {
        json_decref(interrupts);
        return;
    }
    r->phase = RP_ENDED;
    ag_timer_cancel(r->h.timers, &r->yield);
    for (size_t i = 0; i < r->ntasks; i++)
        ag_timer_cancel(r->h.timers, &r->tasks[i]->timer);
    if (!interrupts)
        interrupts = json_array();
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
    json_t *extra = json_pack("{s:i,s:s,s:[s+],s:[s,s],s:O,s:O}", "langgraph_step", r->step + 1, "langgraph_node",
                              t->name, "langgraph_triggers", "branch:to:", t->name, "langgraph_path", "__pregel_pull",
                              t->name, "langgraph_checkpoint_ns", ns, "checkpoint_ns", ns);
    json_decref(ns);
    json_object_update(m, extra);
    json_decref(extra);
    return m;
}

/* --- checkpoints --- */

static json_t *task_json(const char *id, const char *name, const char *error, json_t *interrupts, json_t *result,
                         json_t *resume)
{
    json_t *t = json_pack("{s:s,s:s,s:o,s:o,s:[s,s],s:n,s:n,s:o}", "id", id, "name", name, "error",
                          error ? json_string(error) : json_null(), "interrupts",
                          interrupts ? json_incref(interrupts) : json_array(), "path", "__pregel_pull", name,
                          "checkpoint", "state", "result", result ? json_incref(result) : json_null());
    if (json_array_size(resume))
        json_object_set(t, "resume", resume);
    return t;
}

/* next and tasks are stolen, values is not. */
static json_t *checkpoint_json(const char *id, const char *parent, int step, const char *source, json_t *values,
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

static const char *ckpt_id(const json_t *ckpt)
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
        json_array_append_new(a, task_json(t->id, t->name, t->st == TS_FAILED ? t->error : NULL,
                                           t->st == TS_INTERRUPTED ? t->interrupts : NULL, result, t->resume));
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

static void task_free_ud(struct ag_graph_task *t)
{
    void *ud = t->ud;
    void (*fn)(void *) = t->ud_free;
    t->ud = NULL;
    t->ud_free = NULL;
    if (fn)
        fn(ud);
}

static void task_free(struct ag_graph_task *t)
{
    ag_timer_cancel(t->run->h.timers, &t->timer);
    task_free_ud(t);
    json_decref(t->update);
    json_decref(t->interrupts);
    json_decref(t->resume);
    json_decref(t->streamed);
    json_decref(t->chunk_meta);
    ag_free(t->error);
    ag_free(t);
}

static void free_tasks(struct ag_graph_run *r)
{
    for (size_t i = 0; i < r->ntasks; i++)
        task_free(r->tasks[i]);
    ag_free(r->tasks);
    r->tasks = NULL;
    r->ntasks = 0;
}

static const json_t *find_task(const json_t *tasks, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, name))
            return t;
    }
    return NULL;
}

/* Schedules the tasks for names (sorted) from checkpoint ckpt_id. A task of `carried` (a checkpoint's
 * tasks) with the same name keeps its id and answers; one that finished there keeps its result and does
 * not run again. resume_extra (name → array of answers to append) adds this run's answers. */
static void schedule(struct ag_graph_run *r, const json_t *names, const char *ckpt, const json_t *carried,
                     const json_t *resume_extra)
{
    free_tasks(r);
    r->ntasks = json_array_size(names);
    r->tasks = ag_calloc(r->ntasks ? r->ntasks : 1, sizeof *r->tasks);
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *t = ag_calloc(1, sizeof *t);
        const char *name = json_string_value(json_array_get(names, i));
        t->run = r;
        t->node = ag_graph__node(r->g, name);
        t->name = t->node ? t->node->name : AG_GRAPH_START;
        ag_timer_init(&t->timer, task_timer_cb);
        const json_t *c = carried ? find_task(carried, name) : NULL;
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (cid && strlen(cid) == 36)
            memcpy(t->id, cid, 37);
        else
            ag_graph_make_task_id(ckpt, name, t->id);
        const json_t *res = json_object_get(c, "resume");
        t->resume = json_is_array(res) ? json_copy((json_t *)res) : json_array();
        const json_t *extra = json_object_get(resume_extra, name);
        if (extra)
            json_array_extend(t->resume, (json_t *)extra);
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
static void write_checkpoint(struct ag_graph_run *r, const char *source, const json_t *names, const json_t *carried,
                             const json_t *resume_extra)
{
    int step = r->step + 1;
    char id[37];
    ag_graph_checkpoint_id(step, id);
    schedule(r, names, id, carried, resume_extra);
    json_t *ck = checkpoint_json(id, r->ckpt ? ckpt_id(r->ckpt) : NULL, step, source, r->values, task_names(r),
                                 tasks_json(r), r->metadata);
    json_decref(r->ckpt);
    r->ckpt = ck;
    r->step = step;
    if (strcmp(source, "input"))
        emit(r, AG_GEV_VALUES, step, NULL, json_incref(r->values), NULL);
    emit(r, AG_GEV_CHECKPOINT, step, NULL, json_incref(ck), NULL);
}

/* The checkpoint again, its tasks showing how they ended (interrupts, errors, results). */
static void rewrite_checkpoint(struct ag_graph_run *r)
{
    json_t *ck = json_copy(r->ckpt);
    json_object_set_new(ck, "tasks", tasks_json(r));
    json_decref(r->ckpt);
    r->ckpt = ck;
    emit(r, AG_GEV_CHECKPOINT, r->step, NULL, json_incref(ck), NULL);
}

/* --- the step machine --- */

static bool names_match(const json_t *filter, const char *name)
{
    if (!filter || !name)
        return false;
    if (json_is_string(filter))
        return true; /* "*" */
    size_t i;
    json_t *v;
    json_array_foreach(filter, i, v)
    {
        if (!strcmp(json_string_value(v), name))
            return true;
    }
    return false;
}

static bool any_task_matches(const struct ag_graph_run *r, const json_t *filter)
{
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->node && names_match(filter, r->tasks[i]->name))
            return true;
    return false;
}

static void settle(struct ag_graph_task *t, enum task_st st);

static void cancel_siblings(struct ag_graph_run *r, const struct ag_graph_task *except)
{
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *o = r->tasks[i];
        if (o == except || o->in_call)
            continue;
        if (o->st == TS_NEW || o->st == TS_SLEEPING || o->st == TS_PENDING) {
            ag_timer_cancel(r->h.timers, &o->timer);
            task_free_ud(o);
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
    if (st == TS_FAILED)
        cancel_siblings(r, t);
    if (r->npending == 0 && r->phase == RP_WAITING) {
        r->phase = RP_STEP_DONE;
        if (!r->driving)
            drive(r);
    }
}

static void fail_task(struct ag_graph_task *t, char *msg)
{
    ag_free(t->error);
    t->error = msg;
    if (t->node)
        emit(t->run, AG_GEV_TASK_RESULT, t->run->step + 1, t,
             json_pack("{s:s,s:s,s:{},s:[],s:s}", "id", t->id, "name", t->name, "result", "interrupts", "error", msg),
             NULL);
    if (!ended(t->run))
        settle(t, TS_FAILED);
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

/* A task stopped at an interrupt: the tasks stream shows it with its interrupts. */
static void settle_interrupted(struct ag_graph_task *t)
{
    emit(t->run, AG_GEV_TASK_RESULT, t->run->step + 1, t,
         json_pack("{s:s,s:s,s:{},s:O,s:n}", "id", t->id, "name", t->name, "result", "interrupts", t->interrupts,
                   "error"),
         NULL);
    if (!ended(t->run))
        settle(t, TS_INTERRUPTED);
}

static void call_node(struct ag_graph_task *t, ag_graph_node_fn fn)
{
    struct ag_graph_run *r = t->run;
    bool was = r->driving;
    t->st = TS_RUNNING;
    t->in_call = true;
    r->driving = true;
    spend(r);
    if (r->h.shard)
        ag_shard_activity_begin(r->h.shard, "graph=%s node=%s run=%s", r->g->graph_id, t->name, r->run_id);
    fn(t);
    if (r->h.shard)
        ag_shard_activity_end(r->h.shard);
    r->driving = was;
    t->in_call = false;
    if (ended(r) || t->st != TS_RUNNING)
        return;
    if (t->interrupted)
        settle_interrupted(t);
    else
        fail_task(t, fmt("Node '%s' returned without finishing its task", t->name));
}

static void task_timer_cb(struct ag_timer *tm)
{
    struct ag_graph_task *t = AG_CONTAINER_OF(tm, struct ag_graph_task, timer);
    struct ag_graph_run *r = t->run;
    if (ended(r) || t->st != TS_SLEEPING)
        return;
    call_node(t, t->cont);
    if (r->phase == RP_STEP_DONE && !r->driving)
        drive(r);
}

static void run_step(struct ag_graph_run *r)
{
    if (!r->ntasks) {
        end_run(r, AG_GRAPH_SUCCESS, NULL, NULL);
        return;
    }
    if (++r->steps > r->limit) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Recursion limit of %d reached without hitting a stop condition. You can increase the limit by "
                 "setting the \"recursionLimit\" config key.",
                 r->limit);
        end_run(r, AG_GRAPH_ERROR, NULL, msg);
        return;
    }
    if (!r->skip_ibefore && any_task_matches(r, r->ibefore)) {
        emit(r, AG_GEV_UPDATES, r->step, NULL, json_pack("{s:[]}", "__interrupt__"), NULL);
        end_run(r, AG_GRAPH_INTERRUPTED, NULL, NULL);
        return;
    }
    r->skip_ibefore = false;
    r->phase = RP_WAITING;
    r->npending = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->st == TS_NEW)
            r->npending++;
    int step = r->step + 1;
    for (size_t i = 0; i < r->ntasks && !ended(r); i++) {
        struct ag_graph_task *t = r->tasks[i];
        if (t->st != TS_NEW)
            continue;
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
        emit(r, AG_GEV_TASK_START, step, t,
             json_pack("{s:s,s:s,s:O,s:[s+],s:[],s:O}", "id", t->id, "name", t->name, "input", r->values, "triggers",
                       "branch:to:", t->name, "interrupts", "metadata", r->metadata),
             NULL);
        if (!ended(r))
            call_node(t, t->node->fn);
    }
    if (!ended(r) && r->npending == 0)
        r->phase = RP_STEP_DONE;
}

static void complete_step(struct ag_graph_run *r)
{
    char err[512];
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->tasks[i]->st != TS_FAILED)
            continue;
        char *msg = ag_strdup(r->tasks[i]->error);
        rewrite_checkpoint(r);
        end_run(r, AG_GRAPH_ERROR, NULL, msg);
        ag_free(msg);
        return;
    }
    json_t *ints = json_array();
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->st == TS_INTERRUPTED)
            json_array_extend(ints, r->tasks[i]->interrupts);
    if (json_array_size(ints)) {
        rewrite_checkpoint(r);
        end_run(r, AG_GRAPH_INTERRUPTED, ints, NULL);
        return;
    }
    json_decref(ints);
    /* Updates in task order, which is node name order (LangGraph sorts writes by task path). */
    json_t **ups = ag_calloc(r->ntasks + 1, sizeof *ups);
    size_t n = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->update)
            ups[n++] = r->tasks[i]->update;
    json_t *nv = ag_graph__apply(r->g, r->values, ups, n, err, sizeof err);
    ag_free(ups);
    json_t *set = json_object(), *names = NULL;
    if (nv) {
        for (size_t i = 0; i < r->ntasks && nv; i++)
            if (ag_graph__successors(r->g, r->tasks[i]->name, nv, r->config, set, err, sizeof err) < 0) {
                json_decref(nv);
                nv = NULL;
            }
    }
    if (!nv) {
        json_decref(set);
        end_run(r, AG_GRAPH_ERROR, NULL, err);
        return;
    }
    names = ag_graph__sorted_names(set);
    json_decref(set);
    json_decref(r->values);
    r->values = nv;
    json_decref(r->input);
    r->input = NULL;
    /* interrupt_after looks at the tasks that just ran, before they are replaced. */
    bool after = any_task_matches(r, r->iafter);
    write_checkpoint(r, "loop", names, NULL, NULL);
    json_decref(names);
    if (ended(r))
        return;
    if (after) {
        emit(r, AG_GEV_UPDATES, r->step, NULL, json_pack("{s:[]}", "__interrupt__"), NULL);
        end_run(r, AG_GRAPH_INTERRUPTED, NULL, NULL);
        return;
    }
    r->phase = RP_STEP;
}

static void drive(struct ag_graph_run *r)
{
    bool was = r->driving;
    r->driving = true;
    while (r->phase == RP_STEP || r->phase == RP_STEP_DONE) {
        if (r->phase == RP_STEP) {
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
                ag_shard_activity_begin(r->h.shard, "graph=%s step=%d run=%s", r->g->graph_id, r->step + 1,
                                        r->run_id);
            complete_step(r);
            if (r->h.shard)
                ag_shard_activity_end(r->h.shard);
        }
    }
    r->driving = was;
}

static void on_yield_timer(struct ag_timer *tm)
{
    struct ag_graph_run *r = AG_CONTAINER_OF(tm, struct ag_graph_run, yield);
    if (ended(r) || r->driving)
        return;
    /* One superstep even when the budget is already spent again, so the run always moves on. */
    if (r->phase == RP_STEP) {
        r->driving = true;
        spend(r);
        run_step(r);
        r->driving = false;
    }
    drive(r);
}

/* --- the node API --- */

const json_t *ag_graph_task_state(const struct ag_graph_task *t)
{
    return t->run->values;
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
    if (t->ud != ud)
        task_free_ud(t);
    t->ud = ud;
    t->ud_free = free_fn;
}

void *ag_graph_task_ud(const struct ag_graph_task *t)
{
    return t->ud;
}

/* Whether the task may still act: its run goes on and it has not ended. */
static bool live(const struct ag_graph_task *t)
{
    return !ended(t->run) && (t->st == TS_RUNNING || t->st == TS_PENDING || t->st == TS_SLEEPING) && !t->interrupted;
}

void ag_graph_task_custom(struct ag_graph_task *t, json_t *payload)
{
    if (!live(t)) {
        json_decref(payload);
        return;
    }
    emit(t->run, AG_GEV_CUSTOM, t->run->step + 1, t, payload, NULL);
}

void ag_graph_task_message_chunk(struct ag_graph_task *t, json_t *chunk)
{
    if (!live(t) || !json_is_object(chunk)) {
        json_decref(chunk);
        return;
    }
    const char *id = json_string_value(json_object_get(chunk, "id"));
    if (id) {
        if (!t->streamed)
            t->streamed = json_object();
        json_object_set_new(t->streamed, id, json_true());
    }
    if (!t->chunk_meta)
        t->chunk_meta = task_meta(t->run, t, true);
    emit(t->run, AG_GEV_MESSAGE, t->run->step + 1, t, chunk, json_incref(t->chunk_meta));
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
        if (!c || c->reducer != AG_GRAPH_MESSAGES)
            continue;
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            const char *type = json_string_value(json_object_get(m, "type"));
            if ((type && !strcmp(type, "remove")) || (id && json_object_get(t->streamed, id)))
                continue;
            emit(r, AG_GEV_MESSAGE, r->step + 1, t, json_incref(m), task_meta(r, t, false));
            if (ended(r))
                return;
        }
    }
}

void ag_graph_task_finish(struct ag_graph_task *t, json_t *update)
{
    if (t->interrupted && !ended(t->run) && t->st != TS_INTERRUPTED) {
        json_decref(update);
        settle_interrupted(t);
        return;
    }
    if (!live(t)) {
        json_decref(update);
        return;
    }
    struct ag_graph_run *r = t->run;
    char err[512];
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
    if (ended(r))
        return;
    json_t *up = json_object();
    json_object_set(up, t->name, u ? u : json_null());
    emit(r, AG_GEV_UPDATES, r->step + 1, t, up, NULL);
    if (ended(r))
        return;
    emit(r, AG_GEV_TASK_RESULT, r->step + 1, t,
         json_pack("{s:s,s:s,s:o,s:[],s:n}", "id", t->id, "name", t->name, "result", u ? json_incref(u) : json_object(),
                   "interrupts", "error"),
         NULL);
    if (ended(r))
        return;
    settle(t, TS_DONE);
}

void ag_graph_task_fail(struct ag_graph_task *t, const char *f, ...)
{
    if (t->interrupted && !ended(t->run) && t->st != TS_INTERRUPTED) {
        settle_interrupted(t);
        return;
    }
    if (!live(t))
        return;
    va_list ap;
    va_start(ap, f);
    char *msg = vfmt(f, ap);
    va_end(ap);
    fail_task(t, msg);
}

void ag_graph_task_sleep(struct ag_graph_task *t, uint64_t ms, ag_graph_node_fn cont)
{
    if (!live(t))
        return;
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
    if (live(t))
        t->st = TS_PENDING;
}

json_t *ag_graph_task_interrupt(struct ag_graph_task *t, json_t *payload)
{
    if (!live(t)) {
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
    if (!t->interrupts)
        t->interrupts = json_array();
    json_t *intr = json_pack("{s:o,s:s}", "value", payload ? payload : json_null(), "id", id);
    json_array_append(t->interrupts, intr);
    t->interrupted = true;
    emit(t->run, AG_GEV_UPDATES, t->run->step + 1, t, json_pack("{s:[o]}", "__interrupt__", intr), NULL);
    return NULL;
}

/* --- starting --- */

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static int check_filter(const struct ag_graph_def *g, const json_t *f, const char *what, char *err, size_t errlen)
{
    if (!f || json_is_null(f))
        return 0;
    if (json_is_string(f)) {
        if (!strcmp(json_string_value(f), "*"))
            return 0;
        snprintf(err, errlen, "%s must be \"*\" or a list of node names", what);
        return -1;
    }
    if (!json_is_array(f)) {
        snprintf(err, errlen, "%s must be \"*\" or a list of node names", what);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(f, i, v)
    {
        if (!json_is_string(v) || !ag_graph__node(g, json_string_value(v))) {
            snprintf(err, errlen, "%s names an unknown node: %.100s", what,
                     json_is_string(v) ? json_string_value(v) : "(not a string)");
            return -1;
        }
    }
    return 0;
}

/* command.update as a list of updates (an object, or [key, value] pairs, each its own write). */
static json_t *command_updates(const json_t *u, char *err, size_t errlen)
{
    json_t *out = json_array();
    if (json_is_object(u)) {
        json_array_append(out, (json_t *)u);
        return out;
    }
    if (json_is_array(u)) {
        size_t i;
        json_t *p;
        json_array_foreach(u, i, p)
        {
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_string(json_array_get(p, 0))) {
                snprintf(err, errlen, "command.update must be an object or a list of [key, value] pairs");
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, json_pack("{s:O}", json_string_value(json_array_get(p, 0)),
                                                 json_array_get(p, 1)));
        }
        return out;
    }
    snprintf(err, errlen, "command.update must be an object or a list of [key, value] pairs");
    json_decref(out);
    return NULL;
}

/* Maps command.resume onto the pending interrupts of from's tasks: name → [answer]. */
static json_t *map_resume(const json_t *from, const json_t *resume, char *err, size_t errlen)
{
    const json_t *tasks = json_object_get(from, "tasks"), *next = json_object_get(from, "next");
    json_t *pending = json_object(); /* interrupt id → task name */
    size_t i, j;
    json_t *t, *intr;
    json_array_foreach(tasks, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        bool in_next = false;
        json_t *nv;
        size_t k;
        json_array_foreach(next, k, nv)
        {
            in_next |= name && json_is_string(nv) && !strcmp(json_string_value(nv), name);
        }
        if (!in_next)
            continue;
        json_array_foreach(json_object_get(t, "interrupts"), j, intr)
        {
            const char *id = json_string_value(json_object_get(intr, "id"));
            if (id)
                json_object_set_new(pending, id, json_string(name));
        }
    }
    json_t *out = NULL;
    if (!json_object_size(pending)) {
        snprintf(err, errlen, "Cannot resume: the thread has no pending interrupt");
        goto done;
    }
    bool by_id = json_is_object(resume) && json_object_size(resume) > 0;
    const char *k;
    json_t *v;
    if (by_id) {
        json_object_foreach((json_t *)resume, k, v)
        {
            by_id &= is_hex32(k);
        }
    }
    out = json_object();
    if (by_id) {
        json_object_foreach((json_t *)resume, k, v)
        {
            const char *name = json_string_value(json_object_get(pending, k));
            if (!name) {
                snprintf(err, errlen, "Cannot resume: no pending interrupt has id %s", k);
                json_decref(out);
                out = NULL;
                goto done;
            }
            json_t *a = json_object_get(out, name);
            if (!a)
                json_object_set_new(out, name, a = json_array());
            json_array_append(a, v);
        }
    } else if (json_object_size(pending) > 1) {
        snprintf(err, errlen,
                 "Cannot resume with one value: several interrupts are pending; resume with an object mapping "
                 "interrupt ids to values");
        json_decref(out);
        out = NULL;
    } else {
        void *it = json_object_iter(pending);
        json_object_set_new(out, json_string_value(json_object_iter_value(it)), json_pack("[O]", resume));
    }
done:
    json_decref(pending);
    return out;
}

const json_t *ag_graph_run_values(const struct ag_graph_run *r)
{
    return r->values;
}

/* Where a run without input starts: from's pending next plus goto, sorted; "__start__" stays when from
 * is an input checkpoint whose input was never applied. */
static json_t *continue_names(const struct ag_graph_def *g, const json_t *from, const json_t *goto_names)
{
    json_t *set = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(from, "next"), i, v)
    {
        const char *n = json_string_value(v);
        if (n && (ag_graph__node(g, n) || !strcmp(n, AG_GRAPH_START)))
            json_object_set_new(set, n, json_true());
    }
    json_array_foreach(goto_names, i, v)
    {
        if (strcmp(json_string_value(v), AG_GRAPH_END))
            json_object_set_new(set, json_string_value(v), json_true());
    }
    json_t *names = ag_graph__sorted_names(set);
    json_decref(set);
    return names;
}

/* base with command.update applied (a new reference), or NULL with err. */
static json_t *apply_command_update(const struct ag_graph_def *g, const json_t *base, const json_t *cupdate, char *err,
                                    size_t errlen)
{
    json_t *list = command_updates(cupdate, err, errlen);
    if (!list)
        return NULL;
    size_t n = json_array_size(list), ok = 0;
    json_t **ups = ag_calloc(n + 1, sizeof *ups);
    while (ok < n && (ups[ok] = ag_graph__normalize(g, json_array_get(list, ok), err, errlen)))
        ok++;
    json_t *nv = ok == n ? ag_graph__apply(g, base, ups, n, err, errlen) : NULL;
    for (size_t i = 0; i < ok; i++)
        json_decref(ups[i]);
    ag_free(ups);
    json_decref(list);
    return nv;
}

struct ag_graph_run *ag_graph_run_start(const struct ag_graph_host *h, const struct ag_graph_run_params *p, char *err,
                                        size_t errlen)
{
    const struct ag_graph_def *g = p->graph;
    const json_t *cmd = p->command && !json_is_null(p->command) ? p->command : NULL;
    const json_t *input = p->input && !json_is_null(p->input) ? p->input : NULL;
    const json_t *from = p->from && !json_is_null(p->from) ? p->from : NULL;
    if (!g || !g->compiled || !p->thread_id || !p->run_id || !h || !h->timers || !h->now_ns) {
        snprintf(err, errlen, "invalid run parameters");
        return NULL;
    }
    if (input && !json_is_object(input)) {
        snprintf(err, errlen, "Invalid input: expected an object");
        return NULL;
    }
    if (cmd && !json_is_object(cmd)) {
        snprintf(err, errlen, "command must be an object");
        return NULL;
    }
    if (check_filter(g, p->interrupt_before, "interrupt_before", err, errlen) < 0 ||
        check_filter(g, p->interrupt_after, "interrupt_after", err, errlen) < 0)
        return NULL;
    if (from && (!json_is_object(json_object_get(from, "values")) || !ckpt_id(from))) {
        snprintf(err, errlen, "invalid checkpoint to continue from");
        return NULL;
    }
    const json_t *resume = cmd ? json_object_get(cmd, "resume") : NULL;
    const json_t *cupdate = cmd ? json_object_get(cmd, "update") : NULL;
    const json_t *cgoto = cmd ? json_object_get(cmd, "goto") : NULL;
    if (cupdate && json_is_null(cupdate))
        cupdate = NULL;
    if (cgoto && json_is_null(cgoto))
        cgoto = NULL;
    if (input)
        resume = cupdate = cgoto = NULL; /* input wins, as the API accepts one or the other */
    if (!input && !from && !cupdate && !cgoto) {
        snprintf(err, errlen, "%s", resume ? "Cannot resume: the thread has no pending interrupt"
                                           : "Received no input for __start__");
        return NULL;
    }
    json_t *resume_extra = NULL, *goto_names = NULL, *values = NULL;
    if (resume && !(resume_extra = map_resume(from, resume, err, errlen)))
        return NULL;
    if (cgoto) {
        goto_names = json_is_array(cgoto) ? json_incref((json_t *)cgoto) : json_pack("[O]", cgoto);
        size_t i;
        json_t *v;
        json_array_foreach(goto_names, i, v)
        {
            const char *n = json_string_value(v);
            if (!n || (!ag_graph__node(g, n) && strcmp(n, AG_GRAPH_END))) {
                snprintf(err, errlen, "command.goto names an unknown node: %.100s", n ? n : "(not a string)");
                goto fail;
            }
        }
    }
    values = from ? json_incref(json_object_get(from, "values")) : ag_graph__defaults(g);
    if (cupdate) {
        json_t *nv = apply_command_update(g, values, cupdate, err, errlen);
        if (!nv)
            goto fail;
        json_decref(values);
        values = nv;
    }

    struct ag_graph_run *r = ag_calloc(1, sizeof *r);
    r->h = *h;
    r->g = g;
    r->thread_id = ag_strdup(p->thread_id);
    r->run_id = ag_strdup(p->run_id);
    r->config = p->config && !json_is_null(p->config) ? json_incref(p->config) : json_object();
    r->context = p->context && !json_is_null(p->context) ? json_incref(p->context) : json_object();
    r->metadata = json_is_object(p->metadata) ? json_incref(p->metadata) : json_object();
    r->ibefore = p->interrupt_before && !json_is_null(p->interrupt_before) ? json_incref(p->interrupt_before) : NULL;
    r->iafter = p->interrupt_after && !json_is_null(p->interrupt_after) ? json_incref(p->interrupt_after) : NULL;
    r->limit = p->recursion_limit > 0 ? p->recursion_limit : DEFAULT_RECURSION_LIMIT;
    r->values = values;
    r->ckpt = from ? json_incref((json_t *)from) : NULL;
    r->step = from ? (int)json_integer_value(json_object_get(from, "step")) : -2;
    r->phase = RP_STEP;
    ag_timer_init(&r->yield, on_yield_timer);
    r->driving = true;
    if (input) {
        r->input = json_incref((json_t *)input);
        json_t *start = json_pack("[s]", AG_GRAPH_START);
        write_checkpoint(r, "input", start, NULL, NULL);
        json_decref(start);
    } else {
        const json_t *carried = from ? json_object_get(from, "tasks") : NULL;
        json_t *names = continue_names(g, from, goto_names);
        const json_t *st = find_task(carried, AG_GRAPH_START);
        if (st && json_object_get(st, "result") && !json_is_null(json_object_get(st, "result")))
            r->input = json_incref(json_object_get(st, "result"));
        r->skip_ibefore = true;
        if (cupdate || goto_names) {
            write_checkpoint(r, "update", names, carried, resume_extra);
        } else {
            emit(r, AG_GEV_VALUES, r->step, NULL, json_incref(r->values), NULL);
            schedule(r, names, ckpt_id(r->ckpt), carried, resume_extra);
        }
        json_decref(names);
    }
    r->driving = false;
    json_decref(resume_extra);
    json_decref(goto_names);
    drive(r);
    return r;
fail:
    json_decref(resume_extra);
    json_decref(goto_names);
    json_decref(values);
    return NULL;
}

void ag_graph_run_cancel(struct ag_graph_run *r)
{
    if (!r || ended(r))
        return;
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *t = r->tasks[i];
        ag_timer_cancel(r->h.timers, &t->timer);
        if (!t->in_call)
            task_free_ud(t);
        if (t->st == TS_NEW || t->st == TS_RUNNING || t->st == TS_SLEEPING || t->st == TS_PENDING)
            t->st = TS_CANCELLED;
    }
    end_run(r, AG_GRAPH_CANCELLED, NULL, NULL);
}

void ag_graph_run_free(struct ag_graph_run *r)
{
    if (!r)
        return;
    AG_BUG_ON(r->in_cb);
    ag_graph_run_cancel(r);
    ag_timer_cancel(r->h.timers, &r->yield);
    free_tasks(r);
    json_decref(r->config);
    json_decref(r->context);
    json_decref(r->metadata);
    json_decref(r->input);
    json_decref(r->values);
    json_decref(r->ckpt);
    json_decref(r->ibefore);
    json_decref(r->iafter);
    ag_free(r->thread_id);
    ag_free(r->run_id);
    ag_free(r);
}

/* --- state updates outside a run --- */

json_t *ag_graph_state_update(const struct ag_graph_def *g, const json_t *latest, const json_t *prev,
                              const json_t *values, const char *as_node, const json_t *config,
                              const json_t *metadata, char *err, size_t errlen)
{
    if (!g || !g->compiled) {
        snprintf(err, errlen, "invalid graph");
        return NULL;
    }
    if (latest && json_is_null(latest))
        latest = NULL;
    if (values && json_is_null(values))
        values = NULL;
    if (values && !json_is_object(values)) {
        snprintf(err, errlen, "values must be an object");
        return NULL;
    }
    if (!as_node) {
        const json_t *pnext = prev ? json_object_get(prev, "next") : NULL;
        int step = latest ? (int)json_integer_value(json_object_get(latest, "step")) : 0;
        const char *src = latest ? json_string_value(json_object_get(latest, "source")) : NULL;
        if (!latest || (src && !strcmp(src, "input")) || step < 0)
            as_node = AG_GRAPH_START;
        else if (json_array_size(pnext) == 1 && json_is_string(json_array_get(pnext, 0)))
            as_node = json_string_value(json_array_get(pnext, 0));
        else if (g->nnodes == 1)
            as_node = g->nodes[0].name;
        else {
            snprintf(err, errlen, "Ambiguous update, specify as_node");
            return NULL;
        }
    }
    if (strcmp(as_node, AG_GRAPH_START) && !ag_graph__node(g, as_node)) {
        snprintf(err, errlen, "Node %.100s does not exist", as_node);
        return NULL;
    }
    json_t *base = latest && json_is_object(json_object_get(latest, "values"))
                       ? json_incref(json_object_get(latest, "values"))
                       : ag_graph__defaults(g);
    json_t *nv = NULL;
    if (values) {
        json_t *u = ag_graph__normalize(g, values, err, errlen);
        nv = u ? ag_graph__apply(g, base, &u, 1, err, errlen) : NULL;
        json_decref(u);
        json_decref(base);
        if (!nv)
            return NULL;
    } else {
        nv = base;
    }
    json_t *set = json_object();
    if (ag_graph__successors(g, as_node, nv, config, set, err, errlen) < 0) {
        json_decref(set);
        json_decref(nv);
        return NULL;
    }
    json_t *names = ag_graph__sorted_names(set);
    json_decref(set);
    int step = latest ? (int)json_integer_value(json_object_get(latest, "step")) + 1 : -1;
    char id[37], tid[37];
    ag_graph_checkpoint_id(step, id);
    json_t *tasks = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        ag_graph_make_task_id(id, json_string_value(v), tid);
        json_array_append_new(tasks, task_json(tid, json_string_value(v), NULL, NULL, NULL, NULL));
    }
    json_t *ck = checkpoint_json(id, latest ? ckpt_id(latest) : NULL, step, "update", nv, names, tasks, metadata);
    json_decref(nv);
    return ck;
}
