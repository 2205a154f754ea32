/* A run's events in protocol v2 form: the projection of the graph engine's events (graph/engine.h)
 * onto the channels of the thread event log (runtime/tlog.h), as the Agent Protocol defines
 * them and LangChain's JS server frames them:
 *
 *   lifecycle  `running` when the run starts; `started` / `completed` / `failed` for the namespace
 *              ["<node>:<task id>"] of a node task, opened by the first event inside it (its
 *              messages); at the end, open namespaces are closed, then `completed`, `interrupted`
 *              or `failed` (with `error`) at the root.
 *   messages   content-block events per message: message-start, content-block-start / -delta /
 *              -finish, message-finish; streamed chunks become deltas, whole messages arrive at once.
 *   values     the state, messages in protocol shape, `__interrupt__` removed.
 *   updates    {"node", "values"} per node update; interrupts go to input.requested instead.
 *   input.requested  {"interrupt_id", "payload", "value"}, once per interrupt.
 *   custom     {"payload"}; checkpoints {"id", "parent_id", "step", "source"}; tasks as the engine
 *              reports them.
 *
 * A subgraph's events (graph/engine.h ev->ns) go out in its namespace, ["<node>:<task id>", ...] one
 * segment per level, its node tasks' below it; its values as they are (never a state reference); the
 * first opens the subgraph node's task (`started`).
 *
 * Runs on the run's shard. */
#ifndef AG_RUNTIME_V2PROJ_H
#define AG_RUNTIME_V2PROJ_H

#include <jansson.h>
#include <stdint.h>

struct ag_graph_event;
struct ag_v2proj;

/* A projection for run_id on thread_id of graph graph_name (copied). */
struct ag_v2proj *ag_v2proj_new(const char *thread_id, const char *run_id, const char *graph_name);
void ag_v2proj_free(struct ag_v2proj *p);

/* The run started: lifecycle `running`. */
void ag_v2proj_start(struct ag_v2proj *p);
/* The run's latest checkpoint as it is stored (persist/cpstore.h; borrowed, kept): an event whose state
 * is its values (a `values` event, a task's input) is kept in the log by its channel versions instead of
 * a copy of the state (AG_TLOG_STATE_REF). Given before the checkpoint's own event, and at the start
 * with the checkpoint the run starts from; never for checkpoints that may not be stored (durability
 * "exit"). A `values` event waits for the next event or this call. */
void ag_v2proj_checkpoint(struct ag_v2proj *p, const json_t *stored);
/* One engine event. */
void ag_v2proj_event(struct ag_v2proj *p, const struct ag_graph_event *ev);
/* The run ended with status (success, interrupted, error, timeout) and error (NULL unless failed):
 * open namespaces close, then the root's terminal lifecycle event, held back from the streams (see
 * ag_tlog_append) until the caller releases the seq returned. */
uint64_t ag_v2proj_end(struct ag_v2proj *p, const char *status, const char *error);

#endif
