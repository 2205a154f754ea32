/* The HTTP side of runs: the v1 codec (each run event framed once as an SSE chunk, shared by every
 * stream), the sinks that turn a run into an answer (an SSE stream, a wait's JSON body, cancel?wait=1,
 * the thread stream), and the answers to the runtime's typed creation outcomes (runtime/run.h).
 * Everything here runs on the thread's owner shard (AG_TROUTE handlers; stateless runs mint a thread id
 * owned by the accepting shard). */
#ifndef AG_PROTOCOL_AGENT_RUN_SINKS_H
#define AG_PROTOCOL_AGENT_RUN_SINKS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/run.h"

struct ag_req;

/* The codec protocol/server.c installs in the runtime: an event as one SSE frame in a shared chunk. */
extern const struct ag_run_codec ag_run_sinks_codec;

/* Per-shard exit (the protocol's on_exit): frees what the shard's sinks share. */
void ag_run_sinks_shard_exit(void);

/* Creates the run described by spec (its owner is r's) and answers r as `how` says: the Run object, the
 * final output (wait) or the SSE stream. Takes spec's references. Returns AG_AGAIN (answered later) or
 * AG_OK (answered now: 409/503). */
int ag_run_sinks_create(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how);

/* The outcome of ag_run_sinks_create_cb: status 200 and the Run JSON, or an error status and its body
 * (valid during the call). */
typedef void (*ag_run_answer_fn)(void *ud, int status, const char *body, size_t len);
/* Creates a background run (AG_RUN_REPLY_RUN) for spec (spec->owner set by the caller), telling cb
 * instead of answering a request (POST /runs/batch, v2 run.start, a cron's first run). Takes spec's
 * references. cb is called exactly once, possibly before this returns. */
void ag_run_sinks_create_cb(struct ag_run_spec *spec, ag_run_answer_fn cb, void *ud);

/* GET .../runs/{run_id}/join: the run's final output once it ends. cancel_on_disconnect: a client that
 * leaves before the end cancels the run. */
int ag_run_sinks_join(struct ag_req *r, const char *thread_id, const char *run_id, bool cancel_on_disconnect);
/* GET .../runs/{run_id}/stream: the run's events from after last_event_id (NULL: all buffered; for an
 * ended run without one, just the end), then live until it ends; cancel_on_disconnect as for join. */
int ag_run_sinks_attach(struct ag_req *r, const char *thread_id, const char *run_id, const char *last_event_id,
                        bool cancel_on_disconnect);
/* POST .../runs/{run_id}/cancel: action "interrupt" keeps the run's checkpoints, "rollback" deletes
 * the run and them. wait: answer once the run has ended. reason: its cancel_reason (runtime/run.h). */
int ag_run_sinks_cancel(struct ag_req *r, const char *thread_id, const char *run_id, bool rollback, bool wait,
                        const char *reason);
/* DELETE .../runs/{run_id}: 409 while active unless force (which cancels first). */
int ag_run_sinks_delete(struct ag_req *r, const char *thread_id, const char *run_id, bool force);
/* GET /threads/{thread_id}/stream: every run of the thread in turn, each in its own stream modes, until
 * the client leaves, the thread is deleted or the shard stops. Event ids are "<run id>:<n>"; with
 * last_event_id naming the active run, its events after n; naming a run that has ended, the next run
 * from its start. */
enum {
    AG_THREAD_EVENTS_LIFECYCLE = 1u << 0, /* each run's metadata (its start), error and end events */
    AG_THREAD_EVENTS_STATE = 1u << 1,     /* the values events: the thread's state after each step */
    AG_THREAD_EVENTS_ALL = ~0u,           /* every event of each run (run_modes) */
};
/* events (AG_THREAD_EVENTS_*): which events of each run the stream sends. */
int ag_run_sinks_thread_stream(struct ag_req *r, const char *thread_id, const char *last_event_id, unsigned events);

#endif
