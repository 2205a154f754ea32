/* greeter: a graph plugin for agentd, built out of tree against the installed package.
 *
 * State: `messages` (LangGraph's add_messages) and `greeted` (a list the greetings are appended to).
 * The last human message is a comma-separated list of names.
 * - `split` sends one packet per name to `greet_one` (map: LangGraph's Send).
 * - `greet_one` greets its name with "<GREETING>, <name>!" (GREETING from the environment, which
 *   langgraph.json's "env" sets), or with "Welcome back, <name>!" when the store (shared by every
 *   thread: long-term memory) says the name was greeted before; it counts the visit there.
 * - `done` (reduce: once, after every greeting) answers with all the greetings so far and, when the
 *   message ended in '?', goes on to `review` with a command (LangGraph's Command(goto=...)).
 * - `review` is a subgraph (a graph used as a node): its `confirm` asks for a confirmation with
 *   interrupt() and answers with what the resume carried. */
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

static bool is_question(const json_t *state)
{
    const char *text = last_human_text(state);
    size_t n = strlen(text);
    return n && text[n - 1] == '?';
}

static void split(struct ag_graph_task *t)
{
    ag_graph_task_finish(t, NULL);
}

/* One Send packet per name of the last human message (spaces and a final '?' trimmed). */
static json_t *per_name(const json_t *state, const json_t *config, void *ud)
{
    (void)config;
    (void)ud;
    json_t *sends = json_array();
    const char *p = last_human_text(state);
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n && *s == ' ')
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '?'))
            n--;
        if (n) json_array_append_new(sends, ag_graph_send("greet_one", json_pack("{s:s%}", "name", s, n)));
        p = end ? end + 1 : p + strlen(p);
    }
    return sends;
}

/* The store namespace of everyone greeted, across threads: {"visits": n} per name. */
static json_t *greeted_ns(void)
{
    return json_pack("[s]", "greeted");
}

static const char *packet_name(struct ag_graph_task *t)
{
    return json_string_value(json_object_get(ag_graph_task_state(t), "name"));
}

/* 3. The visit is stored: the greeting (kept as the task's ud) is the update. */
static void greet_one_stored(struct ag_graph_task *t)
{
    if (ag_graph_task_store_error(t)) {
        ag_graph_task_fail(t, "%s", ag_graph_task_store_error(t));
        return;
    }
    ag_graph_task_finish(t, json_pack("{s:[O]}", "greeted", (json_t *)ag_graph_task_ud(t)));
}

/* 2. Someone seen before (in any thread) is welcomed back; the visit count goes up. */
static void greet_one_known(struct ag_graph_task *t)
{
    const json_t *item = ag_graph_task_store_result(t);
    if (!item) {
        ag_graph_task_fail(t, "%s", ag_graph_task_store_error(t));
        return;
    }
    const char *greeting = getenv("GREETING");
    json_int_t visits = json_integer_value(json_object_get(json_object_get(item, "value"), "visits"));
    json_t *text = visits ? json_sprintf("Welcome back, %s!", packet_name(t))
                          : json_sprintf("%s, %s!", greeting && *greeting ? greeting : "Hi", packet_name(t));
    ag_graph_task_set_ud(t, text, (void (*)(void *))json_decref);
    json_t *ns = greeted_ns();
    ag_graph_task_store_put(t, ns, packet_name(t), json_pack("{s:I}", "visits", visits + 1), greet_one_stored);
    json_decref(ns);
}

/* 1. One name (a Send packet's arg {"name"}): is it in the store? */
static void greet_one(struct ag_graph_task *t)
{
    json_t *ns = greeted_ns();
    ag_graph_task_store_get(t, ns, packet_name(t), greet_one_known);
    json_decref(ns);
}

static void done(struct ag_graph_task *t)
{
    const json_t *state = ag_graph_task_state(t);
    json_t *greeted = json_object_get(state, "greeted");
    /* The greetings joined with spaces: each copied once, at its offset. */
    size_t len = 0, i;
    json_t *g;
    json_array_foreach(greeted, i, g)
    {
        len += json_string_length(g) + 1;
    }
    char *text = malloc(len + 1), *w = text;
    json_array_foreach(greeted, i, g)
    {
        if (i) *w++ = ' ';
        memcpy(w, json_string_value(g), json_string_length(g));
        w += json_string_length(g);
    }
    json_t *update = json_pack("{s:[{s:s,s:s%}]}", "messages", "type", "ai", "content", text, (size_t)(w - text));
    free(text);
    if (is_question(state))
        ag_graph_task_finish_command(t, update, json_string("review"));
    else
        ag_graph_task_finish(t, update);
}

static void confirm(struct ag_graph_task *t)
{
    json_t *answer = ag_graph_task_interrupt(t, json_pack("{s:s}", "question", "confirm?"));
    if (!answer) return; /* the run stops here until it is resumed with an answer */
    const char *s = json_is_string(answer) ? json_string_value(answer) : "(not a string)";
    ag_graph_task_finish(
        t, json_pack("{s:[{s:s,s:o}]}", "messages", "type", "ai", "content", json_sprintf("confirmed: %s", s)));
}

struct ag_graph_def *greeter_graph(void)
{
    static const char *const fan_targets[] = {"greet_one", NULL};
    struct ag_graph_def *review = ag_graph_def_new("review");
    ag_graph_def_channel(review, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_node(review, "confirm", confirm, NULL);
    ag_graph_def_edge(review, AG_GRAPH_START, "confirm");
    struct ag_graph_def *g = ag_graph_def_new("greeter");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_channel(g, "greeted", AG_GRAPH_APPEND, NULL);
    ag_graph_def_node(g, "split", split, NULL);
    ag_graph_def_node(g, "greet_one", greet_one, NULL);
    ag_graph_def_node(g, "done", done, NULL);
    ag_graph_def_subgraph(g, "review", review);
    ag_graph_def_edge(g, AG_GRAPH_START, "split");
    ag_graph_def_conditional_fanout(g, "split", per_name, NULL, fan_targets);
    ag_graph_def_edge(g, "greet_one", "done");
    return g;
}
