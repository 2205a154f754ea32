/* ops: the operations agentload's task scenarios are made of, each an al_op for drive.h.
 *   ok              GET /ok
 *   threads.create  POST /threads {}                         (2xx with a thread_id)
 *   threads.search  POST /threads/search {"limit":10}          (2xx with a JSON array)
 *   runs.wait       POST /threads/{id}/runs/wait               (a pool thread per task; 2xx, no __error__)
 *   runs.stream     POST /threads/{id}/runs/stream, the SSE read to the end of the response (200, at
 *                   least one frame, no `error` event, an `end` event if any says success)
 *   v2.session      POST /threads/{new id}/stream/events on a fresh connection, then on the keep-alive
 *                   one POST /threads/{id}/commands run.start; done at the root terminal lifecycle
 *                   event (completed; failed or interrupted count as errors) and the command's answer
 * The runs ops send {"assistant_id":A,"input":I[,"config":C]} from the options. */
#ifndef AL_OPS_H
#define AL_OPS_H

#include "drive.h"

extern const struct al_op al_op_ok, al_op_threads_create, al_op_threads_search, al_op_runs_wait, al_op_runs_stream,
    al_op_v2_session;

/* v2.session's figures for the report: frames delivered by the sessions' streams, deliveries/s
 * (from the first frame to the last, warm-up included), and the lag of each frame from the server's
 * params.timestamp (p50/p99/max). */
void al_v2_report(struct al_run *r);

/* The op named `name`, or NULL. */
const struct al_op *al_op_find(const char *name);

/* When set, every thread id threads.create receives goes into the run's pool (a pool-filling phase). */
extern bool al_ops_capture_threads;

/* Fills the run's pool with n new threads through POST /threads (32 connections). Returns 0, or -1
 * when fewer than n were created. */
int al_ops_fill_pool(struct al_run *r, unsigned n);

#endif
