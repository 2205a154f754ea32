/* Module-private parts of the run lifecycle (runtime/run.c): the per-shard state of runs and their
 * threads, shared with creation and admission (run_create.c), the operations on existing runs and the
 * sinks (run_ops.c) and persistence (run_store.c). Everything here is used on the thread's owner shard
 * only. run.c owns the lifecycle (events, execution, end); the others call into it, never the reverse. */
#ifndef AG_RUNTIME_RUN_INTERNAL_H
#define AG_RUNTIME_RUN_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/obuf.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "persist/pg.h"
#include "persist/pgargs.h"
#include "runtime/engine.h"
#include "runtime/run.h"
#include "runtime/run_modes.h"
#include "runtime/stats.h"

struct ag_v2proj;

enum rstate {
    R_CREATING,  /* RUN_CREATE (or a direct run's RUN_PREPARE) in flight */
    R_QUEUED,    /* created; waiting for the thread (enqueue), its start time or a run ahead still creating */
    R_RUNNING,   /* the engine executes it */
    R_FINISHING, /* RUN_FINISH (or RUN_RECORD) in flight */
    R_DONE,      /* ended and written; kept for join/attach until evicted */
};

/* A thread with runs on this shard. */
struct trt {
    char id[37];
    struct ag_run *active;
    /* Runs not started yet, in the order they were accepted (run->qnext): R_QUEUED ones, and R_CREATING
     * ones, which hold their place from acceptance so that a creation answered late (a direct run's
     * RUN_PREPARE turned into a RUN_CREATE, writes answered out of order) never lets a later run start
     * first. Only an R_QUEUED head starts. */
    struct ag_run *qhead, *qtail;
    unsigned creating;            /* runs in R_CREATING */
    unsigned finishing;           /* runs in R_FINISHING (they still point here) */
    json_t *last_cp;              /* the latest root checkpoint (owned); valid when cp_known */
    bool cp_known;
    json_t *idle_cp;              /* while !cp_known: what this shard kept of the thread's latest checkpoint
                                   * (owned; run_idle.c), to be confirmed by Postgres; NULL: none */
    struct ag_run_sink *waiting;  /* thread sinks between runs */
    unsigned nthread_sinks;       /* thread sinks, waiting or following a run */
};

/* Where the run stands with Postgres. */
enum run_persist {
    /* Written once, at its end (RUN_PREPARE read what it needs; RUN_RECORD writes the run, its
     * checkpoints and the thread together), unless it still runs runs.direct_ms after it started: then
     * it is promoted. */
    RP_DIRECT,
    RP_PROMOTING, /* created like any run (RUN_CREATE, in place of its first checkpoint write) */
    RP_STORED,    /* its row exists; nothing of it in flight */
    RP_WRITING,   /* its row exists; a checkpoint write is in flight (later writes wait for it) */
    RP_ORPHAN,    /* its promotion failed: nothing of it is written, its creator was told */
};

struct ag_run {
    char run_id[37];
    struct trt *t;
    enum rstate state;
    struct ag_run_spec spec;
    enum ag_run_reply how;
    ag_run_created_fn created_cb; /* the creator, until it is told (then NULL) */
    void *created_ud;
    json_t *kwargs;          /* as stored: merged config and context */
    char *kwargs_text;       /* a direct run's kwargs as RUN_PREPARE read them (RUN_RECORD writes them) */
    json_t *fork_cp;         /* the checkpoint a fork starts from (owned) */
    json_t *known_cp;        /* the start checkpoint its RUN_PREPARE / RUN_CREATE told Postgres it has
                              * (owned; NULL: none): answered by its id alone when it is the latest */
    json_t *prev_cp;         /* the thread's checkpoint when the run started (rollback restores it) */
    json_t *start_cp;        /* the checkpoint the run started from (owned, stamped: persist/cpstore.h; NULL: none) */
    json_t *stamp_prev;      /* the checkpoint its next one is stamped against (owned; NULL: none) */
    bool wrote_cps;          /* a checkpoint write of it was sent */
    bool took_events;        /* its RUN_RECORD in flight carries the thread's v2 events (ag_tlog_take) */
    bool holds_events;       /* a direct run past its first turn: the v2 log waits for its RUN_RECORD
                              * (ag_tlog_hold_writes) */
    bool cps_lost;           /* a checkpoint write of it failed: what follows may not build on those */
    struct ag_engine_graph graph;
    struct ag_engine_run *exec;
    struct ag_v2proj *v2;    /* its events in the thread's v2 log (NULL for a stateless run deleted after) */
    uint64_t v2_end;         /* the seq of its terminal v2 event, held until the outcome is stored */
    /* Events, each encoded once by the shard's codec; ids ev_first .. ev_first + nev - 1. */
    struct ag_obuf **ev;
    uint32_t nev, evcap;
    uint64_t ev_first, next_id;
    size_t ev_bytes;       /* what ev's frames hold */
    size_t recent_bytes;   /* what it holds as counted in run_shard.recent_bytes (in the recent list) */
    uint64_t ended_ns;     /* when it joined the recent list */
    json_t *output;  /* the last values payload (or interrupt), the answer of wait/join */
    size_t output_bytes; /* its JSON text's length once it was encoded (0: not yet) */
    /* output's JSON text when a values event of the run encoded it (its stream's, or the last step's):
     * the answer of wait and join and the outcome's statement take it instead of encoding the state
     * again; NULL: not encoded. */
    char *output_text;
    struct ag_run_modes modes; /* its v1 stream modes' framing */
    json_t *md;      /* the run's metadata as nodes and checkpoints see it */
    /* Outcome. */
    enum ag_run_status status; /* AG_RUN_PENDING until it ends */
    char *error;               /* error text for error/timeout */
    enum ag_run_status cancel_status; /* set by a cancel (interrupted / timeout / error), else AG_RUN_PENDING */
    char *cancel_reason;              /* why a cancel ended it (Run.cancel_reason; NULL: none) */
    bool rollback;
    bool refused_resume; /* strict_resume and the engine refused its resume: the thread stays as it was */
    /* An interrupt or rollback run accepted after this one was admitted while this one was still
     * creating: it is cancelled (as interrupted) as soon as it is created. */
    bool preempted, preempted_rollback;
    /* Wall clock (microseconds since the epoch): when the server accepted it (runs.created_at), when it
     * started and when it ended (runs.started_at, ended_at; 0 until then), whenever they are written. */
    uint64_t accepted_us, started_us, ended_us;
    enum run_persist persist;
    json_t *final_values, *final_interrupts;
    /* Persistence. */
    json_t *cps;        /* checkpoints not yet written (its subgraphs' too, with their checkpoint_ns) */
    json_t *sub_stamps; /* subgraph namespace → its latest checkpoint as stamped (persist/cpstore.h), or NULL */
    struct ag_pg_query q;
    struct ag_pg_args args;
    struct ag_task flush_task;
    struct ag_task end_task; /* a direct run that ends with nothing to write */
    struct ag_timer timer; /* timeout while running; start time while queued */
    struct ag_timer promote_timer; /* a direct run that outlived its turn: when it is promoted */
    struct ag_run_sink *sinks;
    struct ag_run *qnext;
    struct ag_run *rnext, *rprev; /* the recent list (R_DONE) */
};

struct run_shard {
    struct ag_shard *s;
    const struct ag_run_limits *lim;
    const struct ag_run_codec *codec;
    struct ag_strmap threads; /* id → struct trt */
    struct ag_strmap runs;    /* run id → struct ag_run (any state after R_CREATING) */
    struct ag_run *recent_head, *recent_tail;
    uint32_t nrecent;
    size_t recent_bytes; /* what the runs in the recent list hold (AG_STAT_ENDED_RUN_BYTES) */
    struct ag_timer recent_expire; /* armed while the recent list is not empty (runs.recent_ms) */
    struct ag_strmap idle;         /* thread id → the latest checkpoint of a thread with no entry (run_idle.c) */
    struct idle_cp *idle_head, *idle_tail; /* oldest first */
    size_t idle_bytes;                     /* what they hold (AG_STAT_IDLE_CHECKPOINT_BYTES) */
    struct ag_timer idle_expire;           /* armed while one is kept (runs.idle_checkpoint_ms) */
    uint32_t live; /* runs not yet R_DONE */
};

/* This shard's runs (NULL before ag_run_shard_init). */
extern _Thread_local struct run_shard *ag_run__rs;
/* This process's id as the claimant of its runs (runs.claimed_by), set by ag_run__boot_id_init. */
extern char ag_run__boot_id[37];
/* Makes ag_run__boot_id, once per process (any thread may call it). */
void ag_run__boot_id_init(void);
/* multitask_strategy as stored, by enum ag_mt. */
extern const char *const ag_run__mt_names[];

/* --- helpers --- */

/* Compact JSON text of v (any value), to free with ag_free; NULL for NULL. */
char *ag_run__dumps(const json_t *v);
/* True for the statuses of a failed run (error, timeout): their answer is the error, not the output. */
bool ag_run__failed(enum ag_run_status status);

/* --- thread entries --- */

/* The thread's entry, created when missing and create is set (else NULL). */
struct trt *ag_run__trt_get(const char *id, bool create);
/* Runs that will change the thread's state (admission counts these). */
bool ag_run__trt_busy(const struct trt *t);
/* A run may be written once, at its end, only when nothing else on the thread is being written: true
 * when t has no run but self (NULL: none at all), nothing queued, creating, active or finishing. self
 * is a run whose RUN_PREPARE has come back: it no longer counts as creating. */
bool ag_run__direct_ok(const struct trt *t, const struct ag_run *self);
/* Appends run (R_CREATING) to t's queue: its place in the start order is taken at acceptance. */
void ag_run__queue_append(struct trt *t, struct ag_run *run);
/* Takes run out of t's queue (nothing when it is not there). */
void ag_run__queue_remove(struct trt *t, struct ag_run *run);
/* The first R_QUEUED run of t's queue (NULL: none; runs still creating are skipped). */
struct ag_run *ag_run__first_queued(const struct trt *t);
/* Frees t when nothing refers to it any more. Ended runs keep no pointer to it (run->t is cleared). */
void ag_run__trt_release(struct trt *t);
/* cp (borrowed; NULL: none) becomes the thread's latest checkpoint known here. */
void ag_run__set_last_cp(struct trt *t, json_t *cp);

/* --- events and sinks (run.c) --- */

/* Appends one v1 event (data encoded once) to the run's log and sends it to its sinks. */
void ag_run__emit(struct ag_run *run, const char *event, const json_t *data);
/* What runtime/run_modes frames for a run's stream modes goes to its log (ud: the run). */
void ag_run__emit_modes(void *ud, const char *event, const json_t *data);
/* Tells the run's creator res (once; nothing when it was told already). */
void ag_run__tell_creator(struct ag_run *run, struct ag_run_created *res);
/* k (a thread sink) follows run from its event from_id on: the ones buffered now, then live. */
void ag_run__thread_sink_attach(struct ag_run_sink *k, struct ag_run *run, uint64_t from_id);
/* k stops following its run: on to the thread's active run, or waiting for the next. */
void ag_run__thread_sink_next(struct ag_run_sink *k);
/* Ends every thread sink of t (the thread is deleted, or the shard stops). */
void ag_run__thread_sinks_end(struct trt *t);

/* --- lifecycle (run.c) --- */

/* Timer of a run delayed by after_seconds: its start time has come. */
void ag_run__on_delay(struct ag_timer *tm);
/* Starts the first queued run when the thread is free and its start time has come. */
void ag_run__start_next(struct trt *t);
/* Ends a queued or running run with status (its checkpoints and the run go with rollback); reason (NULL:
 * none) becomes its cancel_reason unless it has one. */
void ag_run__run_cancel(struct ag_run *run, enum ag_run_status status, bool rollback, const char *reason);
/* The run's end is stored (or will never be): its "end" event, its sinks, the recent list. */
void ag_run__ended(struct ag_run *run);
/* A direct run that ended with nothing to write: its creator, then its end, in a later task. */
void ag_run__end_unwritten(struct ag_run *run);
/* Frees run and everything it owns (an ended run, or one refused before it was admitted). */
void ag_run__free(struct ag_run *run);
/* An ended run leaves the recent list and memory. */
void ag_run__forget(struct ag_run *run);
/* An ended run joins the recent list (it stays for join and attach within runs.recent_* bounds). */
void ag_run__recent_add(struct ag_run *run);
/* Per-shard set-up of the recent list. */
void ag_run__recent_init(void);
/* Frees what the recent list holds (shard exit). */
void ag_run__recent_free_all(void);

/* --- idle threads' latest checkpoints (run_idle.c) --- */

/* Keeps cp (borrowed, stamped: persist/cpstore.h) as the latest checkpoint of thread_id, whose entry goes;
 * within runs.idle_checkpoint_bytes, the least recently kept leaving first. */
void ag_run__idle_put(const char *thread_id, json_t *cp);
/* What was kept for thread_id (a new reference, no longer kept), or NULL. */
json_t *ag_run__idle_take(const char *thread_id);
/* Forgets what was kept for thread_id. */
void ag_run__idle_drop(const char *thread_id);
/* Per-shard set-up and exit. */
void ag_run__idle_init(void);
void ag_run__idle_free_all(void);

/* --- persistence (run_store.c) --- */

/* The run a query of it belongs to. */
struct ag_run *ag_run__run_of(struct ag_pg_query *q);
/* run->q becomes a new query of the run (its parameters still to fill). */
void ag_run__query_init(struct ag_run *run, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb);
/* True while a statement of the run holds its later writes back (RP_PROMOTING, RP_WRITING). */
bool ag_run__writing(const struct ag_run *run);
/* A direct run whose RUN_RECORD may carry the thread's v2 events no longer holds the log's own write
 * back (it ends, or it is promoted). */
void ag_run__release_events(struct ag_run *run);

/* A statement that held the run's later writes back (a checkpoint write, a promotion) is done: the
 * outcome goes now if the run has ended meanwhile, else the checkpoints that came meanwhile. */
void ag_run__progress_done(struct ag_run *run);
/* The run wrote a checkpoint (kept in run->cps): written within the turn unless the run ends first. */
void ag_run__schedule_progress(struct ag_run *run);
/* The run ended (status set): its outcome is written (RUN_FINISH, or RUN_RECORD for a direct run),
 * retried while there is no database, then ag_run__ended. */
void ag_run__submit_finish(struct ag_run *run);
/* The thread's event seq reservation as RUN_CREATE and RUN_RECORD take it (NULL: not known here). */
const char *ag_run__reservation_param(struct ag_run *run);
/* A wall-clock time of the run as the statements take it (NULL for 0: not yet). */
const char *ag_run__us_param(struct ag_pg_args *a, uint64_t us);
/* Starts / stops the shard's run lease sweeper (shard 0). */
void ag_run__leases_start(struct ag_shard *s, const struct ag_run_limits *lim);
void ag_run__leases_stop(struct ag_shard *s);

#endif
