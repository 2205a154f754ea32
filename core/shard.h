/* The shard runtime: one pinned thread per shard, each with its own io_uring, timer heap, deferred
 * task list, metrics, and an inbox of SPSC queues (one per other shard) woken with IORING_OP_MSG_RING.
 *
 * Loop phases, in order, every turn:
 *   1. cross-shard inbox (control lanes, then data lanes; batched, budgeted)
 *   2. reap completions in one batch
 *   3. deferred tasks (budgeted)              4. timers (capped; only those armed before the phase, and
 *                                                 it stops early once the work budget is spent)
 *   5. flush: the app's hook (socket writes), the stall report, cross-shard wake-ups, the log write
 *   6. one submit-and-wait, then cache `now`.
 * The work budget (ag_shard_spend; sized by work_per_turn) is refilled at the start of every turn.
 *
 * Completions are dispatched by the op kind in the top byte of user_data; the upper layers register a
 * handler per kind before the runtime starts. user_data = kind:8 | generation:24 | index:32, so a late
 * completion for a reused slot can be recognised by its generation. */
#ifndef AG_CORE_SHARD_H
#define AG_CORE_SHARD_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/spsc.h"
#include "core/stats.h"
#include "core/timer.h"

struct ag_shard;
struct ag_runtime;

/* Op kinds 0..7 belong to core; upper layers use 8..255. */
enum {
    AG_OP_NONE = 0,       /* completions nobody needs (errors only are logged) */
    AG_OP_XWAKE = 1,      /* another shard queued messages for us */
    AG_OP_XWAKE_SENT = 2, /* our MSG_RING to another shard failed (success is skipped) */
    AG_OP_CTRL = 3,       /* control from the main thread: drain or stop */
    AG_OP_LOG = 4,        /* the log write finished */
    AG_OP_XROOM = 5,      /* a shard took messages from a data lane we found full */
    AG_OP_XROOM_SENT = 6, /* our MSG_RING saying so failed (success is skipped) */
    AG_OP_USER = 8,
};

static inline uint64_t ag_ud(unsigned kind, uint32_t gen, uint32_t idx)
{
    return (uint64_t)kind << 56 | (uint64_t)(gen & 0xffffffu) << 32 | idx;
}
static inline unsigned ag_ud_kind(uint64_t ud)
{
    return (unsigned)(ud >> 56);
}
static inline uint32_t ag_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> 32) & 0xffffffu;
}
static inline uint32_t ag_ud_idx(uint64_t ud)
{
    return (uint32_t)ud;
}

/* Completion handler for one op kind; runs on the shard that submitted the op. */
typedef void (*ag_cqe_fn)(struct ag_shard *s, struct io_uring_cqe *cqe);
/* Registers fn for op kind (>= AG_OP_USER). Call before ag_runtime_start. */
void ag_shard_register_op(unsigned kind, ag_cqe_fn fn);

/* Cross-shard message handler for message type (0..255). Call before ag_runtime_start. */
typedef void (*ag_msg_fn)(struct ag_shard *s, const struct ag_msg *m);
void ag_shard_register_msg(unsigned type, ag_msg_fn fn);

/* A deferred task: runs on the same shard in phase 3 of this or the next turn. Embedded in its owner. */
struct ag_task {
    struct ag_task *next;
    void (*fn)(struct ag_task *t);
    bool queued;
};

/* What the shard runs now, named by the layer that runs it (ag_shard_activity_begin), so that a loop turn
 * that took too long (limits.stall_report_ms) is reported with what held it. */
#define AG_SHARD_ACTIVITY_LEN 112
struct ag_shard_activity {
    uint64_t since_ns;              /* when `cur` began; 0: nothing named runs */
    char cur[AG_SHARD_ACTIVITY_LEN]; /* what runs now */
    char top[AG_SHARD_ACTIVITY_LEN]; /* what ran longest this turn ("" when nothing named ran) */
    uint64_t top_ns;                 /* and for how long */
    uint64_t reported_ns;            /* the last stall report (at most one a second is logged) */
    uint64_t unreported;             /* stalls since that report that were not logged */
};

/* What the upper layers do at the runtime's fixed points. Every hook is optional. */
struct ag_shard_hooks {
    /* On the shard thread after its ring exists, before the first turn. Non-zero aborts start-up. */
    int (*on_start)(struct ag_shard *s);
    /* Phase 5: submit pending writes. */
    void (*on_flush)(struct ag_shard *s);
    /* The main thread asked for a drain: stop accepting, close what is idle. */
    void (*on_drain)(struct ag_shard *s);
    /* While draining: true when the shard has nothing left in flight and may exit. */
    bool (*is_idle)(struct ag_shard *s);
    /* The deadline passed (or a second signal came): close everything now. */
    void (*on_stop)(struct ag_shard *s);
    /* On the shard thread after the loop ended, before the ring is torn down. */
    void (*on_exit)(struct ag_shard *s);
    /* Shard `to` took messages from the data lane to it that refused one of ours (ag_shard_send_data
     * returned -EAGAIN): what waits for that lane may go on. Called once per refusal, or later. */
    void (*on_data_room)(struct ag_shard *s, int to);
};

struct ag_shard {
    int id;
    int cpu; /* pinned CPU or -1 */
    struct ag_runtime *rt;
    struct io_uring ring;
    uint64_t now_ns; /* CLOCK_MONOTONIC, cached once per turn */
    struct ag_timer_heap timers;
    struct ag_task *tasks_head, *tasks_tail;
    bool draining, stopping, more_work;
    uint64_t *wake_pending; /* bitmap of shards we queued messages for this turn */
    uint64_t *room_pending; /* bitmap of shards whose full data lane to us we took messages from */
    unsigned log_inflight;
    /* Budgeted work this turn may still do: rt->loop.work_per_turn at the start of every turn, spent by the
     * upper layers (ag_shard_spend); once 0, they yield to the next turn and the timer phase stops early. */
    uint32_t work_left;
    struct ag_shard_activity act;
    /* The last wait ended with nothing completed; the allocation count and time of the last
     * ag_alloc_collect (see run_loop). */
    bool quiet;
    uint64_t collect_allocs, collect_ns;
    void *net; /* owned by net/ */
    void *pg;  /* owned by persist/ */
    void *app; /* owned by the protocol layer */
    struct ag_stats stats;
};

/* Every ordered pair of shards has two lanes, each a bounded SPSC queue. The control lane carries
 * what must not wait behind bulk traffic (forwarded requests, their answers, goodbyes, broadcasts);
 * the data lane carries bulk stream pieces. The receiver drains every control lane before any data
 * lane, each under its own budget, so a data lane full of pieces never refuses nor delays a control
 * message. Messages keep their order within one lane only. */
enum ag_lane { AG_LANE_CTRL = 0, AG_LANE_DATA = 1, AG_LANES = 2 };
#define AG_XQ_CTRL_SLOTS 4096 /* control messages queued from one shard to another; beyond: -EAGAIN */
#define AG_XQ_DATA_SLOTS 4096 /* data messages queued from one shard to another; beyond: -EAGAIN */

/* How every shard's loop runs (set at start, read-only afterwards). */
struct ag_loop_config {
    uint32_t stall_report_ms; /* a loop turn longer than this is logged (warn) with what ran; 0: never */
    uint32_t work_per_turn;   /* budgeted work (events, node calls, supersteps) a shard does per loop turn;
                               * beyond: the upper layers yield to the next turn */
};

struct ag_runtime {
    int nshards;
    struct ag_loop_config loop;
    struct ag_shard_hooks hooks;
    void *user;
    struct ag_shard **shards;
    struct ag_spsc *queues; /* nshards * nshards * AG_LANES; [(from * n + to) * AG_LANES + lane] */
    int *ring_fds;          /* published by each shard before the start barrier */
    pthread_t *threads;
    pthread_barrier_t barrier;      /* start-up: main + every shard */
    pthread_barrier_t exit_barrier; /* every shard, before its ring closes */
    _Atomic int start_failed;
    _Atomic int running; /* shards whose loop has not ended */
    _Atomic bool drain_requested;
    struct io_uring ctrl; /* the main thread's ring, used only to MSG_RING the shards */
};

/* Creates the shards' threads and rings and runs hooks.on_start on each. Returns 0 when every shard
 * runs, or -1 (everything is torn down again). `user` is stored in rt->user for the hooks. cpus lists the CPUs to pin to (ncpus may be less than
 * nshards; shards are pinned only when each can have a CPU of its own). */
int ag_runtime_start(struct ag_runtime *rt, const struct ag_loop_config *loop, int nshards, const int *cpus, int ncpus,
                     const struct ag_shard_hooks *hooks, void *user);
/* From the main thread: ask every shard to drain (stop accepting, finish in-flight work, exit). */
void ag_runtime_drain(struct ag_runtime *rt);
/* From the main thread: ask every shard to close everything and exit now. */
void ag_runtime_stop(struct ag_runtime *rt);
/* Number of shards whose loop is still running. */
static inline int ag_runtime_running(struct ag_runtime *rt)
{
    return atomic_load(&rt->running);
}
/* Joins the threads and frees everything. */
void ag_runtime_join(struct ag_runtime *rt);

/* A free SQE, submitting first if the SQ is full. Never NULL. */
struct io_uring_sqe *ag_shard_sqe(struct ag_shard *s);

/* Queues m on the control lane to shard `to`, with m->from set to s->id; the target is woken at the
 * end of this turn. Returns 0, or -EAGAIN when that lane is full (nothing sent). Sending to oneself is
 * not allowed. */
int ag_shard_send(struct ag_shard *s, int to, struct ag_msg *m);
/* The same on the data lane (bulk stream pieces): never in the way of control messages, and
 * received after them. Order is kept among one sender's data messages only. After -EAGAIN,
 * hooks.on_data_room(s, to) follows once the receiver has taken messages from the lane. */
int ag_shard_send_data(struct ag_shard *s, int to, struct ag_msg *m);

/* Queues t to run in phase 3; a task already queued is not queued twice. */
void ag_shard_defer(struct ag_shard *s, struct ag_task *t);

/* Spends n units of this turn's work budget (down to 0). */
static inline void ag_shard_spend(struct ag_shard *s, uint32_t n)
{
    s->work_left = s->work_left > n ? s->work_left - n : 0;
}
/* True once this turn's work budget is spent: the caller should continue in a later turn (a 0 ms
 * timer fires in the next turn at the earliest). */
static inline bool ag_shard_should_yield(const struct ag_shard *s)
{
    return s->work_left == 0;
}

/* Names what the shard runs from now until ag_shard_activity_end (printf format; the text is copied,
 * up to AG_SHARD_ACTIVITY_LEN - 1 bytes). Calls do not nest: a begin replaces the current name. */
void ag_shard_activity_begin(struct ag_shard *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends what ag_shard_activity_begin named, accounting its time against the turn's longest. */
void ag_shard_activity_end(struct ag_shard *s);

/* The shard running on the calling thread, or NULL on a non-shard thread. */
struct ag_shard *ag_shard_self(void);

#endif
