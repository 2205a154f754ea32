#include "core/alloc.h"
#include "graph/builtin.h"
#include "graph/graph.h"

static void ask(struct ag_graph_task *t)
{
    json_t *answer = ag_graph_task_interrupt(t, json_pack("{s:s}", "question", "what now?"));
    if (!answer)
        return;
    /* `you said: ${typeof answer === "string" ? answer : JSON.stringify(answer)}` */
    json_t *content;
    if (json_is_string(answer)) {
        content = json_sprintf("you said: %s", json_string_value(answer));
    } else {
        char *s = json_dumps(answer, JSON_COMPACT | JSON_ENCODE_ANY);
        content = json_sprintf("you said: %s", s ? s : "null");
        ag_free(s);
    }
    ag_graph_task_finish(t, json_pack("{s:[{s:s,s:o}]}", "messages", "type", "ai", "content", content));
}

struct ag_graph_def *ag_graph_builtin_interrupt(void)
{
    struct ag_graph_def *g = ag_graph_def_new("interrupt");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_node(g, "ask", ask, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "ask");
    ag_graph_def_edge(g, "ask", AG_GRAPH_END);
    ag_graph_def_schemas(g, ag_graph_messages_schema, ag_graph_messages_schema, ag_graph_messages_schema,
                         ag_graph_empty_config_schema, ag_graph_empty_config_schema);
    return g;
}
