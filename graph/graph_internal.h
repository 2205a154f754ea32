/* Module-private parts of graph/: the definition structs the engine walks, and the state helpers
 * (reducers, edges) shared by runs and out-of-run state updates. */
#ifndef AG_GRAPH_GRAPH_INTERNAL_H
#define AG_GRAPH_GRAPH_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "graph/graph.h"

struct ag_graph_channel {
    char *name;
    enum ag_graph_reducer reducer;
    json_t *dflt; /* NULL: the key is absent until written */
};

struct ag_graph_node {
    char *name;
    ag_graph_node_fn fn;
    void *ud;
    struct ag_graph_retry retry; /* max_attempts 0: none */
    struct ag_graph_def *sub;    /* a subgraph node's graph (owned), else NULL */
};

struct ag_graph_edge {
    char *source, *target;
};

/* A wait-for-all edge: target once every source ran; key names its barrier in checkpoints. */
struct ag_graph_join {
    char **sources; /* NULL-terminated */
    char *target;
    char *key; /* "join:<sources joined by +>:<target>" */
};

struct ag_graph_branch {
    char *source;
    ag_graph_router_fn fn; /* one of fn and fanout */
    ag_graph_fanout_fn fanout;
    void *ud;
    char **targets; /* NULL-terminated, or NULL */
};

struct ag_graph_def {
    char *graph_id;
    struct ag_graph_channel *channels;
    size_t nchannels;
    struct ag_graph_node *nodes; /* definition order */
    size_t nnodes;
    struct ag_graph_edge *edges;
    size_t nedges;
    struct ag_graph_branch *branches;
    size_t nbranches;
    struct ag_graph_join *joins;
    size_t njoins;
    char *schemas[5]; /* input, output, state, config, context; NULL = default */
    ag_graph_config_check_fn config_check; /* NULL: any configurable is accepted */
    bool compiled;
    char assistant_id[37];
    struct ag_graph_info info;
    struct ag_graph_node_info *info_nodes;
    struct ag_graph_edge_info *info_edges;
    struct ag_graph_subgraph_info *info_subgraphs;
    char *default_state_schema;
};

/* A subgraph node's function (graph/engine_sub.c). */
void ag_graph__run_subgraph(struct ag_graph_task *t);
/* Renames a definition not yet compiled (a plugin's, to its langgraph.json key). Returns 0, or -1 when
 * it is compiled already. */
int ag_graph__rename(struct ag_graph_def *g, const char *graph_id);
/* The node named name, or NULL (START and END are not nodes). */
const struct ag_graph_node *ag_graph__node(const struct ag_graph_def *g, const char *name);
/* The channel named name, or NULL. */
const struct ag_graph_channel *ag_graph__channel(const struct ag_graph_def *g, const char *name);
/* The values of a thread with no state: each channel's default (a new object). */
json_t *ag_graph__defaults(const struct ag_graph_def *g);
/* A copy of update (an object) whose MESSAGES channels hold coerced message arrays with ids; a new
 * reference, or NULL with err. */
json_t *ag_graph__normalize(const struct ag_graph_def *g, const json_t *update, char *err, size_t errlen);
/* Applies n normalized updates (NULL entries skipped) through the reducers, in order, to state (not
 * modified): returns the new state (a new object sharing unchanged values), or NULL with err. Keys that
 * are not channels are ignored. */
json_t *ag_graph__apply(const struct ag_graph_def *g, const json_t *state, json_t *const *updates, size_t n,
                        char *err, size_t errlen);
/* Adds to set (an object used as a set of names) the nodes that the edges out of source (a node or
 * AG_GRAPH_START) lead to, routers evaluated on state, and appends to sends the Send packets its fan-out
 * edges return ({"node","arg"}, checked). Returns 0, or -1 with err. */
int ag_graph__successors(const struct ag_graph_def *g, const char *source, const json_t *state, const json_t *config,
                         json_t *set, json_t *sends, char *err, size_t errlen);
/* Adds a goto target `go` (a node name, a Send packet, or an array of those; `what` names it in errors) to
 * set and sends as ag_graph__successors does. Returns 0, or -1 with err. */
int ag_graph__add_goto(const struct ag_graph_def *g, const json_t *go, const char *what, json_t *set, json_t *sends,
                       char *err, size_t errlen);
/* The barriers of wait-for-all edges after a superstep in which the nodes `ran` (an array of names) ran:
 * barriers (an object, or NULL: none; not modified) with each source that ran recorded, and the target of
 * each edge whose sources have all run added to set (its barrier emptied). Returns the new barriers (a new
 * reference; NULL when none is waiting). */
json_t *ag_graph__barriers_step(const struct ag_graph_def *g, const json_t *barriers, const json_t *ran, json_t *set);
/* The names in set, sorted, as a new array. */
json_t *ag_graph__sorted_names(const json_t *set);

#endif
