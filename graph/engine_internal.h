/* Module-private parts of the run engine (graph/engine.h), shared by its two files: engine.c (the
 * superstep machine, checkpoints and the node API) and engine_start.c (starting a run from a checkpoint
 * and a command, cancelling, freeing). */
#ifndef AG_GRAPH_ENGINE_INTERNAL_H
#define AG_GRAPH_ENGINE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "core/timer.h"
#include "graph/engine.h"

#define DEFAULT_RECURSION_LIMIT 25

enum task_st {
    TS_NEW,         /* not started */
    TS_RUNNING,     /* inside its node function */
    TS_SLEEPING,    /* timer armed */
    TS_PENDING,     /* the node finishes it from its own completion */
    TS_DONE,        /* finished (or carried over finished from the checkpoint) */
    TS_FAILED,      /* failed */
    TS_INTERRUPTED, /* stopped at an interrupt */
    TS_CANCELLED,   /* a sibling failed, or the run was cancelled */
};

struct ag_graph_task {
    struct ag_graph_run *run;
    const struct ag_graph_node *node; /* NULL for the __start__ task */
    const char *name;
    char id[37];
    int push;    /* -1: a pull task (its node was triggered by an edge); else the index of the Send packet */
    json_t *arg; /* a push task's input (the packet's arg); NULL for pull tasks */
    json_t *go;  /* the goto of the command the node ended with (names and packets), or NULL */
    enum task_st st;
    bool in_call;     /* its node function is on the stack */
    bool interrupted; /* interrupt() returned NULL in this execution */
    json_t *update;   /* normalized update once finished (NULL: none) */
    char *error;
    json_t *interrupts; /* [{id,value}] recorded in this execution */
    json_t *resume;     /* answers, by interrupt index */
    int ninterrupts;    /* interrupt() calls so far in this execution */
    int attempt;        /* this execution's attempt, 1-based (retry policies) */
    json_t *streamed;   /* ids of messages streamed as chunks (an object used as a set) */
    json_t *chunk_meta; /* MESSAGE meta for chunks, built on first use */
    struct ag_timer timer;
    ag_graph_node_fn cont;
    void *store_op;       /* the host's handle of a store operation in flight, or NULL */
    json_t *sub_from;     /* a subgraph node's task: the subgraph's checkpoint to go on from (carried), or NULL */
    json_t *carried_ints; /* the interrupts the carried task stopped at (their ids), or NULL */
    json_t *resume_new;   /* the answers this run brought for them, or NULL */
    json_t *sub_ckpt;     /* the subgraph's latest checkpoint once it stopped at an interrupt, or NULL */
    json_t *store_result; /* the last store operation's result (NULL: it failed) */
    char *store_error;    /* why it failed */
    void *ud;
    void (*ud_free)(void *);
    int64_t slots[AG_GRAPH_TASK_SLOTS];
};

enum run_phase {
    RP_STEP,      /* the tasks in r->tasks are to run next */
    RP_WAITING,   /* tasks are running */
    RP_STEP_DONE, /* all tasks of the step ended; apply them */
    RP_ENDED,
};

struct ag_graph_run {
    struct ag_graph_host h;
    const struct ag_graph_def *g;
    char *thread_id, *run_id;
    json_t *config, *context, *metadata;
    json_t *input;                /* the __start__ task's write, until applied */
    json_t *values;               /* current state; never modified once shown (new object per step) */
    json_t *ckpt;                 /* latest checkpoint emitted (or `from`); never modified */
    json_t *barriers;             /* wait-for-all edges' sources seen (ag_graph__barriers_step), or NULL */
    int step;                     /* its step */
    struct ag_graph_task **tasks; /* the tasks scheduled from ckpt: pull tasks in name order, then push tasks
                                   * in packet order (LangGraph's order of task paths: how updates apply) */
    size_t ntasks, npending;
    json_t *ibefore, *iafter; /* arrays of names, or the string "*" */
    bool skip_ibefore;        /* the first step of a continuing run goes past interrupt_before */
    int limit, steps;
    enum run_phase phase;
    struct ag_timer yield; /* the next superstep, in a later turn, once the turn's work budget is spent */
    bool driving;          /* inside drive() or a node call: task ends only count down */
    int in_cb;             /* inside a host callback */
};

/* Runs r's supersteps until it waits on a task, spends the turn's work budget (then r->yield is armed)
 * or ends. */
void ag_graph__drive(struct ag_graph_run *r);
/* r->yield's callback: the next superstep, in a later loop turn. */
void ag_graph__on_yield_timer(struct ag_timer *tm);
/* Calls node function fn for t (its first call or a continuation) and settles what the call leaves: an
 * interrupt, or a node that returned without ending its task. */
void ag_graph__call_node(struct ag_graph_task *t, ag_graph_node_fn fn);
/* Whether t may still act: its run goes on and it has not ended (nor stopped at an interrupt). */
bool ag_graph__task_live(const struct ag_graph_task *t);
/* Passes an event of a subgraph (ev->ns set) on to r's host as it is. */
void ag_graph__forward(struct ag_graph_run *r, const struct ag_graph_event *ev);
/* Sends an event of kind to the host; data and meta are stolen. */
void ag_graph__emit(struct ag_graph_run *r, enum ag_graph_ev_kind kind, int step, const struct ag_graph_task *t,
                    json_t *data, json_t *meta);
/* True once r reported its outcome. */
bool ag_graph__ended(const struct ag_graph_run *r);
/* Reports r's outcome to the host once (interrupts is stolen). */
void ag_graph__end_run(struct ag_graph_run *r, enum ag_graph_outcome outcome, json_t *interrupts, const char *error);

/* A checkpoint's task entry (interrupts, result and resume are not stolen). */
json_t *ag_graph__task_json(const char *id, const char *name, const char *error, json_t *interrupts, json_t *result,
                            json_t *resume);
/* A push task's entry: as ag_graph__task_json, path ["__pregel_push", idx], and its input under "send_arg"
 * (kept for a later run to continue it; not shown by the API). */
json_t *ag_graph__push_task_json(const char *id, const char *name, int idx, const json_t *arg, const char *error,
                                 json_t *interrupts, json_t *result, json_t *resume);
/* The index of a checkpoint task entry's Send packet, or -1 for a pull task. */
int ag_graph__task_push_index(const json_t *task);
/* The id of push task idx for node `name` from checkpoint ckpt. */
void ag_graph__push_task_id(const char *ckpt, const char *name, int idx, char out[37]);
/* A checkpoint; next and tasks are stolen, values is not. */
json_t *ag_graph__checkpoint_json(const char *id, const char *parent, int step, const char *source, json_t *values,
                                  json_t *next, json_t *tasks, const json_t *metadata);
/* The id of checkpoint ckpt (NULL: none). */
const char *ag_graph__ckpt_id(const json_t *ckpt);
/* Schedules the tasks for names (sorted) and sends ({"node","arg"} packets, NULL: none) from checkpoint id
 * ckpt; see engine.c. */
void ag_graph__schedule(struct ag_graph_run *r, const json_t *names, const json_t *sends, const char *ckpt,
                        const json_t *carried, const json_t *resume_extra);
/* Writes a checkpoint with next = names then the sends' nodes, and emits it; see engine.c. */
void ag_graph__write_checkpoint(struct ag_graph_run *r, const char *source, const json_t *names, const json_t *sends,
                                const json_t *carried, const json_t *resume_extra);
/* The task named name in a checkpoint's tasks array, or NULL. */
const json_t *ag_graph__find_task(const json_t *tasks, const char *name);
/* Stops what t waits on: its timer and a store operation in flight. */
void ag_graph__task_stop_io(struct ag_graph_task *t);
/* Frees t's node state (its ud) if any. */
void ag_graph__task_free_ud(struct ag_graph_task *t);
/* Frees r's scheduled tasks. */
void ag_graph__free_tasks(struct ag_graph_run *r);

#endif
