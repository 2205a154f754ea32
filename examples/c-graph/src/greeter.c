/* greeter: a graph plugin for agentd, built out of tree against the installed package.
 *
 * State: `messages` (LangGraph's add_messages) and `greeted` (a list the greetings are appended to).
 * `greet` answers the last human message with "<GREETING>, <its text>!" (GREETING from the
 * environment, which langgraph.json's "env" sets); when that text ends in '?', `confirm` asks for a
 * confirmation with interrupt() and answers with what the resume carried. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

static const char *last_human_text(const json_t *state)
{
    const json_t *msgs = json_object_get(state, "messages");
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *text = json_string_value(json_object_get(m, "content"));
        if (type && text && !strcmp(type, "human")) return text;
    }
    return "";
}

static void greet(struct ag_graph_task *t)
{
    const char *greeting = getenv("GREETING");
    json_t *text =
        json_sprintf("%s, %s!", greeting && *greeting ? greeting : "Hi", last_human_text(ag_graph_task_state(t)));
    ag_graph_task_finish(
        t, json_pack("{s:[{s:s,s:O}],s:[O]}", "messages", "type", "ai", "content", text, "greeted", text));
    json_decref(text);
}

static void confirm(struct ag_graph_task *t)
{
    json_t *answer = ag_graph_task_interrupt(t, json_pack("{s:s}", "question", "confirm?"));
    if (!answer) return; /* the run stops here until it is resumed with an answer */
    const char *s = json_is_string(answer) ? json_string_value(answer) : "(not a string)";
    ag_graph_task_finish(
        t, json_pack("{s:[{s:s,s:o}]}", "messages", "type", "ai", "content", json_sprintf("confirmed: %s", s)));
}

/* After greet: a question asks for a confirmation. */
static const char *after_greet(const json_t *state, const json_t *config, void *ud)
{
    (void)config;
    (void)ud;
    const char *text = last_human_text(state);
    size_t n = strlen(text);
    return n && text[n - 1] == '?' ? "confirm" : AG_GRAPH_END;
}

struct ag_graph_def *greeter_graph(void)
{
    static const char *const targets[] = {"confirm", AG_GRAPH_END, NULL};
    struct ag_graph_def *g = ag_graph_def_new("greeter");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_channel(g, "greeted", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "greet", greet, NULL);
    ag_graph_def_node(g, "confirm", confirm, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "greet");
    ag_graph_def_conditional(g, "greet", after_greet, NULL, targets);
    ag_graph_def_edge(g, "confirm", AG_GRAPH_END);
    return g;
}
