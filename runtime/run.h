/* Runs on their thread's owner shard: admission (the multitask strategies), execution through an
 * engine (runtime/engine.h), persistence of checkpoints and outcomes, and the v1 event log of every
 * run (each event encoded once by the codec protocol/ installs, and shared by every sink).
 *
 * Everything here runs on the shard that owns the run's thread (stateless runs mint a thread id owned
 * by the accepting shard). The shard keeps a runtime entry per thread with runs: the active run, the
 * queue behind it (enqueue, delayed starts) and the runs that ended recently (for join and attach).
 *
 * Nothing here speaks HTTP. Whoever asks for a run is told a typed outcome (struct ag_run_created);
 * whoever watches a run is a sink (struct ag_run_sink): protocol/agent/run_sinks.c turns both into
 * answers. */
#ifndef AG_RUNTIME_RUN_H
#define AG_RUNTIME_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/identity.h"
#include "runtime/run_spec.h" /* struct ag_run_spec, AG_SM_*, enum ag_mt */

struct ag_shard;
struct pg_conn; /* libpq's PGconn */

/* What a shard's runs may take (read-only while the shards run, except by a test between cases). */
struct ag_run_limits {
    uint32_t timeout_ms;   /* a run still active after this ends with status timeout */
    uint32_t heartbeat_ms; /* SSE heartbeat comments and /wait keep-alive newlines */
    uint32_t queue_max;    /* runs pending on one thread (enqueue); beyond: AG_RUN_QUEUE_FULL */
    uint32_t events_max;   /* events kept in memory per run for join/attach replay */
    uint64_t recent_bytes; /* what the ended runs a shard keeps for join/attach may hold; beyond,
                            * the oldest go (join and attach answer from Postgres) */
    uint32_t recent_ms;    /* how long an ended run stays in memory for join/attach */
    uint64_t idle_checkpoint_bytes; /* what the latest checkpoints of threads with no run a shard keeps
                                     * may hold (their next run need not read them); 0: none kept */
    uint32_t idle_checkpoint_ms;    /* how long such a checkpoint is kept */
    uint32_t lease_ms;     /* an active run's claim in Postgres, renewed every lease_ms/3; a run
                            * whose lease expired (its process is gone) ends as error */
    uint32_t direct_ms;    /* a run written once at its end (its creator waits for it on an idle thread)
                            * that is still running this long after it started is created in Postgres
                            * like any run; 0: as soon as it outlives the loop turn it started in */
};
#define AG_RUN_LIMITS_DEFAULT                                                                                          \
    {                                                                                                                  \
        .timeout_ms = 3600000, .heartbeat_ms = 5000, .queue_max = 1000, .events_max = 100000,                          \
        .recent_bytes = 8u << 20, .recent_ms = 30000, .idle_checkpoint_bytes = 16u << 20, .idle_checkpoint_ms = 60000, \
        .lease_ms = 30000, .direct_ms = 5                                                                              \
    }

/* How the creating request is answered. */
enum ag_run_reply {
    AG_RUN_REPLY_RUN,    /* the Run object, at once (POST .../runs) */
    AG_RUN_REPLY_WAIT,   /* the final output, with keep-alive newlines meanwhile (.../runs/wait) */
    AG_RUN_REPLY_STREAM, /* SSE of the run's events (.../runs/stream) */
};

/* Start-up, on the bootstrap thread's connection pg inside the migration transaction (blocking; never
 * on a shard), before any shard takes work: the active runs of agentd processes of this host that are
 * gone (their pid no longer runs, or runs another program) end as error with a message naming the
 * process, their threads too unless a newer run of theirs decides their status, and this process
 * registers itself (agentd_processes). Returns 0, or -1 after writing the reason to err. */
int ag_run_settle_dead(struct pg_conn *pg, char *err, size_t errlen);

/* --- the codec: how events are encoded once for every sink --- */

struct ag_obuf;
/* Installed by the protocol layer at shard start: encodes one v1 event (name, data as JSON text, its id
 * in the run) into a new buffer with one reference. Sinks get that buffer (shared: never modified). */
struct ag_run_codec {
    struct ag_obuf *(*encode)(const char *event, const char *data, size_t len, uint64_t id);
};

/* Per-shard set-up (lim and codec: borrowed for the shard's life) and tear-down. */
void ag_run_shard_init(struct ag_shard *s, const struct ag_run_limits *lim, const struct ag_run_codec *codec);
void ag_run_shard_exit(struct ag_shard *s);
/* Drain: cancel every run of this shard, end its sinks; true when nothing is left. */
bool ag_run_shard_idle(struct ag_shard *s);

/* --- runs --- */

struct ag_run;

/* A run's status as stored (runs.status). */
enum ag_run_status {
    AG_RUN_PENDING,
    AG_RUN_RUNNING,
    AG_RUN_SUCCESS,
    AG_RUN_ERROR,
    AG_RUN_TIMEOUT,
    AG_RUN_INTERRUPTED,
};
/* The stored name of status ("pending", ...). */
const char *ag_run_status_name(enum ag_run_status status);

/* The run's id, its thread's id (valid while the run is). */
const char *ag_run_id(const struct ag_run *run);
const char *ag_run_thread_id(const struct ag_run *run);
/* True once the run has ended and its outcome is stored (joins and attaches answer at once). */
bool ag_run_done(const struct ag_run *run);
/* True when the run's creator asked that its leaving cancels the run (on_disconnect=cancel). */
bool ag_run_cancels_on_disconnect(const struct ag_run *run);
/* The ids of the events the run still holds: first .. end - 1 (an ended run may hold only its last). */
uint64_t ag_run_first_event(const struct ag_run *run);
uint64_t ag_run_end_event(const struct ag_run *run);
/* The answer of wait and join: the last values (or the interrupt), {} when there is none, or the
 * error for a failed run. To free with ag_free. Encoded once: the run keeps the text. */
char *ag_run_outcome_json(struct ag_run *run);
/* The run in memory (any state after its creation), or NULL: not here, on another thread, creating. */
struct ag_run *ag_run_find(const char *thread_id, const char *run_id);

/* --- creation --- */

/* How a creation ended. */
enum ag_run_admit {
    AG_RUN_ADMITTED,       /* created: run is set; run_json is its Run object, except for a run written
                            * once at its end (then it may have ended already: watch it to see its events) */
    AG_RUN_REJECTED_BUSY,  /* multitask "reject" and the thread has a run */
    AG_RUN_QUEUE_FULL,     /* "enqueue" and lim->queue_max runs wait on the thread */
    AG_RUN_NOT_SUBMITTED,  /* the database took no statement: submit_rc is ag_pg_submit's (-EAGAIN, -ENOTCONN) */
    AG_RUN_NOT_STORED,     /* a run that was to be written once had to be created and could not be submitted */
    AG_RUN_DB_FAILED,      /* the statement failed: q says how */
    AG_RUN_NO_ASSISTANT,   /* detail: the assistant id */
    AG_RUN_NO_THREAD,      /* detail: the thread id */
    AG_RUN_NO_CHECKPOINT,  /* detail: the checkpoint id */
    AG_RUN_FOREIGN_BUSY,   /* the thread's active run belongs to another live agentd process: detail is its id */
};

struct ag_pg_query;

/* What the creator is told, valid during the call. */
struct ag_run_created {
    enum ag_run_admit result;
    struct ag_run *run;        /* AG_RUN_ADMITTED */
    const char *run_json;      /* AG_RUN_ADMITTED: the Run object as stored, or NULL (see above) */
    size_t run_json_len;
    const char *detail;        /* see enum ag_run_admit */
    int submit_rc;             /* AG_RUN_NOT_SUBMITTED */
    const struct ag_pg_query *q; /* AG_RUN_DB_FAILED */
};

/* Told the outcome of ag_run_create exactly once, possibly before ag_run_create returns. A creator of a
 * run it will watch (AG_RUN_REPLY_WAIT/STREAM) calls ag_run_replay / ag_run_watch from inside the call. */
typedef void (*ag_run_created_fn)(void *ud, const struct ag_run_created *res);

/* Creates the run described by spec on the calling shard (which must own spec->thread_id). Takes spec's
 * references. how says what the creator will want: a run watched to its end and not delayed may be
 * written once, at its end (its creator is then told once it is stored). */
void ag_run_create(struct ag_run_spec *spec, enum ag_run_reply how, ag_run_created_fn cb, void *ud);

/* --- sinks: whoever watches runs --- */

struct ag_run_sink;
struct trt;

struct ag_run_sink_ops {
    /* One event of run (frame: encoded by the codec; borrowed: take a reference to keep it). */
    void (*on_event)(struct ag_run_sink *k, const struct ag_run *run, uint64_t id, struct ag_obuf *frame);
    /* A run sink: the run ended (after its "end" event); run is the run. A thread sink: the thread's
     * stream is over (the thread was deleted, the shard stops); run is NULL. The sink was detached before
     * the call and may be freed in it. */
    void (*on_end)(struct ag_run_sink *k, struct ag_run *run);
    /* Optional: true while the sink's reader is behind but still reading (the run's nodes pause). */
    bool (*behind)(const struct ag_run_sink *k);
};

/* Embedded in the watcher's own struct; ops set by the watcher, the rest is the runtime's. */
struct ag_run_sink {
    const struct ag_run_sink_ops *ops;
    struct ag_run_sink *next;
    struct ag_run *run; /* the run it follows, NULL for a thread sink between runs */
    struct trt *t;      /* a thread sink's thread, else NULL */
    bool cancel_on_leave;
};

/* Sends k the events run still holds from id from_id on (nothing is attached). */
void ag_run_replay(const struct ag_run *run, struct ag_run_sink *k, uint64_t from_id);
/* k follows run (not ended): its later events, then its end. cancel_on_leave: k's departure
 * (ag_run_unwatch) cancels the run. */
void ag_run_watch(struct ag_run *run, struct ag_run_sink *k, bool cancel_on_leave);
/* k follows every run of the thread in turn (creating the thread's entry): the active run's events from
 * its start, then each run that starts later, until ag_run_unwatch or on_end(NULL). With after_run_id
 * naming the thread's active run, only its events after after_id; naming a run that ended, the next run
 * from its start. */
void ag_run_thread_watch(const char *thread_id, struct ag_run_sink *k, const char *after_run_id, uint64_t after_id);
/* k leaves (its reader is gone): no call follows. */
void ag_run_unwatch(struct ag_run_sink *k);

/* --- operations on runs --- */

/* Why a cancel ended a run, as its Run.cancel_reason says: a cancel request (POST .../cancel,
 * POST /runs/cancel), a run of the thread accepted with multitask_strategy interrupt, the client
 * that watched it leaving (on_disconnect / cancel_on_disconnect). A request with reason "taken" (its
 * input was taken over for steering) records AG_RUN_CANCEL_REASON_TAKEN followed by who took it. */
#define AG_RUN_CANCEL_REASON_USER "user"
#define AG_RUN_CANCEL_REASON_MULTITASK "multitask"
#define AG_RUN_CANCEL_REASON_DISCONNECT "disconnect"
#define AG_RUN_CANCEL_REASON_TAKEN "taken:"

/* Cancels a queued or running run: "interrupt" keeps its checkpoints, rollback deletes the run and
 * them. Its sinks hear of its end; reason (AG_RUN_CANCEL_REASON_*; NULL: none) is stored as its
 * cancel_reason. Nothing for an ended run. */
void ag_run_cancel(struct ag_run *run, bool rollback, const char *reason);
/* Which runs of a thread ag_run_cancel_many cancels when it is given no run ids. */
enum {
    AG_RUN_CANCEL_PENDING = 1u << 0, /* queued (enqueue, a start time, or still being created) */
    AG_RUN_CANCEL_RUNNING = 1u << 1, /* the one the engine executes */
};
/* Cancels (as ag_run_cancel, reason AG_RUN_CANCEL_REASON_USER) the runs of owner on thread_id that have
 * not ended: the nids run_ids, or with none those that `which` (AG_RUN_CANCEL_*) names. Runs of other
 * owners, unknown and ended ones are left alone. On the thread's owner shard. Returns how many it
 * cancelled. */
unsigned ag_run_cancel_many(const char *thread_id, const char *owner, const char *const *run_ids, size_t nids,
                            unsigned which, bool rollback);
/* The same for every thread of this shard: owner's runs that `which` names. Returns how many. */
unsigned ag_run_cancel_owner(const char *owner, unsigned which, bool rollback);
/* ag_run_cancel_owner on every shard: here now, on the others when they take the message (they do not
 * answer). Returns 0, or -EAGAIN when a shard's lane was full (that shard was not asked; the caller
 * may ask again: a cancel is idempotent). */
int ag_run_cancel_owner_everywhere(struct ag_shard *s, const char *owner, unsigned which, bool rollback);
/* Main thread, before the runtime starts: the cross-shard message handlers of runs. */
void ag_run_register(void);
/* An ended run leaves memory now (its rows are being deleted). */
void ag_run_forget(struct ag_run *run);

/* The thread is being deleted: cancel its runs without writing their outcome (the rows go with it);
 * its thread sinks end. */
void ag_run_thread_deleted(struct ag_shard *s, const char *thread_id);
/* The thread's state changed outside a run (POST /threads/{id}/state): the next run reads the
 * latest checkpoint from Postgres instead of the copy kept in memory. */
void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id);
/* True when the thread has a run active or queued on this shard. */
bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id);
/* The heartbeat interval of streams of runs (runs.heartbeat_ms). */
uint32_t ag_run_heartbeat_ms(void);

#endif
