/* Starting a run (from a checkpoint, an input or a command), cancelling and freeing it: the entry points of
 * graph/engine.h around the superstep machine in engine.c. */
#include "graph/engine.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/shard.h"
#include "core/timer.h"
#include "graph/engine_internal.h"
#include "graph/graph_internal.h"
#include "graph/ids.h"

/* --- starting --- */

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static int check_filter(const struct ag_graph_def *g, const json_t *f, const char *what, char *err, size_t errlen)
{
    if (!f || json_is_null(f)) return 0;
    if (json_is_string(f)) {
        if (!strcmp(json_string_value(f), "*")) return 0;
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
            json_array_append_new(out,
                                  json_pack("{s:O}", json_string_value(json_array_get(p, 0)), json_array_get(p, 1)));
        }
        return out;
    }
    snprintf(err, errlen, "command.update must be an object or a list of [key, value] pairs");
    json_decref(out);
    return NULL;
}

/* Maps command.resume onto the pending interrupts of from's tasks: task id → [answer]. */
static json_t *map_resume(const json_t *from, const json_t *resume, char *err, size_t errlen)
{
    const json_t *tasks = json_object_get(from, "tasks"), *next = json_object_get(from, "next");
    json_t *pending = json_object(); /* interrupt id → task id */
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
        if (!in_next) continue;
        const char *tid = json_string_value(json_object_get(t, "id"));
        if (!tid) continue;
        json_array_foreach(json_object_get(t, "interrupts"), j, intr)
        {
            const char *id = json_string_value(json_object_get(intr, "id"));
            if (id) json_object_set_new(pending, id, json_string(tid));
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
            if (!a) json_object_set_new(out, name, a = json_array());
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

/* The sends a checkpoint's push tasks carry ({"node","arg"}, in packet order), and appended to *names
 * the pull names of its next (next less one occurrence per push task). */
static json_t *pending_sends(const struct ag_graph_def *g, const json_t *ckpt, json_t *names)
{
    const json_t *tasks = json_object_get(ckpt, "tasks");
    json_t *sends = json_array(), *pushed = json_object(); /* node → push tasks not yet matched in next */
    size_t i;
    json_t *t;
    for (int idx = 0;; idx++) {
        const json_t *found = NULL;
        json_array_foreach(tasks, i, t)
        {
            if (ag_graph__task_push_index(t) == idx) found = t;
        }
        if (!found) break;
        const char *name = json_string_value(json_object_get(found, "name"));
        if (!name || !ag_graph__node(g, name)) continue;
        const json_t *arg = json_object_get(found, "send_arg");
        json_array_append_new(sends, json_pack("{s:s,s:O}", "node", name, "arg", arg ? arg : json_null()));
        json_object_set_new(pushed, name, json_integer(json_integer_value(json_object_get(pushed, name)) + 1));
    }
    json_array_foreach(json_object_get(ckpt, "next"), i, t)
    {
        const char *n = json_string_value(t);
        if (!n) continue;
        json_int_t left = json_integer_value(json_object_get(pushed, n));
        if (left > 0) {
            json_object_set_new(pushed, n, json_integer(left - 1));
            continue;
        }
        if (ag_graph__node(g, n) || !strcmp(n, AG_GRAPH_START)) json_array_append_new(names, json_string(n));
    }
    json_decref(pushed);
    return sends;
}

/* Where a run without input starts: from's pending pull names plus goto's names, sorted ("__start__" stays
 * when from is an input checkpoint whose input was never applied), and (*sends) from's pending sends plus
 * goto's packets. */
static json_t *continue_names(const struct ag_graph_def *g, const json_t *from, const json_t *go_set,
                              const json_t *go_sends, json_t **sends)
{
    json_t *pull = json_array(), *set = json_object();
    *sends = from ? pending_sends(g, from, pull) : json_array();
    json_array_extend(*sends, (json_t *)go_sends);
    size_t i;
    json_t *v;
    json_array_foreach(pull, i, v)
    {
        json_object_set_new(set, json_string_value(v), json_true());
    }
    json_object_update(set, (json_t *)go_set);
    json_t *names = ag_graph__sorted_names(set);
    json_decref(set);
    json_decref(pull);
    return names;
}

/* base with command.update applied (a new reference), or NULL with err. */
static json_t *apply_command_update(const struct ag_graph_def *g, const json_t *base, const json_t *cupdate, char *err,
                                    size_t errlen)
{
    json_t *list = command_updates(cupdate, err, errlen);
    if (!list) return NULL;
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
    if (from && (!json_is_object(json_object_get(from, "values")) || !ag_graph__ckpt_id(from))) {
        snprintf(err, errlen, "invalid checkpoint to continue from");
        return NULL;
    }
    const json_t *resume = cmd ? json_object_get(cmd, "resume") : NULL;
    const json_t *cupdate = cmd ? json_object_get(cmd, "update") : NULL;
    const json_t *cgoto = cmd ? json_object_get(cmd, "goto") : NULL;
    if (cupdate && json_is_null(cupdate)) cupdate = NULL;
    if (cgoto && json_is_null(cgoto)) cgoto = NULL;
    if (input) resume = cupdate = cgoto = NULL; /* input wins, as the API accepts one or the other */
    if (!input && !from && !cupdate && !cgoto) {
        snprintf(err, errlen, "%s",
                 resume ? "Cannot resume: the thread has no pending interrupt" : "Received no input for __start__");
        return NULL;
    }
    json_t *resume_extra = NULL, *go_set = NULL, *go_sends = NULL, *values = NULL;
    if (resume && !(resume_extra = map_resume(from, resume, err, errlen))) return NULL;
    if (cgoto) {
        /* Node names (END: none) and Send packets ({"node","arg"}), as LangGraph's Command(goto=...) takes. */
        go_set = json_object();
        go_sends = json_array();
        json_t *list = json_is_array(cgoto) ? json_incref((json_t *)cgoto) : json_pack("[O]", cgoto);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            const char *n = json_string_value(v);
            if (json_is_object(v) ? ag_graph__add_goto(g, v, "command.goto", go_set, go_sends, err, errlen) < 0
                                  : !n || (!ag_graph__node(g, n) && strcmp(n, AG_GRAPH_END))) {
                if (!json_is_object(v))
                    snprintf(err, errlen, "command.goto names an unknown node: %.100s", n ? n : "(not a string)");
                json_decref(list);
                goto fail;
            }
            if (n && strcmp(n, AG_GRAPH_END)) json_object_set_new(go_set, n, json_true());
        }
        json_decref(list);
    }
    values = from ? json_incref(json_object_get(from, "values")) : ag_graph__defaults(g);
    if (cupdate) {
        json_t *nv = apply_command_update(g, values, cupdate, err, errlen);
        if (!nv) goto fail;
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
    const json_t *barriers = from ? json_object_get(from, "barriers") : NULL;
    r->barriers = json_is_object(barriers) && json_object_size(barriers) ? json_deep_copy(barriers) : NULL;
    r->step = from ? (int)json_integer_value(json_object_get(from, "step")) : -2;
    r->phase = RP_STEP;
    ag_timer_init(&r->yield, ag_graph__on_yield_timer);
    r->driving = true;
    if (input) {
        r->input = json_incref((json_t *)input);
        json_t *start = json_pack("[s]", AG_GRAPH_START);
        ag_graph__write_checkpoint(r, "input", start, NULL, NULL, NULL);
        json_decref(start);
    } else {
        const json_t *carried = from ? json_object_get(from, "tasks") : NULL;
        json_t *sends = NULL, *names = continue_names(g, from, go_set, go_sends, &sends);
        const json_t *st = ag_graph__find_task(carried, AG_GRAPH_START);
        if (st && json_object_get(st, "result") && !json_is_null(json_object_get(st, "result")))
            r->input = json_incref(json_object_get(st, "result"));
        r->skip_ibefore = true;
        if (cupdate || go_set) {
            ag_graph__write_checkpoint(r, "update", names, sends, carried, resume_extra);
        } else {
            ag_graph__emit(r, AG_GEV_VALUES, r->step, NULL, json_incref(r->values), NULL);
            ag_graph__schedule(r, names, sends, ag_graph__ckpt_id(r->ckpt), carried, resume_extra);
        }
        json_decref(names);
        json_decref(sends);
    }
    r->driving = false;
    json_decref(resume_extra);
    json_decref(go_set);
    json_decref(go_sends);
    ag_graph__drive(r);
    return r;
fail:
    json_decref(resume_extra);
    json_decref(go_set);
    json_decref(go_sends);
    json_decref(values);
    return NULL;
}

void ag_graph_run_cancel(struct ag_graph_run *r)
{
    if (!r || ag_graph__ended(r)) return;
    for (size_t i = 0; i < r->ntasks; i++) {
        struct ag_graph_task *t = r->tasks[i];
        ag_graph__task_stop_io(t);
        if (!t->in_call) ag_graph__task_free_ud(t);
        if (t->st == TS_NEW || t->st == TS_RUNNING || t->st == TS_SLEEPING || t->st == TS_PENDING) t->st = TS_CANCELLED;
    }
    ag_graph__end_run(r, AG_GRAPH_CANCELLED, NULL, NULL);
}

void ag_graph_run_free(struct ag_graph_run *r)
{
    if (!r) return;
    AG_BUG_ON(r->in_cb);
    ag_graph_run_cancel(r);
    ag_timer_cancel(r->h.timers, &r->yield);
    ag_graph__free_tasks(r);
    json_decref(r->config);
    json_decref(r->context);
    json_decref(r->metadata);
    json_decref(r->input);
    json_decref(r->values);
    json_decref(r->ckpt);
    json_decref(r->barriers);
    json_decref(r->ibefore);
    json_decref(r->iafter);
    ag_free(r->thread_id);
    ag_free(r->run_id);
    ag_free(r);
}

/* --- state updates outside a run --- */

/* Studio's as_node for "copy this checkpoint" (with no values). */
#define COPY_NODE "__copy__"
/* LangGraph's as_node for "this is the input of a run": an input checkpoint, its input not applied yet. */
#define INPUT_NODE "__input__"

/* A copy of latest beside it (same parent), as LangGraph forks one: source "fork", step + 1, the same
 * values and next, fresh tasks (the pending writes and interrupts of latest stay with it). */
static json_t *fork_checkpoint(const json_t *latest, const json_t *metadata, char *err, size_t errlen)
{
    if (!latest) {
        snprintf(err, errlen, "Cannot copy a non-existent checkpoint");
        return NULL;
    }
    int step = (int)json_integer_value(json_object_get(latest, "step")) + 1;
    char id[37], tid[37];
    ag_graph_checkpoint_id(step, id);
    json_t *next = json_array(), *tasks = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(latest, "next"), i, n)
    {
        const char *name = json_string_value(n);
        if (!name) continue;
        json_array_append(next, n);
    }
    /* Fresh tasks: one per pull name of next, then the push tasks again with their packets. */
    size_t npush = 0;
    json_array_foreach(json_object_get(latest, "tasks"), i, n)
    {
        npush += ag_graph__task_push_index(n) >= 0;
    }
    size_t npull = json_array_size(next) >= npush ? json_array_size(next) - npush : 0;
    for (i = 0; i < npull; i++) {
        const char *name = json_string_value(json_array_get(next, i));
        ag_graph_make_task_id(id, name, tid);
        json_array_append_new(tasks, ag_graph__task_json(tid, name, NULL, NULL, NULL, NULL));
    }
    json_array_foreach(json_object_get(latest, "tasks"), i, n)
    {
        int idx = ag_graph__task_push_index(n);
        const char *name = json_string_value(json_object_get(n, "name"));
        if (idx < 0 || !name) continue;
        ag_graph__push_task_id(id, name, idx, tid);
        json_array_append_new(
            tasks, ag_graph__push_task_json(tid, name, idx, json_object_get(n, "send_arg"), NULL, NULL, NULL, NULL));
    }
    const json_t *values = json_object_get(latest, "values");
    json_t *own = json_is_object(values) ? json_copy((json_t *)values) : json_object();
    json_t *ck = ag_graph__checkpoint_json(id, json_string_value(json_object_get(latest, "parent_checkpoint_id")), step,
                                           "fork", own, next, tasks, json_is_object(metadata) ? metadata : NULL);
    const json_t *barriers = json_object_get(latest, "barriers");
    if (json_is_object(barriers)) json_object_set_new(ck, "barriers", json_deep_copy(barriers));
    json_decref(own);
    return ck;
}

/* as_node "__input__" with values input (an object): the input checkpoint a run would write for it, after
 * latest: source "input", step latest.step+1 (-1 without latest), latest's values, next ["__start__"] whose
 * task holds the input, so that a run without input continues by applying it. */
static json_t *input_checkpoint(const struct ag_graph_def *g, const json_t *latest, const json_t *input,
                                const json_t *metadata)
{
    int step = latest ? (int)json_integer_value(json_object_get(latest, "step")) + 1 : -1;
    char id[37], tid[37];
    ag_graph_checkpoint_id(step, id);
    ag_graph_make_task_id(id, AG_GRAPH_START, tid);
    json_t *tasks = json_array();
    json_array_append_new(tasks, ag_graph__task_json(tid, AG_GRAPH_START, NULL, NULL, (json_t *)input, NULL));
    json_t *values = latest && json_is_object(json_object_get(latest, "values"))
                         ? json_incref(json_object_get(latest, "values"))
                         : ag_graph__defaults(g);
    json_t *ck = ag_graph__checkpoint_json(id, latest ? ag_graph__ckpt_id(latest) : NULL, step, "input", values,
                                           json_pack("[s]", AG_GRAPH_START), tasks, metadata);
    json_decref(values);
    return ck;
}

/* The node a lone update without as_node is attributed to, as LangGraph picks it (graph/engine.h), or
 * NULL with err. */
static const char *inferred_node(const struct ag_graph_def *g, const json_t *latest, const json_t *prev, char *err,
                                 size_t errlen)
{
    const json_t *pnext = prev ? json_object_get(prev, "next") : NULL;
    int step = latest ? (int)json_integer_value(json_object_get(latest, "step")) : 0;
    const char *src = latest ? json_string_value(json_object_get(latest, "source")) : NULL;
    if (!latest || (src && !strcmp(src, "input")) || step < 0) return AG_GRAPH_START;
    if (json_array_size(pnext) == 1 && json_is_string(json_array_get(pnext, 0)))
        return json_string_value(json_array_get(pnext, 0));
    if (g->nnodes == 1) return g->nodes[0].name;
    snprintf(err, errlen, "Ambiguous update, specify as_node");
    return NULL;
}

/* Appends the normalized writes of values (NULL or null: none; an object: one; an array of objects: one
 * each) to *w (*nw of them, room for *cap). Returns 0, or -1 with err. */
static int add_writes(const struct ag_graph_def *g, const json_t *values, json_t ***w, size_t *nw, size_t *cap,
                      char *err, size_t errlen)
{
    if (!values || json_is_null(values)) return 0;
    size_t n = json_is_array(values) ? json_array_size(values) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_is_array(values) ? json_array_get(values, i) : values;
        if (!json_is_object(v)) {
            snprintf(err, errlen, "values must be an object");
            return -1;
        }
        json_t *u = ag_graph__normalize(g, v, err, errlen);
        if (!u) return -1;
        if (*nw == *cap) {
            *cap = *cap ? *cap * 2 : 4;
            *w = ag_realloc(*w, *cap * sizeof **w);
        }
        (*w)[(*nw)++] = u;
    }
    return 0;
}

/* The checkpoint of an update superstep: values nv, next = the sorted names in set then the nodes of sends,
 * tasks for them, the wait-for-all edges' barriers (NULL: none). */
static json_t *update_checkpoint(const json_t *latest, json_t *nv, const json_t *set, const json_t *sends,
                                 const json_t *barriers, const json_t *metadata)
{
    json_t *names = ag_graph__sorted_names(set);
    int step = latest ? (int)json_integer_value(json_object_get(latest, "step")) + 1 : -1;
    char id[37], tid[37];
    ag_graph_checkpoint_id(step, id);
    json_t *tasks = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        ag_graph_make_task_id(id, json_string_value(v), tid);
        json_array_append_new(tasks, ag_graph__task_json(tid, json_string_value(v), NULL, NULL, NULL, NULL));
    }
    json_array_foreach(sends, i, v)
    {
        const char *node = json_string_value(json_object_get(v, "node"));
        ag_graph__push_task_id(id, node, (int)i, tid);
        json_array_append_new(
            tasks, ag_graph__push_task_json(tid, node, (int)i, json_object_get(v, "arg"), NULL, NULL, NULL, NULL));
        json_array_append_new(names, json_string(node));
    }
    json_t *ck = ag_graph__checkpoint_json(id, latest ? ag_graph__ckpt_id(latest) : NULL, step, "update", nv, names,
                                           tasks, metadata);
    if (barriers) json_object_set(ck, "barriers", (json_t *)barriers);
    return ck;
}

json_t *ag_graph_state_step(const struct ag_graph_def *g, const json_t *latest, const json_t *prev,
                            const struct ag_graph_update *ups, size_t n, const json_t *config, const json_t *metadata,
                            struct ag_graph_fault *fault, char *err, size_t errlen)
{
    *fault = (struct ag_graph_fault){.update = -1};
    if (!g || !g->compiled || !n) {
        snprintf(err, errlen, "%s", n ? "invalid graph" : "No updates provided");
        return NULL;
    }
    if (latest && json_is_null(latest)) latest = NULL;
    const json_t *v0 = ups[0].values && !json_is_null(ups[0].values) ? ups[0].values : NULL;
    if (n == 1 && !v0 && ups[0].as_node && !strcmp(ups[0].as_node, COPY_NODE)) {
        json_t *ck = fork_checkpoint(latest, metadata, err, errlen);
        if (!ck) *fault = (struct ag_graph_fault){.update = 0, .as_node = true};
        return ck;
    }
    if (n == 1 && ups[0].as_node && !strcmp(ups[0].as_node, INPUT_NODE)) {
        if (json_is_object(v0)) return input_checkpoint(g, latest, v0, metadata);
        snprintf(err, errlen, "Received no input writes: values must be an object");
        *fault = (struct ag_graph_fault){.update = 0};
        return NULL;
    }
    json_t **writes = NULL, *nv = NULL, *ck = NULL, *set = json_object(), *sends = json_array();
    size_t nw = 0, cap = 0;
    const char **nodes = ag_calloc(n, sizeof *nodes);
    for (size_t j = 0; j < n; j++) {
        *fault = (struct ag_graph_fault){.update = (int)j, .as_node = true};
        nodes[j] = ups[j].as_node;
        if (!nodes[j] && n > 1) {
            snprintf(err, errlen, "as_node is required when applying multiple updates");
            goto done;
        }
        if (!nodes[j] && !(nodes[j] = inferred_node(g, latest, prev, err, errlen))) goto done;
        if (!strcmp(nodes[j], COPY_NODE) || !strcmp(nodes[j], INPUT_NODE)) {
            snprintf(err, errlen, "%s",
                     n > 1 ? "Cannot apply multiple updates as __copy__ or __input__" : "__copy__ takes no values");
            goto done;
        }
        if (strcmp(nodes[j], AG_GRAPH_START) && !ag_graph__node(g, nodes[j])) {
            snprintf(err, errlen, "Node %.100s does not exist", nodes[j]);
            goto done;
        }
        fault->as_node = false;
        if (add_writes(g, ups[j].values, &writes, &nw, &cap, err, errlen) < 0) goto done;
    }
    *fault = (struct ag_graph_fault){.update = -1};
    json_t *base = latest && json_is_object(json_object_get(latest, "values"))
                       ? json_incref(json_object_get(latest, "values"))
                       : ag_graph__defaults(g);
    nv = nw ? ag_graph__apply(g, base, writes, nw, err, errlen) : json_incref(base);
    json_decref(base);
    if (!nv) goto done;
    for (size_t j = 0; j < n; j++)
        if (ag_graph__successors(g, nodes[j], nv, config, set, sends, err, errlen) < 0) goto done;
    /* The updates count as their nodes running, for wait-for-all edges too. */
    json_t *ran = json_array();
    for (size_t j = 0; j < n; j++)
        json_array_append_new(ran, json_string(nodes[j]));
    json_t *barriers = ag_graph__barriers_step(g, latest ? json_object_get(latest, "barriers") : NULL, ran, set);
    json_decref(ran);
    ck = update_checkpoint(latest, nv, set, sends, barriers, metadata);
    json_decref(barriers);
done:
    for (size_t k = 0; k < nw; k++)
        json_decref(writes[k]);
    ag_free(writes);
    ag_free(nodes);
    json_decref(set);
    json_decref(sends);
    json_decref(nv);
    return ck;
}

json_t *ag_graph_state_update(const struct ag_graph_def *g, const json_t *latest, const json_t *prev,
                              const json_t *values, const char *as_node, const json_t *config, const json_t *metadata,
                              char *err, size_t errlen)
{
    if (values && !json_is_null(values) && !json_is_object(values)) {
        snprintf(err, errlen, "values must be an object");
        return NULL;
    }
    const struct ag_graph_update u = {.values = values, .as_node = as_node};
    struct ag_graph_fault fault;
    return ag_graph_state_step(g, latest, prev, &u, 1, config, metadata, &fault, err, errlen);
}
