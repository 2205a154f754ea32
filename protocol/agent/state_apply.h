/* What POST /threads/{id}/state (protocol/agent/state) and POST /threads with supersteps
 * (protocol/agent/threads_supersteps) share about applying updates to a thread's state: the values an
 * update takes, and the thread columns a new checkpoint sets. The checkpoint itself comes from the graph
 * engine (ag_graph_state_step, graph/engine.h). */
#ifndef AG_PROTOCOL_AGENT_STATE_APPLY_H
#define AG_PROTOCOL_AGENT_STATE_APPLY_H

#include <jansson.h>

struct ag_verr;
struct ag_vpath;

/* Checks the values of an update (at p + "values"): an object, an array of objects (merged left to right)
 * or null; an absent v is fine. Problems go to e ("dict_type"). */
void ag_state_apply_check_values(const json_t *v, struct ag_vpath *p, struct ag_verr *e);
/* Checked values as the engine takes them: an object (a new reference), an array of objects merged left
 * to right into one (a new object), or NULL for null or absent. */
json_t *ag_state_apply_values(const json_t *v);
/* The thread's interrupts once checkpoint ck is its latest: {task id: [interrupts]} of ck's tasks that
 * carry some (a new object; Thread.interrupts). *status is then "interrupted" when there are any, else
 * "idle" (static strings). */
json_t *ag_state_apply_interrupts(const json_t *ck, const char **status);

#endif
