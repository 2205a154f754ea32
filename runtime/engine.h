/* The seam between the run lifecycle (runtime/run.c) and whatever executes graphs. An engine is a
 * table of functions; the C engine (graph/, runtime/engine_c.c) is the first, and an engine whose steps
 * run in another process plugs in the same way: start returns at once, events and the end arrive later
 * through the host's callbacks, on the run's shard, and a failure of the whole engine (a worker that
 * died) is an end with AG_GRAPH_ERROR. The lifecycle never asks how an engine works.
 *
 * The event vocabulary is graph/engine.h's (struct ag_graph_event, enum ag_graph_outcome): every engine
 * reports LangGraph's events in that shape. */
#ifndef AG_RUNTIME_ENGINE_H
#define AG_RUNTIME_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "graph/engine.h"

struct ag_engine;
struct ag_engine_run; /* an engine's run (opaque) */

/* A graph as an engine runs it. */
struct ag_engine_graph {
    const struct ag_engine *engine;
    const void *impl; /* the engine's own graph (for the C engine: const struct ag_graph_def *) */
};

/* What the lifecycle gives an engine for one run: callbacks on the run's shard. on_done is called
 * exactly once, possibly from inside start (a run that never waited) or cancel. */
struct ag_engine_host {
    void *ud;
    struct ag_shard *shard; /* the shard the run lives on (its timers, its work budget, its stall report) */
    void (*on_event)(void *ud, const struct ag_graph_event *ev);
    void (*on_done)(void *ud, enum ag_graph_outcome outcome, const char *error);
    /* Optional: true while a reader of the run's stream is behind (nodes may pause for it). */
    bool (*behind)(void *ud);
    /* Optional: true while the run must not start its next superstep (its checkpoints are being made
     * durable: durability "sync"); the host calls the engine's proceed once that is over. */
    bool (*hold)(void *ud);
};

/* The run to execute; everything borrowed for the duration of start (engines keep references). */
struct ag_engine_params {
    const char *thread_id, *run_id;
    const char *owner;                    /* whose run it is: the store its nodes use (runtime/graph_store.h) */
    json_t *config, *context, *metadata;  /* NULL = {}; metadata goes into every checkpoint */
    json_t *input;                        /* an object, or NULL */
    json_t *command;                      /* {"resume"?, "update"?, "goto"?} or NULL */
    json_t *from;                         /* the checkpoint the run continues from, or NULL: no state */
    json_t *interrupt_before, *interrupt_after; /* "*" or an array of node names, or NULL */
    int recursion_limit;                  /* 0 = 25 */
};

struct ag_engine {
    const char *name; /* "c", "js", ... for logs */
    /* The engine's graph registered as graph_id: true and *out filled, or false when it has none. */
    bool (*find)(const struct ag_engine *self, const char *graph_id, struct ag_engine_graph *out);
    /* Starts (or, with a command, resumes) a run. Returns the engine's run, or NULL with the reason in
     * err when the params are invalid for the graph (then on_done is not called). */
    struct ag_engine_run *(*start)(const struct ag_engine_graph *g, const struct ag_engine_host *h,
                                   const struct ag_engine_params *p, char *err, size_t errlen);
    /* Asks the run to stop: on_done(AG_GRAPH_CANCELLED) follows, now or later. Nothing for an ended run. */
    void (*cancel)(struct ag_engine_run *r);
    /* The host's hold is lifted: the run goes on with its next superstep (later, not inside this call). */
    void (*proceed)(struct ag_engine_run *r);
    /* Frees the run (cancelled first when it has not ended). Never from inside one of its callbacks. */
    void (*free)(struct ag_engine_run *r);
};

/* The graph registered as graph_id in the engines, asked most recently added first (the C engine is
 * always there, last); false when none has it. */
bool ag_engine_graph_find(const char *graph_id, struct ag_engine_graph *out);
/* Adds an engine (borrowed for the process's life). Before the shards start (main thread), or from a
 * test; at most AG_ENGINE_MAX besides the C engine. */
#define AG_ENGINE_MAX 4
void ag_engine_add(const struct ag_engine *e);

/* The C engine (graph/engine.h). */
extern const struct ag_engine ag_engine_c;

#endif
