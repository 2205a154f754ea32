/* POST /threads with supersteps: a thread created with a state, as LangGraph Platform's bulk state update
 * builds it (the SDKs' threads.create({supersteps})). Each superstep's updates are applied as POST
 * /threads/{id}/state applies one (protocol/agent/state_apply.h, ag_graph_state_step), together, as if
 * their nodes had run in one superstep: one "update" checkpoint per superstep, steps counting up from -1,
 * next from the edges of their nodes. The graph is the one named by the body's metadata.graph_id.
 *
 * Every checkpoint is computed before anything is written, so a refusal (422) creates nothing; then one
 * statement (persist/sql_state.def STATE_THREAD_CREATE) inserts the thread with the values, interrupts
 * and status of the last checkpoint, and the checkpoints as the update path writes them (no run). */
#ifndef AG_PROTOCOL_AGENT_THREADS_SUPERSTEPS_H
#define AG_PROTOCOL_AGENT_THREADS_SUPERSTEPS_H

#include <jansson.h>
#include <stdbool.h>

struct ag_req;
struct ag_verr;
struct ag_vpath;

/* At most this many supersteps (422 "too_long" beyond), and this many bytes of checkpoints (as JSON)
 * built from them (422 at ["body","supersteps"] beyond): each checkpoint holds the whole state. */
#define AG_THREADS_SUPERSTEPS_MAX 256
#define AG_THREADS_SUPERSTEPS_STATE_MAX (16u << 20)

/* Checks the non-empty supersteps array of create body `body` (an object; p is ["body"]): each superstep
 * {updates: [{values?, command?, as_node}, ...]} with at least one update; as_node a string (required);
 * values as POST /threads/{id}/state takes them; command {update?, goto?, resume?} where update is an
 * object or a list of [key, value] pairs, and goto and resume (which no update outside a run can honour)
 * are refused. metadata.graph_id must name a registered graph. Problems go to e with their paths
 * (["body","supersteps",0,"updates",1,"as_node"], ["body","metadata","graph_id"]). Returns how many. */
unsigned ag_threads_supersteps_check(const json_t *body, struct ag_vpath *p, struct ag_verr *e);

/* Creates thread id (canonical, owned by r->shard) for the caller from checked body (borrowed) with the
 * state its supersteps build, a TTL of ttl_minutes (<= 0: none) and strategy. An update the graph refuses
 * (an as_node it does not have, values its reducers refuse, "__copy__" of nothing) answers 422 at its path
 * and creates nothing. A taken id answers 409, or with do_nothing the caller's existing thread, untouched
 * (its supersteps are not applied again). Otherwise 200 with the Thread as the supersteps left it.
 * Returns a handler result (AG_OK after answering, AG_AGAIN while the statement runs). */
int ag_threads_supersteps_create(struct ag_req *r, const char id[37], const json_t *body, double ttl_minutes,
                                 const char *strategy, bool do_nothing);

#endif
