/* The run engine, as the host (protocol/agent/runs) drives it: start a run of a compiled graph on a
 * thread's owner shard, receive its events and its end, cancel it, free it.
 *
 * A run executes LangGraph's loop. With input: an input checkpoint (source "input", values before the
 * input, next ["__start__"]), then the "__start__" step applies the input through the reducers
 * (checkpoint source "loop"), then each step runs the triggered nodes and writes a "loop" checkpoint,
 * until no node is triggered. Steps continue the thread's numbering: the input checkpoint of a fresh
 * thread is step -1, that of a thread whose last checkpoint is step s is s+1.
 *
 * Events for one step, in order: TASK_START for each task (node name order); while nodes run, their
 * CUSTOM and MESSAGE (chunk) events; as each task ends: MESSAGE for each message of its update not
 * already streamed, UPDATES, TASK_RESULT (an interrupt: UPDATES {"__interrupt__"} at the interrupt call,
 * TASK_RESULT when the node returns); when the step is done: VALUES, then CHECKPOINT. A step that ends
 * with an interrupt or an error re-emits the step's starting CHECKPOINT instead, then on_done.
 *
 * Callbacks come on the shard that runs the run: from inside ag_graph_run_start (everything up to the
 * first node that waits; a run that never waits even ends there, on_done included), from the timer
 * callbacks the engine arms on host->timers (ag_timer_run), from ag_graph_task_finish called by a node's
 * own completion, and from ag_graph_run_cancel (on_done only). Never call ag_graph_run_free from inside
 * a callback (on_event, on_done): free after the engine call that led to on_done returned. */
#ifndef AG_GRAPH_ENGINE_H
#define AG_GRAPH_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/graph.h"

struct ag_timer_heap;
struct ag_shard;
struct ag_graph_run;

enum ag_graph_ev_kind {
    /* data: {"checkpoint_id","parent_checkpoint_id"|null,"step","source","values","next":[..],"tasks":[..],
     * "metadata":{..run metadata..,"source","step","parents":{}}}; what the checkpoints table stores and
     * GET /threads/{id}/state shows. tasks: {"id","name","error","interrupts":[{"id","value"}],
     * "path":["__pregel_pull",name],"checkpoint":null,"state":null,"result"} (+ "resume":[..] when a
     * node's earlier interrupts were answered; keep it, a later resume needs it). A checkpoint is
     * emitted AGAIN, with the same checkpoint_id, when its tasks end with an interrupt or an error
     * (tasks[].interrupts / error / result of the tasks that did finish filled in): the host replaces the
     * stored row (upsert on (thread_id, checkpoint_ns, checkpoint_id)). */
    AG_GEV_CHECKPOINT,
    /* data: the full state after a step (not after the input checkpoint), and at the start of a run that
     * continues a thread (resume, null input, command). Interrupts come as UPDATES only. */
    AG_GEV_VALUES,
    /* data: {"<node>": <update or null>} as each task ends; {"__interrupt__":[{"value","id"}]} for a node
     * interrupt, {"__interrupt__":[]} for interrupt_before / interrupt_after. */
    AG_GEV_UPDATES,
    /* data: the payload of ag_graph_task_custom; node: the emitting node. */
    AG_GEV_CUSTOM,
    /* data: a message chunk dict (ag_graph_task_message_chunk), or at a task's end a message of its update
     * not streamed before; meta: {"tags":[] (chunks) | ["graph:step:<n>"] (end of task) (,"name":node),
     * ..run metadata.., "langgraph_step","langgraph_node","langgraph_triggers":["branch:to:<node>"],
     * "langgraph_path":["__pregel_pull",node],"langgraph_checkpoint_ns":"<node>:<task_id>","checkpoint_ns"}. */
    AG_GEV_MESSAGE,
    /* data: {"id","name","input":<state>,"triggers":["branch:to:<node>"],"interrupts":[],"metadata":<run metadata>}. */
    AG_GEV_TASK_START,
    /* data: {"id","name","result":<update or {}>,"interrupts":[..],"error":null|"msg"}; a task stopped at an
     * interrupt: result {} and its interrupts. */
    AG_GEV_TASK_RESULT,
};

struct ag_graph_event {
    enum ag_graph_ev_kind kind;
    int step;            /* the superstep the event belongs to */
    const char *node;    /* NULL for VALUES, CHECKPOINT and run-level UPDATES */
    const char *task_id; /* NULL as node */
    json_t *data;        /* borrowed for the callback: json_incref what you keep; never modify it */
    json_t *meta;        /* MESSAGE only, else NULL; borrowed likewise */
    /* NULL: the run's own graph. Else the event comes from a subgraph: its namespace, LangGraph's
     * checkpoint_ns, "<node>:<task id>" of the subgraph node's task, deeper levels joined with '|'. Its
     * CHECKPOINTs are that subgraph's, stored under this namespace (not the run's latest state). */
    const char *ns;
};

enum ag_graph_outcome { AG_GRAPH_SUCCESS, AG_GRAPH_INTERRUPTED, AG_GRAPH_ERROR, AG_GRAPH_CANCELLED };

/* A store operation a node started (graph/graph.h ag_graph_task_store_*), for the host to carry out. */
enum ag_graph_store_kind { AG_GSTORE_GET, AG_GSTORE_PUT, AG_GSTORE_DELETE, AG_GSTORE_SEARCH };
struct ag_graph_store_req {
    enum ag_graph_store_kind kind;
    const json_t *ns;     /* labels (checked: strings, non-empty, no '.'; at least one but for SEARCH) */
    const char *key;      /* GET, PUT, DELETE */
    const json_t *value;  /* PUT: an object */
    const json_t *filter; /* SEARCH: an object or NULL */
    int limit, offset;    /* SEARCH: limit 1..1000, offset >= 0 */
};
/* The host's answer: result (borrowed for the call: an item or null for GET, an array of items for SEARCH,
 * null for PUT and DELETE), or NULL and error. */
typedef void (*ag_graph_store_done_fn)(void *cookie, const json_t *result, const char *error);

struct ag_graph_host {
    void *ud;
    struct ag_timer_heap *timers; /* the shard's heap; the engine arms timers embedded in its tasks */
    uint64_t (*now_ns)(void *ud); /* monotonic clock for timer deadlines (tests pass a fake) */
    void (*on_event)(void *ud, const struct ag_graph_event *ev);
    /* The run ended, exactly once: final values (borrowed), interrupts (borrowed; [] unless a node
     * interrupted: [{"id","value"}..]), error text (NULL unless AG_GRAPH_ERROR). May be called from inside
     * ag_graph_run_start (a run that never waited) and from inside ag_graph_run_cancel. */
    void (*on_done)(void *ud, enum ag_graph_outcome outcome, const json_t *values, const json_t *interrupts,
                    const char *error);
    /* The shard the run runs on, or NULL (tests). With a shard, every event, node call and superstep
     * spends one unit of the turn's run work budget (runs.work_per_turn); once it is spent the run goes
     * on in a later turn (before a superstep; nodes ask ag_graph_task_should_yield), and each node call
     * and each step's completion are named to the shard's stall report ("graph=<id> node=<name> run=<id>",
     * "graph=<id> step=<n> run=<id>"). */
    struct ag_shard *shard;
    /* Optional: true while a reader of the run's stream is behind (but reading). Nodes that ask
     * ag_graph_task_should_yield then pause (ag_graph_task_yield) until it caught up. */
    bool (*behind)(void *ud);
    /* Optional: true while the run must not start its next superstep (the host is making the last
     * checkpoint durable: durability "sync"). The run waits between supersteps until the host calls
     * ag_graph_run_proceed. */
    bool (*hold)(void *ud);
    /* Optional: carries out a node's store operation; calls done(cookie, ...) once, later (never from
     * inside this call), unless store_cancel(ud, handle) came first. Returns a handle, or NULL when it
     * cannot start one (err says why). Without it, store operations fail ("no store"). */
    void *(*store_start)(void *ud, const struct ag_graph_store_req *req, ag_graph_store_done_fn done, void *cookie,
                         char *err, size_t errlen);
    void (*store_cancel)(void *ud, void *handle);
    /* Optional (a subgraph's host): a node sent update and go (both stolen, may be NULL) to the parent
     * graph (ag_graph_task_finish_parent); the run is cancelled right after. */
    void (*on_parent_command)(void *ud, json_t *update, json_t *go);
};

struct ag_graph_run_params {
    const struct ag_graph_def *graph;
    const char *thread_id, *run_id;       /* copied */
    json_t *config, *context, *metadata;  /* borrowed (kept by reference for the run); NULL = {};
                                           * metadata goes into every checkpoint's metadata */
    json_t *input;                        /* an object, or NULL */
    json_t *command;                      /* {"resume"?, "update"?, "goto"?} or NULL */
    json_t *from;                         /* the thread's latest checkpoint (AG_GEV_CHECKPOINT data as stored,
                                           * the re-emitted version if there was one), or NULL: no state yet */
    json_t *interrupt_before, *interrupt_after; /* "*" or an array of node names, or NULL */
    int recursion_limit;                  /* 0 = 25: supersteps this run may execute (__start__ included) */
};

/* Starts a run. Semantics:
 * - input (an object): through the reducers on top of from's values (a pending `next` in from is
 *   dropped, as LangGraph discards unfinished tasks on new input).
 * - no input, no command: continue from's pending next (after an interrupt_before/after, or a node
 *   interrupt answered some other way); tasks of from that already have a result are not run again. A
 *   thread with nothing pending ends AG_GRAPH_SUCCESS at once with its values.
 * - command.resume: a bare value answers the pending interrupt (there must be exactly one); an object
 *   whose keys are all 32-hex interrupt ids answers each by id. The interrupted nodes run again from the
 *   start; their interrupt calls return the answers.
 * - command.update (object, or list of [key, value] pairs) goes through the reducers as an "update"
 *   checkpoint (step+1) whose next is from's pending next plus command.goto (a node name or a list);
 *   goto alone writes that checkpoint too. The run then goes on from it.
 * - interrupt_before: before a step whose nodes include a named one ("*" = any), the run ends
 *   AG_GRAPH_INTERRUPTED (checkpoint next = those nodes). Not checked for the first step of a run that
 *   continues from (so continuing goes past it). interrupt_after: after a step in which a named node ran.
 * - a node that fails, an update a reducer refuses, a router naming an unknown node: AG_GRAPH_ERROR.
 * - more than recursion_limit supersteps: AG_GRAPH_ERROR with LangGraph's GraphRecursionError text.
 * Returns the run, or NULL with a reason in err for invalid params: no graph or ids, input not an
 * object, resume without a pending interrupt (or a bare value with several pending, or an unknown
 * interrupt id), an unknown goto node, interrupt_before/after naming an unknown node, no input and no
 * state to continue. */
struct ag_graph_run *ag_graph_run_start(const struct ag_graph_host *h, const struct ag_graph_run_params *p, char *err,
                                        size_t errlen);
/* Stops the run now: timers disarmed, node user state freed, on_done(AG_GRAPH_CANCELLED) with the values
 * of the last step. A run that already ended is left alone. */
void ag_graph_run_cancel(struct ag_graph_run *r);
/* The host's hold is lifted: a run waiting between supersteps goes on, in a later loop turn. Nothing for
 * a run that is not waiting on it (or has ended). */
void ag_graph_run_proceed(struct ag_graph_run *r);
/* Frees the run (a run not yet ended is cancelled first, on_done included). Not from inside a callback. */
void ag_graph_run_free(struct ag_graph_run *r);
/* The run's current values (borrowed; changes as steps complete). */
const json_t *ag_graph_run_values(const struct ag_graph_run *r);

/* One update of a superstep outside a run: values written as node as_node wrote them. */
struct ag_graph_update {
    const json_t *values; /* an object; an array of objects, each its own write, in order; NULL or null: none */
    const char *as_node;  /* a node, "__start__"; "__copy__", "__input__" (alone); NULL: chosen (alone only) */
};

/* What ag_graph_state_step refused: update (an index into its updates; -1: the updates together, as when
 * a reducer refused them or a router failed) and, for one update, whether its as_node (an unknown node,
 * a missing or misplaced as_node, a copy of nothing) or else its values (not objects, not valid messages). */
struct ag_graph_fault {
    int update;
    bool as_node;
};

/* LangGraph's bulkUpdateState, one superstep: applies the n (>= 1) updates together on top of latest (the
 * thread's latest checkpoint; NULL = no state yet), as if their nodes had run in one superstep, and
 * returns the new checkpoint (a new reference, the AG_GEV_CHECKPOINT shape): source "update", step
 * latest.step+1 (-1 without latest), parent latest, values = latest's (or the defaults) with every write
 * through the reducers in order (a replace channel written twice is refused, as LangGraph refuses it),
 * next = the nodes the edges out of every update's as_node lead to (conditional edges evaluated on the
 * new values with config), tasks for them, metadata = metadata (borrowed, may be NULL) +
 * {"source":"update","step","parents":{}}.
 * A lone update may leave as_node NULL: the node that ran last, as LangGraph picks it: START when latest
 * is NULL or an input checkpoint; else the single node named in prev->next (prev: the checkpoint before
 * latest, may be NULL); else the graph's single node; else an error asking for as_node. A lone
 * "__copy__" without values is Studio's fork: a copy of latest beside it (same parent), source "fork",
 * step + 1, the same values and next, fresh tasks. A lone "__input__" with values (an object) is the input
 * checkpoint a run writes: source "input", latest's values, next ["__start__"] with the input in that
 * task, so that a run without input continues by applying it.
 * Returns NULL with err, and in *fault what was refused. */
json_t *ag_graph_state_step(const struct ag_graph_def *g, const json_t *latest, const json_t *prev,
                            const struct ag_graph_update *ups, size_t n, const json_t *config, const json_t *metadata,
                            struct ag_graph_fault *fault, char *err, size_t errlen);
/* POST /threads/{id}/state: ag_graph_state_step with the one update {values, as_node}; values is an object
 * or NULL (null is fine: nothing written). */
json_t *ag_graph_state_update(const struct ag_graph_def *g, const json_t *latest, const json_t *prev,
                              const json_t *values, const char *as_node, const json_t *config,
                              const json_t *metadata, char *err, size_t errlen);

#endif
