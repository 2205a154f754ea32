/* The engine features LangGraph authors rely on (graph/graph.h): Send (map-reduce fan-out), node-returned
 * commands, wait-for-all edges and retry policies, against LangGraph's semantics:
 * - each Send packet runs its node once in the next superstep with the packet's arg as its input, beside
 *   the pull tasks the edges picked; the checkpoint's next lists pull nodes (sorted) then each packet's
 *   node, its tasks carry path ["__pregel_push", i];
 * - updates apply in task order (pull tasks by name, then packets in the order they were sent) whatever
 *   order the tasks finish in;
 * - a node reached from several push tasks by an edge runs once (pull tasks are a set);
 * - a node's command goto adds names and packets to the next step; an unknown name fails the task;
 * - an interrupt inside a push task is resumed in that task only, with its own arg; the tasks that
 *   finished keep their results;
 * - a state update whose edge fans out writes push tasks; a fork keeps them;
 * - a wait-for-all edge runs its target once, in the step after the last of its sources ran, across
 *   supersteps and across an interrupt and its resume (the checkpoint keeps which sources ran);
 * - a retry policy runs a failing node again after min(max, initial * backoff^(n-1)) until it succeeds or
 *   runs out of attempts; retry_on may refuse an error;
 * - a node's store operations (put, get, search, delete) go to the host and re-enter the node with their
 *   result, never from inside the call; bad namespaces and a host without a store answer errors; a run
 *   cancelled meanwhile abandons the operation;
 * - a subgraph node runs its graph on the node's input, its events and checkpoints carry the namespace
 *   "<node>:<task id>", its final values are the node's update, and an interrupt inside it stops the
 *   parent; the resume goes on inside the subgraph from its checkpoint (nodes that ran do not run again). */
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "graph/engine.h"
#include "graph/graph.h"
#include "graph_harness.h"

/* plan: passes; fan-out after it sends one packet per subject to joke. */
static void plan(struct ag_graph_task *t)
{
    ag_graph_task_finish(t, NULL);
}

static json_t *per_subject(const json_t *state, const json_t *config, void *ud)
{
    (void)config;
    (void)ud;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(state, "subjects"), i, s)
    {
        json_array_append_new(out, ag_graph_send("joke", json_pack("{s:O}", "subject", s)));
    }
    return out;
}

static void joke_done(struct ag_graph_task *t)
{
    const char *subject = s_of(ag_graph_task_state(t), "subject");
    json_t *answer = NULL;
    if (!strcmp(subject, "ask") && !(answer = ag_graph_task_interrupt(t, json_string("about what?")))) return;
    const char *about = answer ? json_string_value(answer) : subject;
    ag_graph_task_finish(t, json_pack("{s:[o]}", "jokes", json_sprintf("joke about %s", about)));
}

/* joke: finishes after a delay that makes later packets finish first. */
static void joke(struct ag_graph_task *t)
{
    const char *subject = s_of(ag_graph_task_state(t), "subject");
    ag_graph_task_sleep(t, subject[0] == 'a' ? 30 : subject[0] == 'b' ? 20 : 10, joke_done);
}

/* summarize: once after every joke; its command goes on to `after` and sends `tail` a packet. */
static void summarize(struct ag_graph_task *t)
{
    json_t *jokes = json_object_get(ag_graph_task_state(t), "jokes");
    ag_graph_task_finish_command(t, json_pack("{s:I}", "count", (json_int_t)json_array_size(jokes)),
                                 json_pack("[s,o]", "after", ag_graph_send("tail", json_pack("{s:i}", "x", 7))));
}

static void after(struct ag_graph_task *t)
{
    ag_graph_task_finish(t, json_pack("{s:[s]}", "log", "after"));
}

static void tail(struct ag_graph_task *t)
{
    ag_graph_task_finish(t, json_pack("{s:[O]}", "log", json_object_get(ag_graph_task_state(t), "x")));
}

/* bad_goto: a command to a node that does not exist. */
static void bad_goto(struct ag_graph_task *t)
{
    ag_graph_task_finish_command(t, NULL, json_string("nowhere"));
}

static struct ag_graph_def *mapreduce(void)
{
    static const char *const targets[] = {"joke", NULL};
    struct ag_graph_def *g = ag_graph_def_new("mapreduce");
    ag_graph_def_channel(g, "subjects", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "jokes", AG_GRAPH_APPEND, NULL);
    ag_graph_def_channel(g, "count", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "plan", plan, NULL);
    ag_graph_def_node(g, "joke", joke, NULL);
    ag_graph_def_node(g, "summarize", summarize, NULL);
    ag_graph_def_node(g, "after", after, NULL);
    ag_graph_def_node(g, "tail", tail, NULL);
    ag_graph_def_node(g, "bad_goto", bad_goto, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "plan");
    ag_graph_def_conditional_fanout(g, "plan", per_subject, NULL, targets);
    ag_graph_def_edge(g, "joke", "summarize");
    char err[256];
    CHECKF(ag_graph_def_compile(g, err, sizeof err) == 0, "%s", err);
    return g;
}

/* The names of the tasks started, in order, space-separated. */
static const char *started(const struct rec *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; nth(r, "task_start", i); i++)
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", i ? " " : "",
                                s_of(nth(r, "task_start", i), "name"));
    return out;
}

/* The checkpoint emitted with step `step` (the last one when re-emitted), or NULL. */
static json_t *ckpt_at(const struct rec *r, int step)
{
    json_t *found = NULL;
    for (int i = 0; nth(r, "checkpoint", i); i++)
        if (json_integer_value(json_object_get(nth(r, "checkpoint", i), "step")) == step)
            found = nth(r, "checkpoint", i);
    return found;
}

static void test_fanout_and_commands(struct rec *r, const struct ag_graph_def *g)
{
    char err[256], buf[512];
    CHECK(start(r, g, (struct start_opts){.input = "{\"subjects\":[\"a\",\"b\",\"c\"]}"}, err, sizeof err));
    run_timers(r);
    CHECKF(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS, "outcome %d: %s", r->outcome, r->error ? r->error : "");
    /* packets applied in the order they were sent, though c finished first */
    json_t *want = parse("[\"joke about a\",\"joke about b\",\"joke about c\"]");
    CHECK(json_equal(json_object_get(r->values, "jokes"), want));
    json_decref(want);
    /* summarize once (a pull task reached from three push tasks), then after and tail from its command */
    CHECK_STREQ(started(r, buf, sizeof buf), "plan joke joke joke summarize after tail");
    CHECK(json_integer_value(json_object_get(r->values, "count")) == 3);
    want = parse("[\"after\",7]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    /* the checkpoint after plan: next ["joke","joke","joke"], push paths, the packets, distinct ids */
    json_t *c = ckpt_at(r, 1);
    want = parse("[\"joke\",\"joke\",\"joke\"]");
    CHECK(c && json_equal(json_object_get(c, "next"), want));
    json_decref(want);
    json_t *tasks = json_object_get(c, "tasks");
    CHECK(json_array_size(tasks) == 3);
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        json_t *t = json_array_get(tasks, i);
        json_t *path = json_object_get(t, "path");
        CHECK_STREQ(json_string_value(json_array_get(path, 0)), "__pregel_push");
        CHECK((size_t)json_integer_value(json_array_get(path, 1)) == i);
        CHECK(strlen(s_of(t, "id")) == 36);
        if (i) CHECK(strcmp(s_of(t, "id"), s_of(json_array_get(tasks, i - 1), "id")));
    }
    CHECK_STREQ(s_of(json_object_get(json_array_get(tasks, 1), "send_arg"), "subject"), "b");
    /* a push task starts with its packet as input and says it was pushed */
    json_t *ts = nth(r, "task_start", 2);
    CHECK_STREQ(s_of(json_object_get(ts, "input"), "subject"), "b");
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(ts, "triggers"), 0)), "__pregel_push");
    /* after summarize: next [after] then the tail packet */
    want = parse("[\"after\",\"tail\"]");
    CHECK(json_equal(json_object_get(ckpt_at(r, 3), "next"), want));
    json_decref(want);
    rec_reset(r);
}

static void test_bad_goto(struct rec *r, const struct ag_graph_def *g)
{
    char err[256];
    /* goto bad_goto from a state with nothing pending: the node's command names no node */
    CHECK(start(r, g, (struct start_opts){.input = "{\"subjects\":[]}"}, err, sizeof err));
    run_timers(r);
    json_t *from = latest(r);
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"goto\":\"bad_goto\"}", .from = from}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_ERROR && r->error && strstr(r->error, "unknown node 'nowhere'"));
    rec_reset(r);
    /* a client's Command goto may carry a Send packet too */
    CHECK(start(r, g, (struct start_opts){.command = "{\"goto\":{\"node\":\"tail\",\"arg\":{\"x\":5}}}", .from = from},
                err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    json_t *want = parse("[5]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    rec_reset(r);
    CHECK(!start(r, g, (struct start_opts){.command = "{\"goto\":{\"node\":\"nope\",\"arg\":1}}", .from = from}, err,
                 sizeof err));
    CHECK(strstr(err, "unknown node 'nope'"));
    json_decref(from);
    rec_reset(r);
}

static void test_interrupt_in_push(struct rec *r, const struct ag_graph_def *g)
{
    char err[256], buf[512];
    CHECK(start(r, g, (struct start_opts){.input = "{\"subjects\":[\"a\",\"ask\",\"b\"]}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED && json_array_size(r->interrupts) == 1);
    json_t *from = latest(r);
    json_t *tasks = json_object_get(from, "tasks");
    CHECK(json_array_size(json_object_get(json_array_get(tasks, 1), "interrupts")) == 1);
    CHECK(json_is_object(json_object_get(json_array_get(tasks, 0), "result")));
    rec_reset(r);
    /* the resume runs the interrupted packet's task only, with its own arg */
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"cats\"}", .from = from}, err, sizeof err));
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "outcome %d: %s", r->outcome, r->error ? r->error : "");
    json_t *want = parse("[\"joke about a\",\"joke about cats\",\"joke about b\"]");
    CHECK(json_equal(json_object_get(r->values, "jokes"), want));
    json_decref(want);
    CHECK_STREQ(started(r, buf, sizeof buf), "joke summarize after tail");
    json_decref(from);
    rec_reset(r);
}

static void test_state_update_fans_out(const struct ag_graph_def *g)
{
    char err[256];
    json_t *vals = parse("{\"subjects\":[\"x\",\"y\"]}");
    json_t *ck = ag_graph_state_update(g, NULL, NULL, vals, "plan", NULL, NULL, err, sizeof err);
    json_decref(vals);
    CHECKF(ck, "%s", err);
    json_t *want = parse("[\"joke\",\"joke\"]");
    CHECK(json_equal(json_object_get(ck, "next"), want));
    json_decref(want);
    CHECK_STREQ(s_of(json_object_get(json_array_get(json_object_get(ck, "tasks"), 1), "send_arg"), "subject"), "y");
    /* a fork keeps the packets */
    struct ag_graph_update copy = {.values = NULL, .as_node = "__copy__"};
    struct ag_graph_fault fault;
    json_t *fork = ag_graph_state_step(g, ck, NULL, &copy, 1, NULL, NULL, &fault, err, sizeof err);
    CHECKF(fork, "%s", err);
    json_t *ft = json_object_get(fork, "tasks");
    CHECK(json_array_size(ft) == 2);
    CHECK_STREQ(s_of(json_object_get(json_array_get(ft, 0), "send_arg"), "subject"), "x");
    CHECK(strcmp(s_of(json_array_get(ft, 0), "id"), s_of(json_array_get(json_object_get(ck, "tasks"), 0), "id")));
    json_decref(fork);
    json_decref(ck);
}

/* --- wait-for-all edges: START -> a, b; a -> a2; [a2, b] -> c --- */

static void write_name(struct ag_graph_task *t)
{
    const char *name = ag_graph_task_node(t);
    if (!strcmp(name, "a2") && json_object_get(ag_graph_task_state(t), "stop") &&
        !ag_graph_task_interrupt(t, json_string("go on?")))
        return;
    ag_graph_task_finish(t, json_pack("{s:[s]}", "log", name));
}

static struct ag_graph_def *join_graph(void)
{
    static const char *const sources[] = {"a2", "b", NULL};
    struct ag_graph_def *g = ag_graph_def_new("join");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_channel(g, "stop", AG_GRAPH_REPLACE, NULL);
    const char *nodes[] = {"a", "a2", "b", "c"};
    for (size_t i = 0; i < 4; i++)
        ag_graph_def_node(g, nodes[i], write_name, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, AG_GRAPH_START, "b");
    ag_graph_def_edge(g, "a", "a2");
    ag_graph_def_edge_join(g, sources, "c");
    char err[256];
    CHECKF(ag_graph_def_compile(g, err, sizeof err) == 0, "%s", err);
    return g;
}

static void test_join(struct rec *r)
{
    char err[256], buf[256];
    struct ag_graph_def *g = join_graph();
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(started(r, buf, sizeof buf), "a b a2 c");
    json_t *want = parse("[\"a\",\"b\",\"a2\",\"c\"]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    /* after step 1 (a and b): b is recorded; after a2 the barrier is spent */
    want = parse("{\"join:a2+b:c\":[\"b\"]}");
    CHECK(json_equal(json_object_get(ckpt_at(r, 1), "barriers"), want));
    json_decref(want);
    CHECK(!json_object_get(ckpt_at(r, 2), "barriers"));
    /* the drawing shows an edge from each source */
    const struct ag_graph_info *info = ag_graph_def_info(g);
    int into_c = 0;
    for (size_t i = 0; i < info->nedges; i++)
        into_c += !strcmp(info->edges[i].target, "c");
    CHECK(into_c == 2);
    rec_reset(r);

    /* a2 interrupts: the barrier (b ran) waits in the checkpoint; the resume runs a2 then c */
    CHECK(start(r, g, (struct start_opts){.input = "{\"stop\":true}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED);
    json_t *from = latest(r);
    want = parse("{\"join:a2+b:c\":[\"b\"]}");
    CHECK(json_equal(json_object_get(from, "barriers"), want));
    json_decref(want);
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":1}", .from = from}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(started(r, buf, sizeof buf), "a2 c");
    json_decref(from);
    rec_reset(r);

    /* a state update as b counts for the barrier too */
    json_t *ck = ag_graph_state_update(g, NULL, NULL, NULL, "b", NULL, NULL, err, sizeof err);
    want = parse("{\"join:a2+b:c\":[\"b\"]}");
    CHECK(ck && json_equal(json_object_get(ck, "barriers"), want));
    json_decref(want);
    json_t *ck2 = ag_graph_state_update(g, ck, NULL, NULL, "a2", NULL, NULL, err, sizeof err);
    want = parse("[\"c\"]");
    CHECK(ck2 && json_equal(json_object_get(ck2, "next"), want) && !json_object_get(ck2, "barriers"));
    json_decref(want);
    json_decref(ck2);
    json_decref(ck);
    /* an unknown source is refused at compile */
    struct ag_graph_def *bad = ag_graph_def_new("badjoin");
    static const char *const nosuch[] = {"a", "nosuch", NULL};
    ag_graph_def_node(bad, "a", write_name, NULL);
    ag_graph_def_edge(bad, AG_GRAPH_START, "a");
    ag_graph_def_edge_join(bad, nosuch, AG_GRAPH_END);
    CHECK(ag_graph_def_compile(bad, err, sizeof err) < 0 && strstr(err, "unknown node"));
    ag_graph_def_free(bad);
    ag_graph_def_free(g);
}

/* --- retry policies --- */

static void flaky(struct ag_graph_task *t)
{
    const json_t *fails = json_object_get(ag_graph_task_state(t), "fails");
    if (ag_graph_task_attempt(t) <= json_integer_value(fails)) {
        ag_graph_task_custom(t, json_pack("{s:i}", "attempt", ag_graph_task_attempt(t)));
        ag_graph_task_fail(t, "%s attempt %d", json_object_get(ag_graph_task_state(t), "fatal") ? "fatal" : "flaky",
                           ag_graph_task_attempt(t));
        return;
    }
    ag_graph_task_finish(t, json_pack("{s:i}", "attempts", ag_graph_task_attempt(t)));
}

static bool not_fatal(const char *error, void *ud)
{
    (void)ud;
    return !strstr(error, "fatal");
}

static void test_retry(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = ag_graph_def_new("retry");
    ag_graph_def_channel(g, "fails", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "fatal", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "attempts", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_node(g, "flaky", flaky, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "flaky");
    struct ag_graph_retry policy = {
        .max_attempts = 3, .initial_ms = 100, .backoff = 2, .max_ms = 150, .retry_on = not_fatal};
    CHECK(ag_graph_def_node_retry(g, "flaky", &policy) == 0);
    CHECK(ag_graph_def_node_retry(g, "nosuch", &policy) < 0);
    CHECKF(ag_graph_def_compile(g, err, sizeof err) == 0, "%s", err);

    /* fails twice, succeeds on the third attempt: 100 ms, then min(150, 200) ms later */
    r->now = 0;
    CHECK(start(r, g, (struct start_opts){.input = "{\"fails\":2}"}, err, sizeof err));
    CHECK(!r->done);
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "%s", r->error ? r->error : "");
    CHECK(json_integer_value(json_object_get(r->values, "attempts")) == 3);
    CHECK(r->now == 250 * 1000000ull);
    CHECK(count(r, "custom") == 2 && count(r, "task_start") == 1);
    rec_reset(r);

    /* out of attempts: the third failure fails the run */
    CHECK(start(r, g, (struct start_opts){.input = "{\"fails\":3}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_ERROR && r->error && !strcmp(r->error, "flaky attempt 3"));
    rec_reset(r);

    /* retry_on refuses: no second attempt */
    CHECK(start(r, g, (struct start_opts){.input = "{\"fails\":1,\"fatal\":true}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_ERROR && r->error && !strcmp(r->error, "fatal attempt 1"));
    CHECK(count(r, "custom") == 1);
    rec_reset(r);
    ag_graph_def_free(g);
}

/* --- the store from inside a node --- */

static json_t *mem_ns(void)
{
    return json_pack("[s,s]", "memories", "ada");
}

static void mem_5(struct ag_graph_task *t)
{
    json_t *log = json_object_get(ag_graph_task_ud(t), "log");
    json_array_append(log, ag_graph_task_store_result(t) ? (json_t *)ag_graph_task_store_result(t) : json_null());
    ag_graph_task_finish(t, json_pack("{s:O}", "log", log));
}

static void mem_4(struct ag_graph_task *t)
{
    json_t *log = json_object_get(ag_graph_task_ud(t), "log");
    json_array_append(log, (json_t *)ag_graph_task_store_result(t));
    json_t *ns = mem_ns();
    ag_graph_task_store_get(t, ns, "likes", mem_5);
    json_decref(ns);
}

static void mem_3(struct ag_graph_task *t)
{
    json_t *log = json_object_get(ag_graph_task_ud(t), "log");
    json_array_append_new(log, json_integer((json_int_t)json_array_size(ag_graph_task_store_result(t))));
    json_t *ns = mem_ns();
    ag_graph_task_store_delete(t, ns, "likes", mem_4);
    json_decref(ns);
}

static void mem_2(struct ag_graph_task *t)
{
    json_t *log = json_object_get(ag_graph_task_ud(t), "log");
    json_array_append(log, json_object_get(json_object_get(ag_graph_task_store_result(t), "value"), "food"));
    json_t *prefix = json_pack("[s]", "memories");
    ag_graph_task_store_search(t, prefix, NULL, 0, 0, mem_3);
    json_decref(prefix);
}

static void mem_1(struct ag_graph_task *t)
{
    json_t *ns = mem_ns();
    CHECK(!ag_graph_task_store_error(t));
    ag_graph_task_store_get(t, ns, "likes", mem_2);
    json_decref(ns);
}

static void bad_ns_done(struct ag_graph_task *t)
{
    const char *e = ag_graph_task_store_error(t);
    ag_graph_task_finish(t, json_pack("{s:[s]}", "log", e ? e : "(no error)"));
}

static void remember(struct ag_graph_task *t)
{
    const json_t *mode = json_object_get(ag_graph_task_state(t), "mode");
    if (json_is_string(mode)) {
        /* "bad": a label with a period; "down": a valid namespace, for a host that cannot start it */
        bool bad = !strcmp(json_string_value(mode), "bad");
        json_t *ns = bad ? json_pack("[s]", "has.dot") : mem_ns();
        ag_graph_task_store_get(t, ns, "k", bad_ns_done);
        json_decref(ns);
        return;
    }
    ag_graph_task_set_ud(t, json_pack("{s:[]}", "log"), (void (*)(void *))json_decref);
    json_t *ns = mem_ns();
    ag_graph_task_store_put(t, ns, "likes", json_pack("{s:s}", "food", "pie"), mem_1);
    json_decref(ns);
}

static void test_store(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = ag_graph_def_new("memory");
    ag_graph_def_channel(g, "log", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "mode", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_node(g, "remember", remember, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "remember");
    CHECKF(ag_graph_def_compile(g, err, sizeof err) == 0, "%s", err);

    /* put, get, search, delete, get: each answered in a later timer round, never inside the call */
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(!r->done && r->store_ops == 1);
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "%s", r->error ? r->error : "");
    json_t *want = parse("[\"pie\",1,null,null]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    CHECK(r->store_ops == 5 && json_object_size(r->store) == 0);
    rec_reset(r);

    /* a namespace label with a period: an error, the node goes on */
    r->store_ops = 0;
    CHECK(start(r, g, (struct start_opts){.input = "{\"mode\":\"bad\"}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_SUCCESS && r->store_ops == 0);
    CHECK(strstr(json_string_value(json_array_get(json_object_get(r->values, "log"), 0)), "invalid namespace"));
    rec_reset(r);

    /* the host cannot start it: an error for the node */
    r->store_down = true;
    CHECK(start(r, g, (struct start_opts){.input = "{\"mode\":\"down\"}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(r->values, "log"), 0)), "fake store down");
    rec_reset(r);
    r->store_down = false;

    /* cancelled with the put in flight: the operation is abandoned (the fake frees it), nothing re-enters */
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(!r->done);
    ag_graph_run_cancel(r->run);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_CANCELLED);
    CHECK(r->heap.len == 0);
    rec_reset(r);
    ag_graph_def_free(g);
}

/* --- subgraphs: outer START -> before -> sub (inner: i1 -> i2) -> after --- */

/* Appends the node's name (or, for i2 when asked, "i2:<answer>") to the REPLACE channel log. */
static void append_name(struct ag_graph_task *t)
{
    const json_t *st = ag_graph_task_state(t);
    const char *name = ag_graph_task_node(t);
    json_t *entry;
    if (json_is_true(json_object_get(st, "escape")) && (!strcmp(name, "i1") || !strcmp(name, "before"))) {
        /* Command(graph=PARENT): from i1 the subgraph ends; from before (the root graph) the task fails */
        ag_graph_task_finish_parent(t, json_pack("{s:[s]}", "log", "escaped"), json_string("after"));
        return;
    }
    if (!strcmp(name, "i2") && json_is_true(json_object_get(st, "ask"))) {
        json_t *answer = ag_graph_task_interrupt(t, json_string("inner?"));
        if (!answer) return;
        entry = json_sprintf("i2:%s", json_string_value(answer));
    } else {
        entry = json_string(name);
    }
    json_t *log = json_is_array(json_object_get(st, "log")) ? json_copy(json_object_get(st, "log")) : json_array();
    json_array_append_new(log, entry);
    ag_graph_task_finish(t, json_pack("{s:o}", "log", log));
}

static struct ag_graph_def *outer_graph(void)
{
    struct ag_graph_def *inner = ag_graph_def_new("inner");
    ag_graph_def_channel(inner, "log", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(inner, "ask", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(inner, "escape", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_node(inner, "i1", append_name, NULL);
    ag_graph_def_node(inner, "i2", append_name, NULL);
    ag_graph_def_edge(inner, AG_GRAPH_START, "i1");
    ag_graph_def_edge(inner, "i1", "i2");
    struct ag_graph_def *g = ag_graph_def_new("outer");
    ag_graph_def_channel(g, "log", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "ask", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "escape", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_node(g, "before", append_name, NULL);
    CHECK(ag_graph_def_subgraph(g, "sub", inner) == 0);
    CHECK(ag_graph_def_subgraph(g, "again", inner) < 0); /* one owner */
    ag_graph_def_node(g, "after", append_name, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "before");
    ag_graph_def_edge(g, "before", "sub");
    ag_graph_def_edge(g, "sub", "after");
    char err[256];
    CHECKF(ag_graph_def_compile(g, err, sizeof err) == 0, "%s", err);
    return g;
}

/* The last checkpoint of the run's own graph (not a subgraph's), a new reference. */
static json_t *latest_root(const struct rec *r)
{
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(r->events, i, e)
    {
        if (!strcmp(s_of(e, "kind"), "checkpoint") && !json_object_get(e, "ns")) found = json_object_get(e, "data");
    }
    return json_incref(found);
}

/* Events of kind in namespace ns prefix (NULL: the root's). */
static int count_ns(const struct rec *r, const char *kind, const char *ns_prefix)
{
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(r->events, i, e)
    {
        const char *ns = s_of(e, "ns");
        if (strcmp(s_of(e, "kind"), kind)) continue;
        if (ns_prefix ? ns && !strncmp(ns, ns_prefix, strlen(ns_prefix)) : !ns) n++;
    }
    return n;
}

static void test_subgraph(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = outer_graph();
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "%s", r->error ? r->error : "");
    json_t *want = parse("[\"before\",\"i1\",\"i2\",\"after\"]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    /* the subgraph's checkpoints and events carry its namespace, sub:<task id> */
    CHECK(count_ns(r, "checkpoint", "sub:") == 4); /* input, after start, after i1, after i2 */
    CHECK(count_ns(r, "task_start", "sub:") == 2);
    CHECK(count_ns(r, "task_start", NULL) == 3);
    char want_ns[64];
    snprintf(want_ns, sizeof want_ns, "sub:%s", s_of(nth(r, "task_start", 1), "id"));
    size_t i;
    json_t *e;
    json_array_foreach(r->events, i, e)
    {
        if (json_object_get(e, "ns")) CHECK_STREQ(s_of(e, "ns"), want_ns);
    }
    rec_reset(r);

    /* an interrupt inside the subgraph stops the parent; the resume goes on inside it */
    CHECK(start(r, g, (struct start_opts){.input = "{\"ask\":true}"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED && json_array_size(r->interrupts) == 1);
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(r->interrupts, 0), "value")), "inner?");
    json_t *from = latest_root(r);
    json_t *task = json_array_get(json_object_get(from, "tasks"), 0);
    CHECK_STREQ(s_of(task, "name"), "sub");
    CHECK(json_array_size(json_object_get(task, "interrupts")) == 1);
    CHECK(json_is_object(json_object_get(task, "subgraph_checkpoint")));
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"yes\"}", .from = from}, err, sizeof err));
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "%s", r->error ? r->error : "");
    want = parse("[\"before\",\"i1\",\"i2:yes\",\"after\"]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    CHECK(count_ns(r, "task_start", "sub:") == 1); /* i2 only: i1 ran before the interrupt */
    json_decref(from);
    rec_reset(r);

    /* Command(graph=PARENT) from i1: i2 never runs, the node's update is the command's, then after */
    CHECK(start(r, g, (struct start_opts){.input = "{\"log\":[],\"escape\":true}", .from = NULL}, err, sizeof err));
    run_timers(r);
    /* before runs in the root graph first: there the same call fails the task */
    CHECK(r->outcome == AG_GRAPH_ERROR && r->error && strstr(r->error, "runs as no subgraph"));
    rec_reset(r);
    json_t *vals = parse("{\"log\":[\"before\"],\"escape\":true}");
    json_t *ck = ag_graph_state_update(g, NULL, NULL, vals, "before", NULL, NULL, err, sizeof err);
    json_decref(vals);
    CHECK(start(r, g, (struct start_opts){.from = ck}, err, sizeof err));
    run_timers(r);
    CHECKF(r->outcome == AG_GRAPH_SUCCESS, "%s", r->error ? r->error : "");
    want = parse("[\"escaped\",\"after\"]");
    CHECK(json_equal(json_object_get(r->values, "log"), want));
    json_decref(want);
    CHECK(count_ns(r, "task_start", "sub:") == 1); /* i1 only */
    json_decref(ck);
    rec_reset(r);

    /* cancelled while the subgraph waits at a node: both stop, nothing left armed */
    CHECK(start(r, g, (struct start_opts){.input = "{\"ask\":true}"}, err, sizeof err));
    ag_graph_run_cancel(r->run);
    CHECK(r->outcome == AG_GRAPH_CANCELLED);
    rec_reset(r);
    CHECK(r->heap.len == 0);
    ag_graph_def_free(g);
}

int main(void)
{
    struct rec r;
    rec_init(&r);
    struct ag_graph_def *g = mapreduce();
    test_fanout_and_commands(&r, g);
    test_bad_goto(&r, g);
    test_interrupt_in_push(&r, g);
    test_state_update_fans_out(g);
    test_join(&r);
    test_retry(&r);
    test_store(&r);
    test_subgraph(&r);
    rec_free(&r);
    ag_graph_def_free(g);
    return CHECK_DONE();
}
