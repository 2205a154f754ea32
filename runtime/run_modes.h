/* v1 stream modes: how a run's engine events (graph/engine.h) become the SSE events of the stream
 * modes its creator asked for, as LangGraph Platform frames them: values, updates (interrupts also
 * as values when only values were asked), messages (metadata / partial / complete), messages-tuple,
 * custom, events (LangChain astream_events objects), debug, tasks and checkpoints.
 *
 * One struct per run, on the run's shard. It frames; the caller keeps the events (protocol/agent/
 * run.c appends each to the run's log and its subscribers) through emit. */
#ifndef AG_RUNTIME_RUN_MODES_H
#define AG_RUNTIME_RUN_MODES_H

#include <jansson.h>
#include <stdbool.h>

struct ag_graph_event;

struct ag_run_modes {
    unsigned modes;                  /* AG_SM_* (runtime/run.h) */
    const char *thread_id, *run_id;  /* borrowed, valid for the run's life */
    const json_t *md;                /* the run's metadata (borrowed; set when it starts, else NULL) */
    /* Appends one event (data borrowed for the call). */
    void (*emit)(void *ud, const char *event, const json_t *data);
    void *ud;
    json_t *msg_acc;                 /* messages mode: message id → message accumulated so far (owned) */
    bool subgraphs;                  /* stream_subgraphs: subgraphs' events too, as "<mode>|<namespace>" */
    const char *ns;                  /* the namespace of the event being framed (NULL: the root) */
};

/* The run started (events mode: the graph's on_chain_start). m->md must be set. */
void ag_run_modes_start(struct ag_run_modes *m, const json_t *input);
/* One engine event, framed for every mode that shows it. */
void ag_run_modes_event(struct ag_run_modes *m, const struct ag_graph_event *ev);
/* The run ended with status and error (NULL unless it failed) and output (its last values or
 * interrupt, NULL: none): events mode's on_chain_end, then `error` for error and timeout. */
void ag_run_modes_end(struct ag_run_modes *m, const char *status, const char *error, const json_t *output);
/* Frees what m owns. */
void ag_run_modes_clear(struct ag_run_modes *m);

#endif
