/* The public API for graph authors: built-in graphs (graph/builtin_*.c) and graph plugins (shared
 * libraries listed in a langgraph.json, loaded by graph/plugin.h) use only this header, graph/registry.h
 * it includes, and jansson. `cmake --install` installs the two headers, a CMake package (find_package(
 * agentd): target agentd::graph) and a pkg-config file (agentd-graph) to build a plugin against;
 * examples/c-graph is such a project.
 *
 * A plugin is a shared library exporting a function `struct ag_graph_def *<symbol>(void)` that builds
 * a definition through this API and returns it uncompiled (agentd names it after its langgraph.json
 * key, compiles and registers it), and the ABI version it was built for (below). Nodes run on agentd's
 * shard threads: a node never blocks (no sleep, no blocking I/O, no long computation without
 * ag_graph_task_should_yield); a loop turn longer than limits.stall_report_ms is logged with the node
 * that was running.
 *
 * A graph is LangGraph's StateGraph: state channels, each with a reducer; named nodes; fixed and
 * conditional edges between them and the pseudo-nodes START ("__start__") and END ("__end__"). A run
 * executes it in supersteps (see graph/engine.h): the nodes triggered in a step run with the state as
 * it was when the step began; when all of them are done their updates go through the reducers in node
 * name order, a checkpoint is written, and the edges of the nodes that ran pick the next step's nodes.
 *
 * A node is an asynchronous function: it gets a task, reads the state and config from it, and ends
 * the task exactly once with ag_graph_task_finish / _fail, or arranges that later (a timer through
 * ag_graph_task_sleep, or its own completion after ag_graph_task_pending), or stops at an interrupt.
 * It never blocks. All calls for one run happen on the shard that runs it. */
#ifndef AG_GRAPH_GRAPH_H
#define AG_GRAPH_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/registry.h"

struct ag_graph_def;
struct ag_graph_task;

/* The version of this API as a plugin sees it: raised whenever a change to this header or to the
 * behaviour it documents would break a plugin built against the previous one. agentd refuses to load a
 * plugin built for another version. */
#define AG_GRAPH_ABI_VERSION 1

/* Built as a plugin (AG_GRAPH_PLUGIN is defined by the agentd::graph target and the agentd-graph
 * pkg-config flags), each file that includes this header also defines the version it was built for,
 * the symbol agentd reads at load time (weak: the library keeps one). */
#ifdef AG_GRAPH_PLUGIN
__attribute__((weak, visibility("default"))) const uint32_t ag_graph_plugin_abi = AG_GRAPH_ABI_VERSION;
#endif
/* The name of that symbol. */
#define AG_GRAPH_PLUGIN_ABI_SYMBOL "ag_graph_plugin_abi"

/* How a channel combines the updates written to it. */
enum ag_graph_reducer {
    AG_GRAPH_REPLACE,  /* last value wins; two writes in one step are an error (LangGraph LastValue) */
    AG_GRAPH_APPEND,   /* list concatenation (operator.add); a non-list update appends one element */
    AG_GRAPH_MESSAGES, /* add_messages: coerce, append, replace by id, remove (graph/messages.h) */
};

/* A node body, and the continuation a sleeping node resumes at. */
typedef void (*ag_graph_node_fn)(struct ag_graph_task *t);
/* A conditional edge: picks where to go after node `source` ran, from the state after the step (borrowed)
 * and the run's config (borrowed). Returns a node name or AG_GRAPH_END (NULL is END too); the string
 * must outlive the call (a literal, or the name of a node). */
typedef const char *(*ag_graph_router_fn)(const json_t *state, const json_t *config, void *ud);

/* --- defining a graph --- */

/* A new empty definition for graph_id (copied). */
struct ag_graph_def *ag_graph_def_new(const char *graph_id);
/* Frees a definition that was not registered (registered ones live as long as the process). */
void ag_graph_def_free(struct ag_graph_def *g);
/* Adds a state channel. dflt (stolen; NULL = none) is its value before anything was written; APPEND
 * and MESSAGES channels default to []. Returns 0, or -1 when the name is taken. */
int ag_graph_def_channel(struct ag_graph_def *g, const char *name, enum ag_graph_reducer reducer, json_t *dflt);
/* Adds a node named name (copied) running fn; ud is handed to fn through ag_graph_task_node_ud and must
 * outlive the definition. Returns 0, or -1 when the name is taken or reserved. */
int ag_graph_def_node(struct ag_graph_def *g, const char *name, ag_graph_node_fn fn, void *ud);
/* A node's retry policy (LangGraph's RetryPolicy): a failed attempt (ag_graph_task_fail, or a node that
 * returned without ending its task) runs the node again from the start after a pause, until
 * max_attempts attempts were made or retry_on refuses the error; then the task fails. The pause before
 * attempt n+1 is min(max_ms, initial_ms * backoff^(n-1)), plus up to one second at random with jitter.
 * What a failed attempt streamed stays streamed; its ud is freed and its slots zeroed. */
struct ag_graph_retry {
    uint32_t max_attempts; /* attempts in all, the first included; 0 or 1: no retry */
    uint32_t initial_ms;
    double backoff;
    uint32_t max_ms;
    bool jitter;
    bool (*retry_on)(const char *error, void *ud); /* NULL: every failure is retried */
    void *retry_on_ud;
};
/* LangGraph's defaults: 3 attempts, 500 ms, backoff 2, at most 128 s between attempts, jitter. */
#define AG_GRAPH_RETRY_DEFAULT                                                                                         \
    {                                                                                                                  \
        .max_attempts = 3, .initial_ms = 500, .backoff = 2.0, .max_ms = 128000, .jitter = true                         \
    }
/* Gives node (already added) the retry policy (copied). Returns 0, or -1 for an unknown node. */
int ag_graph_def_node_retry(struct ag_graph_def *g, const char *node, const struct ag_graph_retry *policy);
/* Adds a node named name running the graph sub as a subgraph (LangGraph's compiled graph used as a node):
 * the node's input (the state, or a Send packet's arg) is the subgraph's input; it runs its own supersteps
 * and checkpoints under its namespace ("<name>:<task id>"), its events are streamed with that namespace
 * (stream_subgraphs), an interrupt inside it interrupts the node (a resume goes back into the subgraph),
 * and its final values, for the keys that are channels of g, are the node's update. g owns sub from
 * then on (freed with it; compiled with it). Returns 0, or -1 (name taken, sub NULL or already used). */
int ag_graph_def_subgraph(struct ag_graph_def *g, const char *name, struct ag_graph_def *sub);
/* Adds the edge source → target (node names, AG_GRAPH_START or AG_GRAPH_END). Returns 0 or -1 when
 * the shape is impossible (into START, out of END). Names are checked by ag_graph_def_compile. */
int ag_graph_def_edge(struct ag_graph_def *g, const char *source, const char *target);
/* Adds a wait-for-all edge (LangGraph's add_edge([a, b], c)): target runs in the superstep after the one
 * in which the last of sources (a NULL-terminated list of nodes, at least one) ran, counting every source
 * once since target last ran this way; the sources may run in different supersteps, runs and resumes
 * (checkpoints keep which ran). Returns 0 or -1; names are checked by ag_graph_def_compile. */
int ag_graph_def_edge_join(struct ag_graph_def *g, const char *const *sources, const char *target);
/* Adds a conditional edge out of source (a node or AG_GRAPH_START): after source runs, router picks the
 * next node. targets (NULL-terminated, may be NULL) lists where it may go, for drawing; without it the
 * drawing shows an edge to every node and END. Returns 0 or -1. */
int ag_graph_def_conditional(struct ag_graph_def *g, const char *source, ag_graph_router_fn router, void *ud,
                             const char *const *targets);
/* LangGraph's Send(node, arg): a packet that runs node once in the next superstep with arg as its input
 * (ag_graph_task_state returns arg in that task), beside the nodes the edges picked. A new JSON value
 * ({"node", "arg"}; arg stolen, NULL = null) to return from an ag_graph_fanout_fn or to pass in a
 * command's goto. */
json_t *ag_graph_send(const char *node, json_t *arg);
/* A conditional edge that may fan out (map-reduce): returns (a new reference) a node name, AG_GRAPH_END,
 * a Send packet (ag_graph_send), or an array of those; NULL is END. Each packet becomes a task of its own
 * in the next superstep; several packets to one node run it several times. */
typedef json_t *(*ag_graph_fanout_fn)(const json_t *state, const json_t *config, void *ud);
/* Adds such an edge out of source, as ag_graph_def_conditional does (targets: for drawing). */
int ag_graph_def_conditional_fanout(struct ag_graph_def *g, const char *source, ag_graph_fanout_fn fanout, void *ud,
                                    const char *const *targets);
/* Sets the JSON Schema documents the API shows (JSON text, copied; NULL keeps the default: a state
 * schema derived from the channels, config and context schemas with no properties). */
void ag_graph_def_schemas(struct ag_graph_def *g, const char *input, const char *output, const char *state,
                          const char *config, const char *context);
/* Checks a run's config.configurable (an object, or NULL when absent) before the run is created, so that
 * the API refuses a value the graph cannot run with (422 naming config.configurable.<key>) instead of
 * starting it. Returns 0, or -1 with the offending key (a string literal) in *key and why in msg. */
typedef int (*ag_graph_config_check_fn)(const json_t *configurable, const char **key, char *msg, size_t msglen);
/* Sets g's config check (NULL: none). */
void ag_graph_def_config_check(struct ag_graph_def *g, ag_graph_config_check_fn fn);
/* Runs g's config check on configurable: 0 when it passes or g has none, else -1 with *key and msg. */
int ag_graph_def_check_config(const struct ag_graph_def *g, const json_t *configurable, const char **key, char *msg,
                              size_t msglen);
/* Checks the definition (every edge and listed router target names a node, START has an edge out;
 * unreachable nodes are allowed) and builds what the registry shows; no more channels, nodes or edges
 * may be added afterwards. Returns 0, or -1 with the reason in err. */
int ag_graph_def_compile(struct ag_graph_def *g, char *err, size_t errlen);
/* The graph id. */
const char *ag_graph_def_id(const struct ag_graph_def *g);
/* What the registry shows of a compiled definition (nodes, edges, schemas, system assistant id). */
const struct ag_graph_info *ag_graph_def_info(const struct ag_graph_def *g);
/* Compiles g (when not yet) and adds it to the registry, which owns it from then on. Call at start-up,
 * before any shard reads the registry. Returns 0, or -1 with err (bad definition, duplicate id); g then
 * stays the caller's. */
int ag_graph_register(struct ag_graph_def *g, char *err, size_t errlen);

/* The JSON Schemas of LangGraph's MessagesAnnotation state (one `messages` channel), for graphs built on
 * it; with EMPTY_CONFIGURABLE for graphs with no config. */
extern const char ag_graph_messages_schema[];
extern const char ag_graph_empty_config_schema[];

/* --- inside a node: reading --- */

/* The node's input: the state as it was when the step began (an object), or for a task started by a Send
 * packet, the packet's arg (any JSON). Borrowed, valid until the task ends. */
const json_t *ag_graph_task_state(const struct ag_graph_task *t);
/* The run's config (an object, "configurable" inside when given), context and metadata (objects; borrowed). */
const json_t *ag_graph_task_config(const struct ag_graph_task *t);
const json_t *ag_graph_task_context(const struct ag_graph_task *t);
const json_t *ag_graph_task_metadata(const struct ag_graph_task *t);
/* config.configurable[key], or NULL (borrowed). */
const json_t *ag_graph_task_configurable(const struct ag_graph_task *t, const char *key);
/* The node's name, the superstep it runs in, the task id (UUID text), the run and thread ids. */
const char *ag_graph_task_node(const struct ag_graph_task *t);
int ag_graph_task_step(const struct ag_graph_task *t);
const char *ag_graph_task_id(const struct ag_graph_task *t);
const char *ag_graph_task_run_id(const struct ag_graph_task *t);
const char *ag_graph_task_thread_id(const struct ag_graph_task *t);
/* The attempt this execution of the node is: 1, then 2... under a retry policy. */
int ag_graph_task_attempt(const struct ag_graph_task *t);
/* The ud given to ag_graph_def_node. */
void *ag_graph_task_node_ud(const struct ag_graph_task *t);

/* --- per-task user state (kept across sleeps; gone when the task ends) --- */

#define AG_GRAPH_TASK_SLOTS 8
/* AG_GRAPH_TASK_SLOTS integers, zero when the task starts; the node may use them freely. */
int64_t *ag_graph_task_slots(struct ag_graph_task *t);
/* Attaches ud to the task; free_fn (may be NULL) is called with it once when the task is freed: after
 * it ended, or when the run is cancelled or freed. A node with work in flight (after
 * ag_graph_task_pending) stops that work in free_fn. Replacing a ud frees the previous one. */
void ag_graph_task_set_ud(struct ag_graph_task *t, void *ud, void (*free_fn)(void *ud));
void *ag_graph_task_ud(const struct ag_graph_task *t);

/* --- inside a node: streaming --- */

/* A custom stream event (stream_mode "custom", LangGraph's config.writer). payload is stolen. */
void ag_graph_task_custom(struct ag_graph_task *t, json_t *payload);
/* A streamed message chunk (stream_mode "messages"): an AIMessageChunk dict with an "id" that the
 * node's final message repeats (that message is then not streamed again at the end). chunk is stolen. */
void ag_graph_task_message_chunk(struct ag_graph_task *t, json_t *chunk);

/* --- inside a node: ending, waiting, interrupting --- */

/* Ends the task with update (an object of channel → value, stolen; NULL = no update). Messages in a
 * MESSAGES channel are coerced and given ids now, so events and state show the same ids. An update
 * that is not an object, or a message that cannot be coerced, fails the task instead. Do not touch t
 * afterwards. */
void ag_graph_task_finish(struct ag_graph_task *t, json_t *update);
/* Ends the task as a node returning LangGraph's Command(update=..., goto=...): update as for
 * ag_graph_task_finish; go (stolen; NULL = none) a node name, a Send packet (ag_graph_send) or an array of
 * those, which run in the next superstep besides what the node's edges pick (AG_GRAPH_END adds nothing).
 * A name that is no node fails the task. */
void ag_graph_task_finish_command(struct ag_graph_task *t, json_t *update, json_t *go);
/* Ends the task as a node of a subgraph returning Command(graph=Command.PARENT, update=..., goto=...):
 * the subgraph stops here (its other tasks are cancelled) and the subgraph node of the parent graph ends
 * with update (for the parent's channels) and go (names and Send packets of the parent graph), as
 * ag_graph_task_finish_command there. In a graph that is no subgraph the task fails. */
void ag_graph_task_finish_parent(struct ag_graph_task *t, json_t *update, json_t *go);
/* Ends the task with an error; the run ends AG_GRAPH_ERROR with this message. */
void ag_graph_task_fail(struct ag_graph_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Re-enters the node at cont after ms milliseconds (a timer on the shard). The node returns right after
 * calling this; slots and ud are kept. */
void ag_graph_task_sleep(struct ag_graph_task *t, uint64_t ms, ag_graph_node_fn cont);
/* True when the node should let the loop go on before it produces more: the shard's run work budget for
 * this loop turn is spent (so that I/O and other runs get their turn), or a reader of the run's stream
 * is behind. A node doing a long stretch of work (many events) asks between pieces and, on true, calls
 * ag_graph_task_yield. Always false without a shard and a reader (tests). */
bool ag_graph_task_should_yield(const struct ag_graph_task *t);
/* How long ag_graph_task_yield pauses while a reader of the run is behind. */
#define AG_GRAPH_YIELD_BEHIND_MS 1
/* Re-enters the node at cont in a later loop turn: the next one, or after AG_GRAPH_YIELD_BEHIND_MS while a
 * reader of the run's stream is behind (the loop sleeps in between instead of spinning). The node
 * returns right after calling this; slots and ud are kept. */
void ag_graph_task_yield(struct ag_graph_task *t, ag_graph_node_fn cont);
/* Says the node will end the task later from its own completion (an outbound call, say); the node
 * returns right after. Without this (or a sleep, or an interrupt), returning from a node without
 * ending the task fails it. */
void ag_graph_task_pending(struct ag_graph_task *t);

/* --- inside a node: the store (long-term memory shared across threads) --- */

/* The store that the /store endpoints serve (Postgres), under the run's owner, as LangGraph's BaseStore: each call
 * starts an operation and the node returns right after (as after ag_graph_task_sleep); once it completes the node is
 * re-entered at cont (in a later loop turn), where ag_graph_task_store_result says what it gave and
 * ag_graph_task_store_error why it failed (NULL: it did not). A namespace is an array of non-empty strings without '.',
 * at least one for an item; keys are non-empty strings. Cancelling the run abandons the operation (a write may still
 * happen). */
/* The item {"namespace","key","value","created_at","updated_at"} at ns/key, or null when there is none. */
void ag_graph_task_store_get(struct ag_graph_task *t, const json_t *ns, const char *key, ag_graph_node_fn cont);
/* Writes value (an object, stolen) at ns/key; the result is null. */
void ag_graph_task_store_put(struct ag_graph_task *t, const json_t *ns, const char *key, json_t *value,
                             ag_graph_node_fn cont);
/* Deletes the item at ns/key (none is fine); the result is null. */
void ag_graph_task_store_delete(struct ag_graph_task *t, const json_t *ns, const char *key, ag_graph_node_fn cont);
/* The items under namespace prefix ns (may be empty: all), matching filter (an object as POST
 * /store/items/search takes it, stolen; NULL: none), newest update first, limit (0: 10) from offset: an
 * array of items. */
void ag_graph_task_store_search(struct ag_graph_task *t, const json_t *ns, json_t *filter, int limit, int offset,
                                ag_graph_node_fn cont);
/* The result of the last store operation (borrowed, valid until the next one or the task's end), or NULL
 * when it failed. */
const json_t *ag_graph_task_store_result(const struct ag_graph_task *t);
/* Why the last store operation failed, or NULL. */
const char *ag_graph_task_store_error(const struct ag_graph_task *t);

/* LangGraph's interrupt(payload) (payload stolen). When the run carries the answer to this interrupt
 * (matched by the index of this call within the node's execution), returns it (borrowed, valid until
 * the task ends) and the node goes on. Otherwise records the interrupt (payload, a 32-hex id) and
 * returns NULL: the node must return without ending the task, and the run ends AG_GRAPH_INTERRUPTED.
 * A resuming run calls the node again from the start, and each interrupt call returns its answer. */
json_t *ag_graph_task_interrupt(struct ag_graph_task *t, json_t *payload);

#endif
