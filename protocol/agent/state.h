/* Thread state, history and runs, the read side (LangGraph Platform API): the latest or a given
 * checkpoint as a ThreadState, the checkpoint history newest first, and a thread's runs. Answers are
 * built in SQL (persist/sql_state.def) from the rows the run engine writes (checkpoints, runs).
 *
 * Every route runs on the thread's owner shard (AG_TROUTE). Thread ids are UUIDs (a malformed one is
 * a 422 at ["path","thread_id"]); a thread that is missing or not the caller's is a 404
 * {"error":"not_found","message":"Thread '<id>' not found",...}. A thread whose metadata has no
 * graph_id (no run yet) has the empty state and an empty history. Unknown query parameters and body
 * fields are 422s with field paths. */
#ifndef AG_PROTOCOL_AGENT_STATE_H
#define AG_PROTOCOL_AGENT_STATE_H

#include <jansson.h>

struct ag_req;

/* GET /threads/{thread_id}/state?subgraphs=&checkpoint_ns= → 200 ThreadState of the latest
 * checkpoint of the namespace ("" by default), or the empty state; 404. With subgraphs a task's
 * "state" is the latest checkpoint of its subgraph (one level). */
int ag_state_get(struct ag_req *r);
/* GET /threads/{thread_id}/state/{checkpoint_id} (same query) → 200 ThreadState of that checkpoint;
 * 404 for the thread, or "Checkpoint '<id>' not found". */
int ag_state_get_at(struct ag_req *r);
/* POST /threads/{thread_id}/state/checkpoint {checkpoint: {checkpoint_id (required), thread_id?,
 * checkpoint_ns?, checkpoint_map?}, subgraphs?} → as ag_state_get_at. */
int ag_state_get_checkpoint(struct ag_req *r);
/* POST /threads/{thread_id}/state {values?, as_node?, checkpoint_id?, checkpoint?, checkpoint_ns?,
 * subgraphs?}: with none of values, as_node, checkpoint_id and checkpoint (null counts as absent) it
 * answers as GET .../state (checkpoint_ns and subgraphs from the body); otherwise ag_state_update. */
int ag_state_post(struct ag_req *r);
/* PATCH /threads/{thread_id}/state {metadata (required), checkpoint_id?, checkpoint?: {checkpoint_id?,
 * checkpoint_ns?, ...}}: merges metadata key by key into the metadata of the latest checkpoint of the
 * namespace ("" by default), or of the checkpoint named → 204 (the SDKs' patchState). 404 for the thread,
 * or when there is no such checkpoint (a thread without state has none to patch). */
int ag_state_patch(struct ag_req *r);
/* The update form of POST /threads/{thread_id}/state, called once the path thread_id and the body
 * have been validated (values is an object, an array of objects or null; as_node and checkpoint_id
 * strings; checkpoint an object {thread_id?, checkpoint_id?, checkpoint_ns?, checkpoint_map?}).
 * Borrows body. Only the root namespace (a non-empty checkpoint_ns → 422). 409 while the thread has
 * a run active or queued; 404 (thread, or the checkpoint named); 400 without a graph_id, or when the
 * engine refuses (unknown or ambiguous as_node). Computes the new checkpoint from the selected one
 * (checkpoint_id, checkpoint.checkpoint_id, else the latest) with ag_graph_state_update (also: values null
 * with as_node "__copy__", a "fork" copy beside it; as_node "__input__", an "input" checkpoint holding
 * values as the next run's input); writes it (no run) with the thread's values, interrupts and status,
 * and answers 200 {"checkpoint":{thread_id, checkpoint_ns:"", checkpoint_id, checkpoint_map:null}}.
 * Returns a handler result (AG_OK / AG_AGAIN). */
int ag_state_update(struct ag_req *r, json_t *body);
/* GET /threads/{thread_id}/history?limit=&before=&checkpoint_ns=&subgraphs=&metadata= and POST
 * /threads/{thread_id}/history {limit?, before?, metadata?, checkpoint?, checkpoint_ns?, subgraphs?}
 * → 200 [ThreadState...] newest first; [] without a graph_id; 404. limit 1..1000 (10). before is a
 * checkpoint id (POST also {"checkpoint_id"} or {"configurable":{"checkpoint_id"}}): only older
 * checkpoints. metadata (GET: JSON-encoded) is a containment filter on checkpoint metadata. The
 * checkpoint object's checkpoint_ns and checkpoint_id narrow the history. */
int ag_state_history_get(struct ag_req *r);
int ag_state_history_post(struct ag_req *r);
/* GET /threads/{thread_id}/runs?limit=&offset=&status=&select= → 200 [Run...] newest first; 404.
 * limit >= 1 (10), offset >= 0 (0), status one of pending, running, error, success, timeout,
 * interrupted; select Run field names (repeated or comma-separated). */
int ag_state_runs_list(struct ag_req *r);
/* GET /threads/{thread_id}/runs/{run_id} → 200 Run; 404 for the thread, or "Run '<id>' not found"
 * (also for a run of another thread); a malformed run_id is a 422 at ["path","run_id"]. */
int ag_state_run_get(struct ag_req *r);

#endif
