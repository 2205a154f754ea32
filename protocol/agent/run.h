/* Runs on their thread's owner shard: admission (multitask strategies), execution through the graph
 * engine, persistence of checkpoints and outcomes, and the v1 event stream of every run (framed once
 * as SSE and shared by every subscriber).
 *
 * Everything here runs on the shard that owns the run's thread (AG_TROUTE handlers; stateless runs
 * mint a thread id owned by the accepting shard). The shard keeps a runtime entry per thread with
 * runs: the active run, the queue behind it (enqueue, delayed starts) and the runs that ended
 * recently (for join and attach with Last-Event-ID). */
#ifndef AG_PROTOCOL_AGENT_RUN_H
#define AG_PROTOCOL_AGENT_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct ag_req;
struct ag_shard;
struct pg_conn; /* libpq's PGconn */

enum ag_mt { AG_MT_REJECT, AG_MT_ENQUEUE, AG_MT_INTERRUPT, AG_MT_ROLLBACK };

/* v1 stream modes (bit flags). */
enum {
    AG_SM_VALUES = 1u << 0,
    AG_SM_UPDATES = 1u << 1,
    AG_SM_MESSAGES = 1u << 2,       /* messages/metadata, messages/partial, messages/complete */
    AG_SM_MESSAGES_TUPLE = 1u << 3, /* messages: [chunk, metadata] */
    AG_SM_CUSTOM = 1u << 4,
    AG_SM_EVENTS = 1u << 5,
    AG_SM_DEBUG = 1u << 6,
    AG_SM_TASKS = 1u << 7,
    AG_SM_CHECKPOINTS = 1u << 8,
};

/* How the creating request is answered. */
enum ag_run_reply {
    AG_RUN_REPLY_RUN,    /* the Run object, at once (POST .../runs) */
    AG_RUN_REPLY_WAIT,   /* the final output, with keep-alive newlines meanwhile (.../runs/wait) */
    AG_RUN_REPLY_STREAM, /* SSE of the run's events (.../runs/stream) */
};

/* A validated RunCreate body. json members are owned references (NULL when absent). */
struct ag_run_spec {
    char thread_id[37];
    char assistant_id[130];  /* as given, graph ids resolved to their system assistant */
    json_t *input, *command, *config, *context, *metadata, *checkpoint;
    char checkpoint_id[64];   /* "" when none */
    json_t *interrupt_before, *interrupt_after; /* "*" or array of names */
    json_t *stream_mode;      /* array of mode names as given (for kwargs) */
    unsigned modes;           /* AG_SM_* */
    bool subgraphs, resumable;
    enum ag_mt mt;
    bool create_thread;       /* if_not_exists=create (always for stateless runs) */
    bool cancel_on_disconnect;
    bool stateless, delete_thread; /* stateless run; on_completion=delete */
    double after_seconds;
    json_t *feedback_keys;
    const char *durability;   /* "sync" | "async" | "exit" (a literal) */
};

/* Frees what spec owns. */
void ag_run_spec_clear(struct ag_run_spec *spec);

/* Start-up, on the bootstrap thread's connection pg inside the migration transaction (blocking; never
 * on a shard), before any shard takes work: the active runs of agentd processes of this host that are
 * gone (their pid no longer runs, or runs another program) end as error with a message naming the
 * process, their threads too unless a newer run of theirs decides their status, and this process
 * registers itself (agentd_processes). Returns 0, or -1 after writing the reason to err. */
int ag_run_settle_dead(struct pg_conn *pg, char *err, size_t errlen);

/* Per-shard set-up and tear-down (the protocol's on_start / on_exit). */
void ag_run_shard_init(struct ag_shard *s, const struct ag_config *cfg);
void ag_run_shard_exit(struct ag_shard *s);
/* Drain: cancel every run of this shard, end its streams; true when nothing is left. */
bool ag_run_shard_idle(struct ag_shard *s);

/* Creates the run described by spec on r->shard (the thread's owner) and answers r as `how` says.
 * Takes spec's references. Returns AG_AGAIN (answered later) or AG_OK (answered now: 404/409/503). */
int ag_run_submit(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how);

/* The outcome of ag_run_submit_cb: status 200 and the Run JSON, or an error status and its body
 * (valid during the call). */
typedef void (*ag_run_created_fn)(void *ud, int status, const char *body, size_t len);
/* Creates a background run like ag_run_submit with AG_RUN_REPLY_RUN on the calling shard (which
 * must own spec->thread_id), telling cb instead of answering a request (POST /runs/batch). Takes
 * spec's references. cb is called exactly once, possibly before this returns. */
void ag_run_submit_cb(struct ag_run_spec *spec, ag_run_created_fn cb, void *ud);

/* GET .../runs/{run_id}/join: the run's final output once it ends. */
int ag_run_join(struct ag_req *r, const char *thread_id, const char *run_id);
/* GET .../runs/{run_id}/stream: the run's events from after last_event_id (NULL: all buffered;
 * for an ended run without one, just the end), then live until it ends. */
int ag_run_attach(struct ag_req *r, const char *thread_id, const char *run_id, const char *last_event_id);
/* POST .../runs/{run_id}/cancel: action "interrupt" keeps the run's checkpoints, "rollback" deletes
 * the run and them. wait: answer once the run has ended. */
int ag_run_cancel(struct ag_req *r, const char *thread_id, const char *run_id, bool rollback, bool wait);
/* DELETE .../runs/{run_id}: 409 while active unless force (which cancels first). */
int ag_run_delete(struct ag_req *r, const char *thread_id, const char *run_id, bool force);
/* GET /threads/{thread_id}/stream: every run of the thread in turn, each in its own stream modes:
 * the active run's events from its start, then each run that starts later, until the client leaves,
 * the thread is deleted or the shard stops. Event ids are "<run id>:<n>"; with last_event_id naming
 * the active run, its events after n; naming a run that has ended, the next run from its start. */
int ag_run_thread_stream(struct ag_req *r, const char *thread_id, const char *last_event_id);

/* The thread is being deleted: cancel its runs without writing their outcome (the rows go with it). */
void ag_run_thread_deleted(struct ag_shard *s, const char *thread_id);
/* The thread's state changed outside a run (POST /threads/{id}/state): the next run reads the
 * latest checkpoint from Postgres instead of the copy kept in memory. */
void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id);
/* True when the thread has a run active or queued on this shard. */
bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id);

#endif
