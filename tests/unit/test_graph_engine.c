/* The graph engine (graph/engine.h) driven by a recording host with a fake clock and a local timer heap:
 * event order and checkpoint chains, the built-in graphs, interrupts and resumes, interrupt_before/after,
 * fan-out and conditional edges, commands, failures, the recursion limit, the registry, a host that holds
 * a run between supersteps. State updates outside a run: test_graph_state.c. */
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "core/shard.h"
#include "core/timer.h"
#include "graph/builtin.h"
#include "graph/engine.h"
#include "graph_harness.h"
/* --- echo: events, checkpoint chain --- */

static void test_echo(struct rec *r)
{
    char err[256], k[1024];
    const struct ag_graph_def *g = ag_graph_def_find("echo");
    CHECK(g);
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"}, err,
                sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(kinds(r, k, sizeof k), "checkpoint values checkpoint task_start custom message updates task_result "
                                       "values checkpoint");
    json_t *c0 = nth(r, "checkpoint", 0), *c1 = nth(r, "checkpoint", 1), *c2 = nth(r, "checkpoint", 2);
    /* step -1: input, values before the input, next __start__ with the raw input as its result */
    CHECK(json_integer_value(json_object_get(c0, "step")) == -1);
    CHECK_STREQ(s_of(c0, "source"), "input");
    CHECK(json_is_null(json_object_get(c0, "parent_checkpoint_id")));
    CHECK(json_array_size(json_object_get(json_object_get(c0, "values"), "messages")) == 0);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c0, "next"), 0)), "__start__");
    json_t *t0 = json_array_get(json_object_get(c0, "tasks"), 0);
    CHECK_STREQ(s_of(t0, "name"), "__start__");
    CHECK_STREQ(s_of(json_array_get(json_object_get(json_object_get(t0, "result"), "messages"), 0), "role"), "user");
    json_t *m0 = json_object_get(c0, "metadata");
    CHECK_STREQ(s_of(m0, "source"), "input");
    CHECK(json_integer_value(json_object_get(m0, "step")) == -1);
    CHECK_STREQ(s_of(m0, "graph_id"), "echo");
    CHECK(json_is_object(json_object_get(m0, "parents")));
    /* step 0: loop, the human message, next echo */
    CHECK(json_integer_value(json_object_get(c1, "step")) == 0);
    CHECK_STREQ(s_of(c1, "source"), "loop");
    CHECK_STREQ(s_of(c1, "parent_checkpoint_id"), s_of(c0, "checkpoint_id"));
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c1, "next"), 0)), "echo");
    json_t *human = json_array_get(json_object_get(json_object_get(c1, "values"), "messages"), 0);
    CHECK_STREQ(s_of(human, "type"), "human");
    json_t *t1 = json_array_get(json_object_get(c1, "tasks"), 0);
    CHECK_STREQ(s_of(t1, "name"), "echo");
    CHECK(json_is_null(json_object_get(t1, "error")));
    CHECK(json_array_size(json_object_get(t1, "interrupts")) == 0);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(t1, "path"), 0)), "__pregel_pull");
    /* step 1: both messages, next [] */
    CHECK(json_integer_value(json_object_get(c2, "step")) == 1);
    CHECK_STREQ(s_of(c2, "parent_checkpoint_id"), s_of(c1, "checkpoint_id"));
    CHECK(json_array_size(json_object_get(c2, "next")) == 0);
    CHECK(json_array_size(json_object_get(c2, "tasks")) == 0);
    CHECK(strcmp(s_of(c0, "checkpoint_id"), s_of(c1, "checkpoint_id")) < 0);
    CHECK(strcmp(s_of(c1, "checkpoint_id"), s_of(c2, "checkpoint_id")) < 0);
    CHECK(s_of(c1, "checkpoint_id")[14] == '6');
    json_t *ai = last_message(json_object_get(c2, "values"));
    CHECK_STREQ(s_of(ai, "type"), "ai");
    CHECK_STREQ(s_of(ai, "content"), "hello");
    CHECK(json_is_array(json_object_get(ai, "tool_calls")));
    CHECK(json_equal(r->values, json_object_get(c2, "values")));
    /* the events around the node */
    CHECK_STREQ(s_of(nth(r, "custom", 0), "echo"), "hello");
    json_t *upd = nth(r, "updates", 0);
    CHECK_STREQ(s_of(last_message(json_object_get(upd, "echo")), "id"), s_of(ai, "id"));
    json_t *msg = nth(r, "message", 0);
    CHECK_STREQ(s_of(msg, "id"), s_of(ai, "id"));
    json_t *ev = json_array_get(r->events, 5);
    json_t *meta = json_object_get(ev, "meta");
    CHECK(json_integer_value(json_object_get(meta, "langgraph_step")) == 1);
    CHECK_STREQ(s_of(meta, "langgraph_node"), "echo");
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(meta, "langgraph_triggers"), 0)), "branch:to:echo");
    char ns[128];
    snprintf(ns, sizeof ns, "echo:%s", s_of(t1, "id"));
    CHECK_STREQ(s_of(meta, "langgraph_checkpoint_ns"), ns);
    CHECK_STREQ(s_of(meta, "checkpoint_ns"), ns);
    CHECK_STREQ(s_of(meta, "graph_id"), "echo");
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(meta, "tags"), 0)), "graph:step:1");
    json_t *ts = nth(r, "task_start", 0);
    CHECK_STREQ(s_of(ts, "id"), s_of(t1, "id"));
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(ts, "triggers"), 0)), "branch:to:echo");
    CHECK(json_equal(json_object_get(ts, "input"), json_object_get(c1, "values")));
    json_t *tr = nth(r, "task_result", 0);
    CHECK(json_is_null(json_object_get(tr, "error")));
    CHECK(json_equal(json_object_get(tr, "result"), json_object_get(upd, "echo")));
    /* VALUES after step 0 and step 1, not after the input checkpoint */
    CHECK(json_equal(nth(r, "values", 0), json_object_get(c1, "values")));

    /* A second run on the same thread continues its steps: input 2, loop 3, loop 4. */
    json_t *from = latest(r);
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":\"again\"}", .from = from}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK(json_integer_value(json_object_get(nth(r, "checkpoint", 0), "step")) == 2);
    CHECK_STREQ(s_of(nth(r, "checkpoint", 0), "parent_checkpoint_id"), s_of(from, "checkpoint_id"));
    CHECK(json_integer_value(json_object_get(nth(r, "checkpoint", 2), "step")) == 4);
    CHECK(json_array_size(json_object_get(r->values, "messages")) == 4);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "again");
    json_decref(from);
    rec_reset(r);

    /* A message that cannot be coerced ends the run in error, after the input checkpoint. */
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}"}, err,
                sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_ERROR);
    CHECK(r->error && strstr(r->error, "Unexpected message type"));
    CHECK(count(r, "checkpoint") == 2 && count(r, "task_result") == 0);
    CHECK_STREQ(s_of(nth(r, "checkpoint", 0), "checkpoint_id"), s_of(nth(r, "checkpoint", 1), "checkpoint_id"));
    CHECK(strstr(s_of(json_array_get(json_object_get(nth(r, "checkpoint", 1), "tasks"), 0), "error"), "wizard"));
    rec_reset(r);

    /* Invalid parameters. */
    CHECK(!start(r, g, (struct start_opts){.input = "[1]"}, err, sizeof err));
    CHECK(!start(r, g, (struct start_opts){0}, err, sizeof err));
    CHECK(strstr(err, "no input"));
    CHECK(!start(r, g, (struct start_opts){.input = "{}", .ibefore = "[\"nope\"]"}, err, sizeof err));
    CHECK(strstr(err, "unknown node"));
    CHECK(!start(r, g, (struct start_opts){.command = "{\"resume\":1}"}, err, sizeof err));
    CHECK(r->done == 0 && json_array_size(r->events) == 0);
}

/* --- stress: tokens, modes, delays, cancel --- */

static void test_stress(struct rec *r)
{
    char err[256], k[1024];
    const struct ag_graph_def *g = ag_graph_def_find("stress");
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}",
                                    .config = "{\"configurable\":{\"tokens\":3}}"},
                err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(kinds(r, k, sizeof k), "checkpoint values checkpoint task_start custom custom custom message message "
                                       "message updates task_result values checkpoint");
    CHECK(json_integer_value(json_object_get(nth(r, "custom", 2), "index")) == 2);
    CHECK_STREQ(s_of(nth(r, "custom", 1), "token"), "t1");
    json_t *c0 = nth(r, "message", 0), *c1 = nth(r, "message", 1);
    CHECK_STREQ(s_of(c0, "content"), "t0");
    CHECK_STREQ(s_of(c1, "content"), " t1");
    CHECK_STREQ(s_of(c0, "type"), "ai");
    CHECK(!strncmp(s_of(c0, "id"), "run-", 4));
    CHECK_STREQ(s_of(c0, "id"), s_of(c1, "id"));
    json_t *final = last_message(r->values);
    CHECK_STREQ(s_of(final, "content"), "t0 t1 t2");
    CHECK_STREQ(s_of(final, "id"), s_of(c0, "id"));
    json_t *meta = json_object_get(json_array_get(r->events, 7), "meta");
    CHECK(json_array_size(json_object_get(meta, "tags")) == 0);
    CHECK_STREQ(s_of(meta, "langgraph_node"), "emit");
    rec_reset(r);

    /* mode custom: no chunks; the final message is shown in messages mode at the node's end */
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":\"4\",\"mode\":\"custom\"}}"},
                err, sizeof err));
    CHECK(r->done == 1);
    CHECK(count(r, "custom") == 4 && count(r, "message") == 1);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "t0 t1 t2 t3");
    CHECK_STREQ(s_of(nth(r, "message", 0), "id"), s_of(last_message(r->values), "id"));
    rec_reset(r);

    /* defaults: 10 tokens, both */
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":[]}"}, err, sizeof err));
    CHECK(count(r, "custom") == 10 && count(r, "message") == 10);
    rec_reset(r);

    /* messages with a delay: one model call per token (own ids), then a new message with what they said */
    r->now = 1000;
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":3,\"mode\":\"messages\",\"delay_ms\":100}}"},
                err, sizeof err));
    CHECK(r->done == 0 && count(r, "message") == 1);
    run_timers(r);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK(r->now == 1000 + 3 * 100 * 1000000ull);
    CHECK(count(r, "message") == 4);
    CHECK(strcmp(s_of(nth(r, "message", 0), "id"), s_of(nth(r, "message", 1), "id")));
    CHECK_STREQ(s_of(last_message(r->values), "content"), "t0 t1 t2");
    CHECK(strncmp(s_of(last_message(r->values), "id"), "run-", 4));
    rec_reset(r);

    /* both with a delay: custom tokens first, each followed by a sleep */
    r->now = 0;
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":2,\"delay_ms\":5}}"},
                err, sizeof err));
    run_timers(r);
    CHECK(r->done == 1 && r->now == 4 * 5 * 1000000ull);
    CHECK_STREQ(kinds(r, k, sizeof k), "checkpoint values checkpoint task_start custom custom message message message "
                                       "updates task_result values checkpoint");
    rec_reset(r);

    /* many tokens without a delay yield to the loop whenever the shard's work budget for the turn is spent
     * (events and node calls count), and still finish; the node is named to the stall report */
    r->shard = ag_calloc(1, sizeof *r->shard);
    r->turn_work = 100;
    r->shard->work_left = r->turn_work;
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":1000,\"mode\":\"custom\"}}"},
                err, sizeof err));
    CHECKF(r->done == 0, "a 1000-token run with a budget of 100 ended within its first turn");
    run_timers(r);
    CHECKF(r->done == 1 && count(r, "custom") == 1000, "done %d, %d custom events", r->done, count(r, "custom"));
    CHECKF(r->max_turn_events <= r->turn_work, "%u events in one turn with a budget of %u", r->max_turn_events,
           r->turn_work);
    /* what ran longest: a node call, or (on a slow machine) the step's completion */
    CHECKF(!strcmp(r->shard->act.top, "graph=stress node=emit run=run-1") ||
               !strcmp(r->shard->act.top, "graph=stress step=1 run=run-1"),
           "activity named \"%s\"", r->shard->act.top);
    rec_reset(r);
    ag_free(r->shard);
    r->shard = NULL;

    /* the stress graph's config check: tokens beyond the maximum are refused, naming the key */
    {
        const char *key = NULL;
        char msg[128] = "";
        json_t *ok = json_pack("{s:i}", "tokens", AG_GRAPH_STRESS_TOKENS_MAX);
        json_t *big = json_pack("{s:f}", "tokens", 1e6);
        CHECK(ag_graph_def_check_config(g, ok, &key, msg, sizeof msg) == 0);
        CHECK(ag_graph_def_check_config(g, NULL, &key, msg, sizeof msg) == 0);
        CHECK(ag_graph_def_check_config(g, big, &key, msg, sizeof msg) == -1);
        CHECK_STREQ(key, "tokens");
        json_decref(ok);
        json_decref(big);
    }

    /* cancel mid-run: timers disarmed, on_done(CANCELLED) once, nothing leaks */
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":20,\"delay_ms\":100}}"},
                err, sizeof err));
    r->now += 250 * 1000000ull;
    ag_timer_run(&r->heap, r->now, 64, NULL);
    ag_timer_run(&r->heap, r->now, 64, NULL);
    CHECK(r->done == 0 && count(r, "custom") == 2);
    ag_graph_run_cancel(r->run);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_CANCELLED);
    CHECK(r->heap.len == 0);
    ag_graph_run_cancel(r->run);
    CHECK(r->done == 1);
    rec_reset(r);

    /* cancel from inside an event callback, while the node is running */
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":3,\"delay_ms\":10}}"},
                err, sizeof err));
    r->cancel_on_custom = true;
    run_timers(r);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_CANCELLED);
    CHECK(count(r, "custom") == 2 && count(r, "updates") == 0 && r->heap.len == 0);
    rec_reset(r);

    /* freeing a run that still sleeps cancels it */
    CHECK(start(r, g,
                (struct start_opts){.input = "{\"messages\":[]}",
                                    .config = "{\"configurable\":{\"tokens\":5,\"delay_ms\":100}}"},
                err, sizeof err));
    ag_graph_run_free(r->run);
    r->run = NULL;
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_CANCELLED && r->heap.len == 0);
    rec_reset(r);
}

/* --- interrupts and resumes --- */

static void test_interrupt(struct rec *r)
{
    char err[256];
    const struct ag_graph_def *g = ag_graph_def_find("interrupt");
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}"}, err,
                sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_INTERRUPTED);
    CHECK(json_array_size(r->interrupts) == 1);
    json_t *intr = json_array_get(r->interrupts, 0);
    CHECK(is_hex32(s_of(intr, "id")));
    CHECK_STREQ(s_of(json_object_get(intr, "value"), "question"), "what now?");
    /* the step-0 checkpoint comes again with the interrupt on its task */
    CHECK(count(r, "checkpoint") == 3);
    json_t *c1 = nth(r, "checkpoint", 1), *c2 = nth(r, "checkpoint", 2);
    CHECK_STREQ(s_of(c1, "checkpoint_id"), s_of(c2, "checkpoint_id"));
    json_t *task = json_array_get(json_object_get(c2, "tasks"), 0);
    CHECK(json_equal(json_object_get(task, "interrupts"), r->interrupts));
    CHECK(json_is_null(json_object_get(task, "result")));
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c2, "next"), 0)), "ask");
    json_t *upd = nth(r, "updates", 0);
    CHECK(json_equal(json_object_get(upd, "__interrupt__"), r->interrupts));
    CHECK(count(r, "values") == 1);
    json_t *tres = nth(r, "task_result", 0);
    CHECK(json_equal(json_object_get(tres, "interrupts"), r->interrupts));
    char ks[512];
    CHECK_STREQ(kinds(r, ks, sizeof ks), "checkpoint values checkpoint task_start updates task_result checkpoint");
    char iid[33];
    snprintf(iid, sizeof iid, "%s", s_of(intr, "id"));
    json_t *from = latest(r);
    rec_reset(r);

    /* no pending interrupt for a map with another id; a bare value resumes */
    CHECK(!start(r, g, (struct start_opts){.command = "{\"resume\":{\"0123456789abcdef0123456789abcdef\":1}}", .from = from},
                 err, sizeof err));
    CHECK(strstr(err, "no pending interrupt has id"));
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"yes\"}", .from = from}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "you said: yes");
    CHECK(count(r, "checkpoint") == 1);
    json_t *c = nth(r, "checkpoint", 0);
    CHECK(json_integer_value(json_object_get(c, "step")) == 1);
    CHECK_STREQ(s_of(c, "parent_checkpoint_id"), s_of(from, "checkpoint_id"));
    /* the resume starts with the state (LangGraph's values on resume) */
    char k[512];
    CHECK_STREQ(kinds(r, k, sizeof k), "values task_start message updates task_result values checkpoint");
    json_t *done_ckpt = latest(r);
    rec_reset(r);

    /* by id, with a non-string answer */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "{\"resume\":{\"%s\":{\"a\":1}}}", iid);
    CHECK(start(r, g, (struct start_opts){.command = cmd, .from = from}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "you said: {\"a\":1}");
    rec_reset(r);

    /* nothing pending any more */
    CHECK(!start(r, g, (struct start_opts){.command = "{\"resume\":\"again\"}", .from = done_ckpt}, err, sizeof err));
    CHECK(strstr(err, "no pending interrupt"));
    json_decref(done_ckpt);
    json_decref(from);
}

/* A node with two interrupts: each resume answers the next one. */
static void two_questions(struct ag_graph_task *t)
{
    json_t *a = ag_graph_task_interrupt(t, json_string("first?"));
    if (!a)
        return;
    json_t *b = ag_graph_task_interrupt(t, json_string("second?"));
    if (!b)
        return;
    ag_graph_task_finish(t, json_pack("{s:[O,O]}", "log", a, b));
}

static void test_two_interrupts(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = ag_graph_def_new("two");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "q", two_questions, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "q");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED);
    char first[33];
    snprintf(first, sizeof first, "%s", s_of(json_array_get(r->interrupts, 0), "id"));
    json_t *from = latest(r);
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"x\"}", .from = from}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED);
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(r->interrupts, 0), "value")), "second?");
    CHECK(strcmp(s_of(json_array_get(r->interrupts, 0), "id"), first));
    json_decref(from);
    from = latest(r);
    json_t *task = json_array_get(json_object_get(from, "tasks"), 0);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(task, "resume"), 0)), "x");
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"y\"}", .from = from}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    json_t *want = parse("{\"log\":[\"x\",\"y\"]}");
    CHECK(json_equal(r->values, want));
    json_decref(want);
    json_decref(from);
    rec_reset(r);
    ag_graph_def_free(g);
}

static void write_name(struct ag_graph_task *t);

/* One node of a fan-out step interrupts, its sibling finishes: the sibling's result is kept in the
 * checkpoint and not run again on resume; both updates apply once. */
static void ask_log(struct ag_graph_task *t)
{
    json_t *a = ag_graph_task_interrupt(t, json_string("?"));
    if (a)
        ag_graph_task_finish(t, json_pack("{s:[O]}", "log", a));
}

static void test_interrupt_sibling(struct rec *r)
{
    char err[256], k[512];
    struct ag_graph_def *g = ag_graph_def_new("sib");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "a", ask_log, NULL);
    ag_graph_def_node(g, "b", write_name, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, AG_GRAPH_START, "b");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED);
    json_t *from = latest(r);
    json_t *tb = json_array_get(json_object_get(from, "tasks"), 1);
    CHECK_STREQ(s_of(tb, "name"), "b");
    CHECK(json_array_size(json_object_get(json_object_get(tb, "result"), "log")) == 1);
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.command = "{\"resume\":\"A\"}", .from = from}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(kinds(r, k, sizeof k), "values task_start updates task_result values checkpoint");
    json_t *want = parse("{\"log\":[\"A\",\"b\"]}");
    CHECK(json_equal(r->values, want));
    json_decref(want);
    json_decref(from);
    rec_reset(r);
    ag_graph_def_free(g);
}

/* --- interrupt_before / interrupt_after --- */

static void test_interrupt_before_after(struct rec *r)
{
    char err[256];
    const struct ag_graph_def *g = ag_graph_def_find("echo");
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":\"hi\"}", .ibefore = "[\"echo\"]"}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_INTERRUPTED);
    CHECK(json_array_size(r->interrupts) == 0);
    CHECK(count(r, "task_start") == 0);
    json_t *upd = nth(r, "updates", 0);
    CHECK(json_is_array(json_object_get(upd, "__interrupt__")));
    json_t *from = latest(r);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(from, "next"), 0)), "echo");
    rec_reset(r);
    /* input null continues past the interrupt, even with interrupt_before still set */
    CHECK(start(r, g, (struct start_opts){.from = from, .ibefore = "\"*\""}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "hi");
    CHECK_STREQ(s_of(nth(r, "checkpoint", 0), "parent_checkpoint_id"), s_of(from, "checkpoint_id"));
    json_decref(from);
    rec_reset(r);

    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":\"hi\"}", .iafter = "\"*\""}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_INTERRUPTED);
    CHECK(count(r, "checkpoint") == 3);
    from = latest(r);
    CHECK(json_array_size(json_object_get(from, "next")) == 0);
    rec_reset(r);
    /* nothing pending: the continuation ends at once with the values */
    CHECK(start(r, g, (struct start_opts){.from = from}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS && count(r, "checkpoint") == 0);
    CHECK(json_array_size(json_object_get(r->values, "messages")) == 2);
    json_decref(from);
    rec_reset(r);
}

/* --- fan-out, conditional edges, deterministic order, reducers --- */

static void write_name(struct ag_graph_task *t)
{
    ag_graph_task_finish(t, json_pack("{s:[s]}", "log", ag_graph_task_node(t)));
}

static void slow_write_name(struct ag_graph_task *t)
{
    if (ag_graph_task_slots(t)[0]++ == 0) {
        ag_graph_task_sleep(t, 10, slow_write_name);
        return;
    }
    write_name(t);
}

static void count_up(struct ag_graph_task *t)
{
    json_int_t n = json_integer_value(json_object_get(ag_graph_task_state(t), "count"));
    ag_graph_task_finish(t, json_pack("{s:[s],s:I}", "log", "c", "count", n + 1));
}

static const char *again_or_end(const json_t *state, const json_t *config, void *ud)
{
    (void)config;
    (void)ud;
    return json_integer_value(json_object_get(state, "count")) < 3 ? "c" : AG_GRAPH_END;
}

static const char *to_nowhere(const json_t *state, const json_t *config, void *ud)
{
    return "nowhere";
}

static void test_fanout(struct rec *r)
{
    char err[256], k[1024];
    struct ag_graph_def *g = ag_graph_def_new("fan");
    CHECK(ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL) == 0);
    CHECK(ag_graph_def_channel(g, "count", AG_GRAPH_REPLACE, json_integer(0)) == 0);
    CHECK(ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL) < 0);
    /* defined b before a, and a is the slow one: the updates still apply in name order */
    CHECK(ag_graph_def_node(g, "b", write_name, NULL) == 0);
    CHECK(ag_graph_def_node(g, "a", slow_write_name, NULL) == 0);
    CHECK(ag_graph_def_node(g, "c", count_up, NULL) == 0);
    CHECK(ag_graph_def_node(g, AG_GRAPH_END, write_name, NULL) < 0);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, AG_GRAPH_START, "b");
    ag_graph_def_edge(g, "a", "c");
    ag_graph_def_edge(g, "b", "c");
    static const char *const targets[] = {"c", AG_GRAPH_END, NULL};
    ag_graph_def_conditional(g, "c", again_or_end, NULL, targets);
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    const struct ag_graph_info *info = ag_graph_def_info(g);
    CHECK(info->nnodes == 5 && info->nedges == 6);
    CHECK(info->edges[5].conditional);

    CHECK(start(r, g, (struct start_opts){.input = "{\"log\":[\"in\"]}"}, err, sizeof err));
    CHECK(r->done == 0);
    run_timers(r);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    json_t *want = parse("{\"log\":[\"in\",\"a\",\"b\",\"c\",\"c\",\"c\"],\"count\":3}");
    CHECK(json_equal(r->values, want));
    json_decref(want);
    json_t *c1 = nth(r, "checkpoint", 1);
    CHECK(json_array_size(json_object_get(c1, "next")) == 2);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c1, "next"), 0)), "a");
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c1, "next"), 1)), "b");
    /* b finished first (a slept) but its task started second; c ran once after both */
    CHECK_STREQ(kinds(r, k, sizeof k),
                "checkpoint values checkpoint task_start task_start updates task_result updates task_result values "
                "checkpoint task_start updates task_result values checkpoint task_start updates task_result values "
                "checkpoint task_start updates task_result values checkpoint");
    CHECK_STREQ(s_of(nth(r, "task_start", 0), "name"), "a");
    CHECK(json_object_get(nth(r, "updates", 0), "b"));
    CHECK(json_array_size(json_object_get(nth(r, "checkpoint", 2), "next")) == 1);
    CHECK(count(r, "checkpoint") == 6);
    CHECK(json_integer_value(json_object_get(nth(r, "checkpoint", 5), "step")) == 4);
    rec_reset(r);

    /* with a run work budget of 3 units a turn, the supersteps spread over more turns (a superstep waits for
     * the next turn once the budget is spent); the outcome and the events stay the same */
    r->turns = 0;
    CHECK(start(r, g, (struct start_opts){.input = "{\"log\":[\"in\"]}"}, err, sizeof err));
    run_timers(r);
    unsigned free_turns = r->turns;
    char k_free[1024];
    kinds(r, k_free, sizeof k_free);
    rec_reset(r);
    r->shard = ag_calloc(1, sizeof *r->shard);
    r->turn_work = 3;
    r->shard->work_left = r->turn_work;
    r->turns = 0;
    CHECK(start(r, g, (struct start_opts){.input = "{\"log\":[\"in\"]}"}, err, sizeof err));
    run_timers(r);
    CHECKF(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS, "done %d outcome %d", r->done, (int)r->outcome);
    CHECKF(r->turns > free_turns, "%u turns with a budget of 3, %u without", r->turns, free_turns);
    want = parse("{\"log\":[\"in\",\"a\",\"b\",\"c\",\"c\",\"c\"],\"count\":3}");
    CHECK(json_equal(r->values, want));
    json_decref(want);
    CHECK_STREQ(kinds(r, k, sizeof k), k_free);
    rec_reset(r);
    ag_free(r->shard);
    r->shard = NULL;

    /* recursion limit: 3 supersteps allowed (__start__, a+b, c) */
    CHECK(start(r, g, (struct start_opts){.input = "{}", .limit = 3}, err, sizeof err));
    run_timers(r);
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_ERROR);
    CHECK_STREQ(r->error, "Recursion limit of 3 reached without hitting a stop condition. You can increase the limit "
                          "by setting the \"recursionLimit\" config key.");
    rec_reset(r);

    /* interrupt_after a node in a fan-out step; continue */
    CHECK(start(r, g, (struct start_opts){.input = "{}", .iafter = "[\"b\"]"}, err, sizeof err));
    run_timers(r);
    CHECK(r->outcome == AG_GRAPH_INTERRUPTED);
    json_t *from = latest(r);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(from, "next"), 0)), "c");
    rec_reset(r);
    CHECK(start(r, g, (struct start_opts){.from = from}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK(json_integer_value(json_object_get(r->values, "count")) == 3);
    json_decref(from);
    rec_reset(r);

    /* command.goto and command.update (pairs) on a finished thread: an update checkpoint, then the step */
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    run_timers(r);
    from = latest(r);
    rec_reset(r);
    CHECK(!start(r, g, (struct start_opts){.command = "{\"goto\":\"zzz\"}", .from = from}, err, sizeof err));
    CHECK(strstr(err, "unknown node"));
    CHECK(start(r, g,
                (struct start_opts){.command = "{\"update\":[[\"log\",\"u1\"],[\"log\",[\"u2\"]],[\"count\",0]],"
                                               "\"goto\":\"b\"}",
                                    .from = from},
                err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    json_t *u = nth(r, "checkpoint", 0);
    CHECK_STREQ(s_of(u, "source"), "update");
    CHECK(json_integer_value(json_object_get(u, "step")) == json_integer_value(json_object_get(from, "step")) + 1);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(u, "next"), 0)), "b");
    want = parse("{\"log\":[\"a\",\"b\",\"c\",\"c\",\"c\",\"u1\",\"u2\",\"b\",\"c\",\"c\",\"c\"],\"count\":3}");
    CHECK(json_equal(r->values, want));
    json_decref(want);
    rec_reset(r);
    /* two writes to a REPLACE channel in one update */
    CHECK(!start(r, g, (struct start_opts){.command = "{\"update\":[[\"count\",1],[\"count\",2]]}", .from = from}, err,
                 sizeof err));
    CHECK(strstr(err, "LastValue"));
    json_decref(from);
    rec_reset(r);
    ag_graph_def_free(g);

    /* a router naming an unknown node */
    g = ag_graph_def_new("lost");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "a", write_name, NULL);
    ag_graph_def_conditional(g, AG_GRAPH_START, to_nowhere, NULL, NULL);
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_ERROR && strstr(r->error, "nowhere"));
    rec_reset(r);
    ag_graph_def_free(g);

    g = ag_graph_def_new("bad");
    ag_graph_def_node(g, "a", write_name, NULL);
    ag_graph_def_edge(g, "a", "b");
    CHECK(ag_graph_def_compile(g, err, sizeof err) < 0);
    ag_graph_def_free(g);
}

/* --- failures --- */

static void boom(struct ag_graph_task *t)
{
    ag_graph_task_fail(t, "boom %d", 42);
}

static void forgetful(struct ag_graph_task *t)
{
    (void)t;
}

static void sleepy(struct ag_graph_task *t)
{
    ag_graph_task_set_ud(t, ag_malloc(16), ag_free);
    ag_graph_task_sleep(t, 1000, write_name);
}

static void test_failures(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = ag_graph_def_new("fails");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "a", sleepy, NULL);
    ag_graph_def_node(g, "b", boom, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, AG_GRAPH_START, "b");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_ERROR);
    CHECK_STREQ(r->error, "boom 42");
    CHECK(r->heap.len == 0);
    json_t *tr = nth(r, "task_result", 0);
    CHECK_STREQ(s_of(tr, "error"), "boom 42");
    json_t *c = latest(r);
    CHECK(count(r, "checkpoint") == 3);
    json_t *tb = json_array_get(json_object_get(c, "tasks"), 1);
    CHECK_STREQ(s_of(tb, "error"), "boom 42");
    json_decref(c);
    rec_reset(r);
    ag_graph_def_free(g);

    g = ag_graph_def_new("forgets");
    ag_graph_def_node(g, "a", forgetful, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_ERROR && strstr(r->error, "returned without finishing"));
    rec_reset(r);
    ag_graph_def_free(g);
}

/* A node that finishes from its own completion (here: the test, later). */
static struct ag_graph_task *parked;
static int parked_freed;

static void park(struct ag_graph_task *t)
{
    ag_graph_task_set_ud(t, &parked_freed, NULL);
    parked = t;
    ag_graph_task_pending(t);
}

static void count_free(void *ud)
{
    (*(int *)ud)++;
}

static void park_counted(struct ag_graph_task *t)
{
    ag_graph_task_set_ud(t, &parked_freed, count_free);
    parked = t;
    ag_graph_task_pending(t);
}

static void test_pending(struct rec *r)
{
    char err[256];
    struct ag_graph_def *g = ag_graph_def_new("park");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "p", park, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "p");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    CHECK(r->done == 0 && parked && r->heap.len == 0);
    CHECK(ag_graph_task_ud(parked) == &parked_freed);
    CHECK_STREQ(ag_graph_task_node(parked), "p");
    CHECK(ag_graph_task_step(parked) == 1);
    ag_graph_task_custom(parked, json_pack("{s:i}", "later", 1));
    ag_graph_task_finish(parked, json_pack("{s:[s]}", "log", "late"));
    parked = NULL;
    CHECK(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS);
    CHECK(count(r, "custom") == 1);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(r->values, "log"), 0)), "late");
    rec_reset(r);
    ag_graph_def_free(g);

    /* cancelled while pending: its ud is freed once */
    g = ag_graph_def_new("park2");
    ag_graph_def_node(g, "p", park_counted, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "p");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    parked_freed = 0;
    CHECK(start(r, g, (struct start_opts){.input = "{}"}, err, sizeof err));
    ag_graph_run_cancel(r->run);
    CHECK(r->outcome == AG_GRAPH_CANCELLED && parked_freed == 1);
    rec_reset(r);
    CHECK(parked_freed == 1);
    parked = NULL;
    ag_graph_def_free(g);
}

/* --- the registry --- */

static void test_registry(void)
{
    CHECK(ag_graph_count() == 3);
    CHECK_STREQ(ag_graph_at(0)->graph_id, "echo");
    CHECK_STREQ(ag_graph_at(1)->graph_id, "stress");
    CHECK_STREQ(ag_graph_at(2)->graph_id, "interrupt");
    const struct ag_graph_info *e = ag_graph_find("echo");
    CHECK_STREQ(e->assistant_id, "046b5dc7-2108-582c-9c6c-31d556d138f0");
    CHECK_STREQ(ag_graph_resolve_assistant("stress"), "a2613945-cc44-5b9d-b20b-aa8f8497bb3b");
    CHECK_STREQ(ag_graph_resolve_assistant("interrupt"), "2e6b29d1-4009-5fcc-9319-4cffb1865dfe");
    CHECK(e->nnodes == 3 && e->nedges == 2);
    CHECK_STREQ(e->nodes[1].id, "echo");
    CHECK(e->def == ag_graph_def_find("echo"));
    CHECK(strstr(ag_graph_find("stress")->config_schema, "delay_ms"));
    json_t *s = json_loads(e->state_schema, 0, NULL);
    CHECK(json_is_object(s));
    json_decref(s);
    char err[128];
    struct ag_graph_def *dup = ag_graph_builtin_echo();
    CHECK(ag_graph_register(dup, err, sizeof err) < 0);
    CHECK(strstr(err, "twice"));
    ag_graph_def_free(dup);
}

/* A host that holds the next superstep back (durability "sync") stops the run between supersteps, after
 * the step's checkpoint, until ag_graph_run_proceed; proceeding while not held does nothing. */
static void test_hold(struct rec *r)
{
    char err[256], k[512];
    const struct ag_graph_def *g = ag_graph_def_find("echo");
    r->hold = true;
    CHECK(start(r, g, (struct start_opts){.input = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"}, err,
                sizeof err));
    CHECKF(r->done == 0 && r->holds_asked > 0, "done %d, asked %d", r->done, r->holds_asked);
    CHECK_STREQ(kinds(r, k, sizeof k), "checkpoint"); /* the input's checkpoint, then it waits */
    run_timers(r);
    CHECKF(r->done == 0 && count(r, "checkpoint") == 1, "a held run went on by itself (%s)", kinds(r, k, sizeof k));
    ag_graph_run_proceed(r->run); /* still held: the run asks again and stays */
    run_timers(r);
    CHECK(r->done == 0 && count(r, "checkpoint") == 1);
    r->hold = false;
    ag_graph_run_proceed(r->run);
    CHECK(r->done == 0); /* later, not inside the call */
    run_timers(r);
    CHECKF(r->done == 1 && r->outcome == AG_GRAPH_SUCCESS, "done %d outcome %d", r->done, (int)r->outcome);
    CHECK(count(r, "checkpoint") == 3);
    ag_graph_run_proceed(r->run); /* an ended run: nothing */
    CHECK(r->heap.len == 0);
    rec_reset(r);
    r->hold = false;
    r->holds_asked = 0;
}

int main(void)
{
    struct rec r;
    rec_init(&r);
    test_registry();
    test_echo(&r);
    rec_reset(&r);
    test_stress(&r);
    rec_reset(&r);
    test_interrupt(&r);
    rec_reset(&r);
    test_two_interrupts(&r);
    test_interrupt_sibling(&r);
    test_interrupt_before_after(&r);
    test_fanout(&r);
    test_failures(&r);
    test_pending(&r);
    test_hold(&r);
    rec_free(&r);
    return CHECK_DONE();
}
