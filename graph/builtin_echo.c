#include <string.h>

#include "graph/builtin.h"
#include "graph/graph.h"

/* The last message whose type is human (the state holds coerced messages). */
static const json_t *last_human_content(const json_t *state)
{
    const json_t *msgs = json_object_get(state, "messages");
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        const char *type = json_string_value(json_object_get(m, "type"));
        if (type && !strcmp(type, "human")) {
            const json_t *c = json_object_get(m, "content");
            if (c)
                return c;
        }
    }
    return NULL;
}

static void echo(struct ag_graph_task *t)
{
    const json_t *c = last_human_content(ag_graph_task_state(t));
    json_t *content = c ? json_incref((json_t *)c) : json_string("");
    ag_graph_task_custom(t, json_pack("{s:O}", "echo", content));
    ag_graph_task_finish(t, json_pack("{s:[{s:s,s:o}]}", "messages", "type", "ai", "content", content));
}

struct ag_graph_def *ag_graph_builtin_echo(void)
{
    struct ag_graph_def *g = ag_graph_def_new("echo");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_node(g, "echo", echo, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "echo");
    ag_graph_def_edge(g, "echo", AG_GRAPH_END);
    ag_graph_def_schemas(g, ag_graph_messages_schema, ag_graph_messages_schema, ag_graph_messages_schema,
                         ag_graph_empty_config_schema, ag_graph_empty_config_schema);
    return g;
}
