/* The graph engine test's recording host (graph_harness.c): a fake clock and a local timer heap, every
 * event recorded as JSON, and helpers that start runs and read what was recorded. */
#ifndef GRAPH_HARNESS_H
#define GRAPH_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shard.h"
#include "core/timer.h"
#include "graph/engine.h"

/* What a run reported to its host. */
struct rec {
    struct ag_timer_heap heap;
    uint64_t now;
    json_t *events; /* [{"kind","step","node","data","meta","ns" (a subgraph's events only)}] */
    int done;
    enum ag_graph_outcome outcome;
    json_t *values, *interrupts;
    char *error;
    struct ag_graph_run *run;
    bool cancel_on_custom;    /* cancel the run from inside the first custom event */
    struct ag_shard *shard;   /* a fake shard for the run work budget (NULL: none) */
    uint32_t turn_work;       /* its budget, refilled before every fake loop turn */
    uint32_t max_turn_events; /* the most events seen in one fake turn */
    unsigned turns;           /* fake loop turns run_timers made */
    bool hold;                /* the host holds the next superstep back (durability "sync") */
    json_t *store;            /* the fake store: {"<labels joined by .>/<key>": item}; NULL until used */
    int store_ops;            /* store operations started */
    bool store_down;          /* the fake store refuses to start operations */
    int holds_asked;          /* times the engine asked */
};

/* A run to start (see start): JSON texts, NULL for none. */
struct start_opts {
    const char *input, *command, *config, *ibefore, *iafter;
    json_t *from;
    int limit;
};

/* The engine host that records into r; its store is an in-memory map that answers in the next timer round. */
struct ag_graph_host host_of(struct rec *r);
/* A recorder with no events; rec_reset frees its run and forgets what it saw; rec_free also frees r. */
void rec_init(struct rec *r);
void rec_reset(struct rec *r);
void rec_free(struct rec *r);
/* Fires timers at their deadlines until the run ended or nothing is armed. */
void run_timers(struct rec *r);
/* The JSON value of s (any type), or NULL after printing why. */
json_t *parse(const char *s);
/* Starts a run of g on "thread-1" as "run-1" from o (JSON texts) with r as its host; r->run is the run, or
 * NULL with the reason in err. */
struct ag_graph_run *start(struct rec *r, const struct ag_graph_def *g, struct start_opts o, char *err, size_t errlen);
/* The kinds of the recorded events, space-separated. */
const char *kinds(const struct rec *r, char *out, size_t n);
/* The i-th event of kind (0-based), or NULL. */
json_t *nth(const struct rec *r, const char *kind, int i);
/* How many events of kind were recorded. */
int count(const struct rec *r, const char *kind);
/* The last checkpoint emitted (a new reference, for continuing the thread). */
json_t *latest(const struct rec *r);
/* v[key] as a string, or NULL. */
const char *s_of(const json_t *v, const char *key);
/* The last of values.messages (borrowed), or NULL. */
json_t *last_message(const json_t *values);
/* s is 32 lowercase hex digits (an interrupt id). */
bool is_hex32(const char *s);

#endif
