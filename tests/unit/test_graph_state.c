/* State updates outside a run (graph/engine.h: ag_graph_state_update, ag_graph_state_step), checked on
 * the built-in echo graph and on a graph of its own, and a run that continues from an update. */
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "graph/builtin.h"
#include "graph/engine.h"
#include "graph_harness.h"

/* The nodes of the test's own graph: a state update never calls a node. */
static void never_runs(struct ag_graph_task *t)
{
    (void)t;
    CHECKF(false, "a node ran during a state update");
}

static void test_state_update(struct rec *r)
{
    char err[256];
    const struct ag_graph_def *g = ag_graph_def_find("echo");
    json_t *vals = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"injected\"}]}");
    /* no state yet: as START, so echo is next */
    json_t *c = ag_graph_state_update(g, NULL, NULL, vals, NULL, NULL, NULL, err, sizeof err);
    CHECK(c);
    CHECK_STREQ(s_of(c, "source"), "update");
    CHECK(json_integer_value(json_object_get(c, "step")) == -1);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c, "next"), 0)), "echo");
    CHECK_STREQ(s_of(json_object_get(c, "metadata"), "source"), "update");
    /* a run continues from it with null input */
    CHECK(start(r, g, (struct start_opts){.from = c}, err, sizeof err));
    CHECK(r->outcome == AG_GRAPH_SUCCESS);
    CHECK_STREQ(s_of(last_message(r->values), "content"), "injected");
    json_t *l = latest(r);
    rec_reset(r);
    /* as echo: nothing next; as NULL on a one-node graph: echo too */
    json_t *c2 = ag_graph_state_update(g, l, NULL, vals, "echo", NULL, NULL, err, sizeof err);
    CHECK(c2 && json_array_size(json_object_get(c2, "next")) == 0);
    CHECK(json_integer_value(json_object_get(c2, "step")) == json_integer_value(json_object_get(l, "step")) + 1);
    CHECK_STREQ(s_of(c2, "parent_checkpoint_id"), s_of(l, "checkpoint_id"));
    CHECK(json_array_size(json_object_get(json_object_get(c2, "values"), "messages")) == 3);
    json_t *c3 = ag_graph_state_update(g, l, NULL, NULL, NULL, NULL, NULL, err, sizeof err);
    CHECK(c3 && json_array_size(json_object_get(c3, "next")) == 0);
    json_t *c4 = ag_graph_state_update(g, l, NULL, vals, AG_GRAPH_START, NULL, NULL, err, sizeof err);
    CHECK(c4 && json_array_size(json_object_get(c4, "next")) == 1);
    CHECK(!ag_graph_state_update(g, l, NULL, vals, "nope", NULL, NULL, err, sizeof err));
    CHECK(strstr(err, "does not exist"));
    json_t *bad = parse("{\"messages\":[{\"type\":\"remove\",\"id\":\"missing\"}]}");
    CHECK(!ag_graph_state_update(g, l, NULL, bad, "echo", NULL, NULL, err, sizeof err));
    json_decref(bad);
    json_decref(c);
    json_decref(c2);
    json_decref(c3);
    json_decref(c4);
    json_decref(l);
    json_decref(vals);
}

/* Several updates in one superstep: every write through the reducers together, next from every as_node;
 * a replace channel written twice, an unknown node and a missing as_node refused (with the update at
 * fault); __copy__ forks; __input__ writes an input checkpoint. */
static void test_state_step(void)
{
    char err[256];
    struct ag_graph_fault bad;
    struct ag_graph_def *g = ag_graph_def_new("steps");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_channel(g, "count", AG_GRAPH_REPLACE, json_integer(0));
    ag_graph_def_node(g, "a", never_runs, NULL);
    ag_graph_def_node(g, "b", never_runs, NULL);
    ag_graph_def_node(g, "c", never_runs, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, "a", "b");
    ag_graph_def_edge(g, "b", "c");
    CHECK(ag_graph_def_compile(g, err, sizeof err) == 0);
    json_t *x = parse("{\"log\":[\"x\"],\"count\":1}"), *y = parse("[{\"log\":[\"y\"]},{\"log\":\"z\"}]");
    json_t *meta = parse("{\"graph_id\":\"steps\"}");
    struct ag_graph_update ups[] = {{.values = x, .as_node = "a"}, {.values = y, .as_node = "b"}};
    json_t *c1 = ag_graph_state_step(g, NULL, NULL, ups, 2, NULL, meta, &bad, err, sizeof err);
    CHECK(c1);
    json_t *want = parse("{\"log\":[\"x\",\"y\",\"z\"],\"count\":1}");
    CHECK(json_equal(json_object_get(c1, "values"), want));
    json_decref(want);
    want = parse("[\"b\",\"c\"]");
    CHECK(json_equal(json_object_get(c1, "next"), want));
    json_decref(want);
    CHECK(json_array_size(json_object_get(c1, "tasks")) == 2);
    CHECK(json_integer_value(json_object_get(c1, "step")) == -1);
    CHECK_STREQ(s_of(c1, "source"), "update");
    CHECK_STREQ(s_of(json_object_get(c1, "metadata"), "graph_id"), "steps");
    /* the next superstep builds on the first */
    struct ag_graph_update one = {.values = x, .as_node = "c"};
    json_t *c2 = ag_graph_state_step(g, c1, NULL, &one, 1, NULL, meta, &bad, err, sizeof err);
    CHECK(c2 && json_integer_value(json_object_get(c2, "step")) == 0);
    CHECK_STREQ(s_of(c2, "parent_checkpoint_id"), s_of(c1, "checkpoint_id"));
    CHECK(json_array_size(json_object_get(json_object_get(c2, "values"), "log")) == 4);
    CHECK(json_array_size(json_object_get(c2, "next")) == 0);
    CHECK(strcmp(s_of(c2, "checkpoint_id"), s_of(c1, "checkpoint_id")) > 0);
    /* refusals */
    struct ag_graph_update twice[] = {{.values = x, .as_node = "a"}, {.values = x, .as_node = "b"}};
    CHECK(!ag_graph_state_step(g, c1, NULL, twice, 2, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == -1 && strstr(err, "LastValue"));
    struct ag_graph_update unknown[] = {{.values = x, .as_node = "a"}, {.values = NULL, .as_node = "nope"}};
    CHECK(!ag_graph_state_step(g, c1, NULL, unknown, 2, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 1 && bad.as_node && strstr(err, "Node nope does not exist"));
    struct ag_graph_update unnamed[] = {{.values = x, .as_node = "a"}, {.values = y, .as_node = NULL}};
    CHECK(!ag_graph_state_step(g, c1, NULL, unnamed, 2, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 1 && bad.as_node && strstr(err, "as_node is required"));
    json_t *num = json_integer(3);
    struct ag_graph_update notobj[] = {{.values = num, .as_node = "a"}};
    CHECK(!ag_graph_state_step(g, c1, NULL, notobj, 1, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 0 && !bad.as_node && strstr(err, "object"));
    json_decref(num);
    /* __copy__: a fork of c2 beside it */
    struct ag_graph_update copy = {.values = NULL, .as_node = "__copy__"};
    CHECK(!ag_graph_state_step(g, NULL, NULL, &copy, 1, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 0 && bad.as_node && strstr(err, "non-existent"));
    json_t *f = ag_graph_state_step(g, c2, NULL, &copy, 1, NULL, meta, &bad, err, sizeof err);
    CHECK(f);
    CHECK_STREQ(s_of(f, "source"), "fork");
    CHECK_STREQ(s_of(f, "parent_checkpoint_id"), s_of(c1, "checkpoint_id"));
    CHECK(json_equal(json_object_get(f, "values"), json_object_get(c2, "values")));
    json_decref(f);
    /* __input__: an input checkpoint holding the input for the __start__ task, values unchanged */
    struct ag_graph_update in = {.values = y, .as_node = "__input__"};
    CHECK(!ag_graph_state_step(g, c2, NULL, &in, 1, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 0 && !bad.as_node && strstr(err, "no input"));
    in.values = x;
    json_t *i = ag_graph_state_step(g, c2, NULL, &in, 1, NULL, meta, &bad, err, sizeof err);
    CHECK(i);
    CHECK_STREQ(s_of(i, "source"), "input");
    CHECK(json_integer_value(json_object_get(i, "step")) == 1);
    CHECK(json_equal(json_object_get(i, "values"), json_object_get(c2, "values")));
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(i, "next"), 0)), AG_GRAPH_START);
    CHECK(json_equal(json_object_get(json_array_get(json_object_get(i, "tasks"), 0), "result"), x));
    json_decref(i);
    struct ag_graph_update two_in[] = {{.values = x, .as_node = "a"}, {.values = x, .as_node = "__input__"}};
    CHECK(!ag_graph_state_step(g, c2, NULL, two_in, 2, NULL, meta, &bad, err, sizeof err));
    CHECK(bad.update == 1 && bad.as_node);
    json_decref(c1);
    json_decref(c2);
    json_decref(x);
    json_decref(y);
    json_decref(meta);
    ag_graph_def_free(g);
}

int main(void)
{
    struct rec r;
    rec_init(&r);
    test_state_update(&r);
    test_state_step();
    rec_free(&r);
    return CHECK_DONE();
}
