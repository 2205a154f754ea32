/* Run endpoints (LangGraph Platform runs API, v1): create on a thread (background, wait, stream),
 * stateless runs on a fresh thread, join, attach, cancel, delete, and the thread's run stream.
 * Handlers validate the request and hand it to protocol/agent/run (the runtime on the owner shard).
 * The read side (GET runs, GET run) lives with thread state in protocol/agent/state. */
#ifndef AG_PROTOCOL_AGENT_RUNS_H
#define AG_PROTOCOL_AGENT_RUNS_H

#include <jansson.h>
#include <stdbool.h>

struct ag_req;
struct ag_run_spec;
struct ag_verr;
struct ag_vpath;

/* Validates a RunCreate body (at path base, e.g. ["body"]): types, enums, required fields and what
 * this server does not support; every problem goes to e with its field path. stateless: the body of
 * POST /runs (on_completion allowed, if_not_exists not). Crons check their run fields through this,
 * so a cron accepts exactly what a run accepts. Returns the number of problems added. */
unsigned ag_runs_check_create(const json_t *body, bool stateless, struct ag_verr *e, const struct ag_vpath *base);

/* ag_runs_check_create, then, when body added no problem, maps it into sp (ag_run_spec_from_payload,
 * runtime/run_spec.h), leaving sp->thread_id as it is. sp holds references to body's values
 * (ag_run_spec_clear frees them). */
void ag_runs_parse_create(const json_t *body, bool stateless, struct ag_run_spec *sp, struct ag_verr *e,
                          const struct ag_vpath *base);

/* POST /threads/{thread_id}/runs: the Run (pending). */
int ag_runs_create(struct ag_req *r);
/* POST /threads/{thread_id}/runs/wait: the final output. */
int ag_runs_wait(struct ag_req *r);
/* POST /threads/{thread_id}/runs/stream: SSE of the run. */
int ag_runs_stream(struct ag_req *r);
/* POST /runs, /runs/wait, /runs/stream: the same on a new thread, deleted afterwards unless
 * on_completion is keep. */
int ag_runs_stateless_create(struct ag_req *r);
int ag_runs_stateless_wait(struct ag_req *r);
int ag_runs_stateless_stream(struct ag_req *r);
/* POST /runs/batch: up to 100 background stateless runs; the list of their Runs. */
int ag_runs_stateless_batch(struct ag_req *r);
/* GET /threads/{thread_id}/runs/{run_id}/join */
int ag_runs_join(struct ag_req *r);
/* GET /threads/{thread_id}/runs/{run_id}/stream (Last-Event-ID resumes) */
int ag_runs_attach(struct ag_req *r);
/* GET /runs/{run_id}/stream (runs.joinStream without a thread): the caller's run looked up in Postgres
 * (404 when none), then answered as GET /threads/{thread_id}/runs/{run_id}/stream on its thread's
 * owner shard. */
int ag_runs_attach_by_id(struct ag_req *r);
/* POST /threads/{thread_id}/runs/{run_id}/cancel?wait&action=interrupt|rollback */
int ag_runs_cancel(struct ag_req *r);
/* POST /runs/cancel {thread_id?, run_ids?, status?: pending|running|all}?action=interrupt|rollback (the
 * SDKs' cancelMany) → 204: cancels the caller's runs of thread_id that have not ended, those of run_ids
 * or else those of status (runs not found or ended are left alone), on the thread's owner shard
 * (forwarded there); status without thread_id: the caller's runs of every thread, on every shard (503
 * when a shard could not be asked). 422 for run_ids without thread_id, or neither run_ids nor status. */
int ag_runs_cancel_many(struct ag_req *r);
/* DELETE /threads/{thread_id}/runs/{run_id}?force */
int ag_runs_delete(struct ag_req *r);
/* GET /threads/{thread_id}/stream */
int ag_runs_thread_stream(struct ag_req *r);

#endif
