/* Periodic maintenance statements (the TTL sweepers of threads and store): one statement on shard 0
 * every interval, re-armed when it is done, and run again at once when it found a full batch. Only
 * shard 0 ever touches a sweeper: each module keeps its struct ag_sweep in a thread-local (per-shard)
 * variable, never a global written by several shards. The query lives in that variable because the
 * database layer may still hold it after the shard's exit hook (ag_pg_exit, later on the same thread,
 * walks the queries it holds and runs no callback). */
#ifndef AG_RUNTIME_SWEEP_H
#define AG_RUNTIME_SWEEP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/timer.h"
#include "persist/pg.h"

struct ag_shard;

/* What a sweeper runs (a static const table in the module). */
struct ag_sweep_def {
    enum ag_sql stmt;     /* a write; $1 is batch */
    const char *batch;    /* the batch size, as text (or whatever $1 is) */
    const char *arg2;     /* $2, or NULL when the statement has one parameter */
    uint64_t interval_ns; /* pause between runs (and before the first, unless first_ns) */
    uint64_t first_ns;    /* pause before the first run; 0: interval_ns */
    /* Reads the outcome of a run (q->status, res) and logs what it wants; returns true when the batch
     * was full (more are waiting: the next run goes out at once). */
    bool (*done)(const struct ag_pg_query *q, PGresult *res);
};

/* One sweeper's state; zero until ag_sweep_start. */
struct ag_sweep {
    const struct ag_sweep_def *def;
    struct ag_shard *s; /* the shard running it, NULL when not running */
    struct ag_timer timer;
    struct ag_pg_query q;
    bool busy; /* q is submitted */
};

/* Per-shard start (after ag_pg_start): on shard 0 of a server with a database, resets w to run def
 * and arms it; on any other shard, nothing. A run the database layer refuses (no connection yet,
 * queue full) is tried again after the interval; none is started while the shard drains or stops. */
void ag_sweep_start(struct ag_sweep *w, struct ag_shard *s, const struct ag_sweep_def *def);

/* Per-shard exit: disarms w when s is the shard running it (shard 0); elsewhere nothing. */
void ag_sweep_stop(struct ag_sweep *w, struct ag_shard *s);

#endif
