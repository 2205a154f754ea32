/* Graph plugins for tests/integration/graph-plugins.test.mjs, one source built three ways
 * (tests/integration/CMakeLists.txt):
 *   plugin_good.so   with AG_GRAPH_PLUGIN: exports the ABI version graph/graph.h declares;
 *   plugin_noabi.so  without it: exports no ABI version;
 *   plugin_abi999.so exports ABI version 999 by hand.
 * Symbols: good_graph (one node answering "ok <PLUGIN_TEST_WORD>", the variable as the graph was
 * built), bad_graph (an edge to a node that does not exist), null_graph (no definition),
 * compiled_graph (a compiled definition), env_graph (good_graph when PLUGIN_TEST_WORD is set, else no
 * definition), join_graph (START -> a, b; a -> a2; [a2, b] -> c, a wait-for-all edge; a2 asks with
 * interrupt() when the state's `stop` is set; each node appends its name to `log`), retry_graph and
 * subgraph_graph (below). */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#ifdef TEST_ABI
__attribute__((visibility("default"))) const uint32_t ag_graph_plugin_abi = TEST_ABI;
#endif

static void answer(struct ag_graph_task *t)
{
    const char *word = ag_graph_task_node_ud(t);
    ag_graph_task_finish(t, json_pack("{s:[{s:s,s:o}]}", "messages", "type", "ai", "content",
                                      json_sprintf("ok %s", word ? word : "(unset)")));
}

static struct ag_graph_def *one_node(const char *target)
{
    const char *word = getenv("PLUGIN_TEST_WORD");
    struct ag_graph_def *g = ag_graph_def_new("plugin");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_node(g, "answer", answer, word ? strdup(word) : NULL); /* lives as long as the process */
    ag_graph_def_edge(g, AG_GRAPH_START, "answer");
    ag_graph_def_edge(g, "answer", target);
    return g;
}

struct ag_graph_def *good_graph(void)
{
    return one_node(AG_GRAPH_END);
}

struct ag_graph_def *bad_graph(void)
{
    return one_node("nowhere");
}

struct ag_graph_def *null_graph(void)
{
    return NULL;
}

struct ag_graph_def *compiled_graph(void)
{
    struct ag_graph_def *g = one_node(AG_GRAPH_END);
    char err[256];
    ag_graph_def_compile(g, err, sizeof err);
    return g;
}

struct ag_graph_def *env_graph(void)
{
    return getenv("PLUGIN_TEST_WORD") ? one_node(AG_GRAPH_END) : NULL;
}

static void log_name(struct ag_graph_task *t)
{
    const char *name = ag_graph_task_node(t);
    if (!strcmp(name, "a2") && json_is_true(json_object_get(ag_graph_task_state(t), "stop")) &&
        !ag_graph_task_interrupt(t, json_string("go on?")))
        return;
    ag_graph_task_finish(t, json_pack("{s:[s]}", "log", name));
}

struct ag_graph_def *join_graph(void)
{
    static const char *const sources[] = {"a2", "b", NULL};
    static const char *const nodes[] = {"a", "a2", "b", "c"};
    struct ag_graph_def *g = ag_graph_def_new("join");
    ag_graph_def_channel(g, "log", AG_GRAPH_APPEND, NULL);
    ag_graph_def_channel(g, "stop", AG_GRAPH_REPLACE, NULL);
    for (size_t i = 0; i < 4; i++)
        ag_graph_def_node(g, nodes[i], log_name, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "a");
    ag_graph_def_edge(g, AG_GRAPH_START, "b");
    ag_graph_def_edge(g, "a", "a2");
    ag_graph_def_edge_join(g, sources, "c");
    return g;
}

/* retry_graph: `flaky` fails (after a custom event {"attempt": n}) while its attempt is at most the state's
 * `fails`; its retry policy allows 3 attempts, 20 ms then 40 ms apart. */
static void flaky(struct ag_graph_task *t)
{
    int attempt = ag_graph_task_attempt(t);
    ag_graph_task_custom(t, json_pack("{s:i}", "attempt", attempt));
    if (attempt <= json_integer_value(json_object_get(ag_graph_task_state(t), "fails"))) {
        ag_graph_task_fail(t, "flaky attempt %d", attempt);
        return;
    }
    ag_graph_task_finish(t, json_pack("{s:i}", "attempts", attempt));
}

struct ag_graph_def *retry_graph(void)
{
    struct ag_graph_def *g = ag_graph_def_new("retry");
    ag_graph_def_channel(g, "fails", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_channel(g, "attempts", AG_GRAPH_REPLACE, NULL);
    ag_graph_def_node(g, "flaky", flaky, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "flaky");
    struct ag_graph_retry policy = {.max_attempts = 3, .initial_ms = 20, .backoff = 2, .max_ms = 1000};
    ag_graph_def_node_retry(g, "flaky", &policy);
    return g;
}

/* subgraph_graph: START -> before -> sub -> after, sub a subgraph (i1 -> i2); every node appends its name to
 * the REPLACE channel `log` (i2, when the state's `ask` is set, asks with interrupt() and appends
 * "i2:<answer>"; i1, when `escape` is set, sends Command(graph=PARENT, goto="after") with "i1-escape"
 * appended instead). */
static void append_name(struct ag_graph_task *t)
{
    const json_t *st = ag_graph_task_state(t);
    const char *name = ag_graph_task_node(t);
    json_t *entry;
    if (!strcmp(name, "i1") && json_is_true(json_object_get(st, "escape"))) {
        /* Command(graph=PARENT, goto="after"): the subgraph ends here */
        json_t *log = json_copy(json_object_get(st, "log"));
        json_array_append_new(log, json_string("i1-escape"));
        ag_graph_task_finish_parent(t, json_pack("{s:o}", "log", log), json_string("after"));
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

struct ag_graph_def *subgraph_graph(void)
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
    ag_graph_def_subgraph(g, "sub", inner);
    ag_graph_def_node(g, "after", append_name, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "before");
    ag_graph_def_edge(g, "before", "sub");
    ag_graph_def_edge(g, "sub", "after");
    return g;
}
