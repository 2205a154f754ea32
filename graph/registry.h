/* The graph registry: every graph this server can run, by graph id, with what the API shows of it
 * (the JSON Schemas of its input, output, state, config and context, and its drawable nodes and
 * edges), the id of its system assistant and its definition (to run it: graph/engine.h).
 *
 * Entries are derived from compiled graph definitions (graph/graph.h). The built-in graphs (echo,
 * stress, interrupt; their behaviour is defined in shared/peer/graphs/, one .ts file per graph) are
 * registered by the first call of any reader (or ag_graph_register), in that order; other graphs
 * (plugins) are added with ag_graph_register at start-up. The registry is immutable once the server
 * runs, so any thread may read it without locks. */
#ifndef AG_GRAPH_REGISTRY_H
#define AG_GRAPH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

struct ag_graph_def;

/* The entry and exit pseudo-nodes of every graph (LangGraph's START and END). */
#define AG_GRAPH_START "__start__"
#define AG_GRAPH_END "__end__"

/* A node as drawn by GET /assistants/{id}/graph. */
struct ag_graph_node_info {
    const char *id; /* node name; AG_GRAPH_START / AG_GRAPH_END for the pseudo-nodes */
};

/* An edge as drawn: source → target; conditional when a routing function picks the target. */
struct ag_graph_edge_info {
    const char *source, *target;
    bool conditional;
};

struct ag_graph_info;

/* A subgraph node: its name (the namespace its runs use) and its graph. */
struct ag_graph_subgraph_info {
    const char *node;
    const struct ag_graph_info *info;
};

struct ag_graph_info {
    const char *graph_id;    /* the name clients use (langgraph.json "graphs" key) */
    const char *assistant_id; /* its system assistant: UUID5(AG_GRAPH_ASSISTANT_NS, graph_id), 36 chars */
    /* JSON Schema documents (JSON text, each an object). */
    const char *input_schema, *output_schema, *state_schema, *config_schema, *context_schema;
    const struct ag_graph_node_info *nodes; /* in drawing order, START first and END last */
    size_t nnodes;
    const struct ag_graph_edge_info *edges;
    size_t nedges;
    const struct ag_graph_def *def; /* what ag_graph_run_start runs */
    const struct ag_graph_subgraph_info *subgraphs; /* its subgraph nodes, in definition order */
    size_t nsubgraphs;
};

/* The namespace LangGraph Platform uses for system assistant ids (UUID5 of it and the graph id). */
#define AG_GRAPH_ASSISTANT_NS "6ba7b821-9dad-11d1-80b4-00c04fd430c8"

/* Number of registered graphs. */
size_t ag_graph_count(void);
/* The i-th graph (0 <= i < ag_graph_count()), in registration order. */
const struct ag_graph_info *ag_graph_at(size_t i);
/* The graph named id[0..len), or NULL. */
const struct ag_graph_info *ag_graph_find_n(const char *id, size_t len);
/* The graph named by the NUL-terminated graph_id, or NULL. */
const struct ag_graph_info *ag_graph_find(const char *graph_id);
/* The definition of the graph named graph_id, or NULL. */
const struct ag_graph_def *ag_graph_def_find(const char *graph_id);
/* An assistant id as the API accepts it: a registered graph id stands for that graph's system
 * assistant. Returns the system assistant id for a graph id, else id itself (not copied). */
const char *ag_graph_resolve_assistant(const char *id);

#endif
