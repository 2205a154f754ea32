/* Identifiers the graph engine mints, in LangGraph's formats, on top of core/uuid.h: checkpoint ids
 * (UUID6 whose text sorts in creation order), task ids (UUID5, stable for a checkpoint and node) and
 * interrupt ids (32 lowercase hex, stable for a task and the interrupt's index in it). Message and
 * chunk ids are plain random UUID4s (ag_uuid4). */
#ifndef AG_GRAPH_IDS_H
#define AG_GRAPH_IDS_H

/* Writes a UUID6 for a checkpoint of superstep `step` into out (36 chars + NUL). Its time fields come
 * from the real-time clock at 100 ns resolution and strictly increase per calling thread, so the
 * text of a later id compares greater than an earlier one; the clock-sequence field carries the step
 * as LangGraph JS does ("ffff" for -1, "8000" for 0, "8001" for 1). */
void ag_graph_checkpoint_id(int step, char out[37]);
/* Writes the id of the task running `node` from checkpoint `checkpoint_id` (a UUID text):
 * UUID5(checkpoint_id, node), 36 chars + NUL; a random UUID4 when checkpoint_id is not a UUID. */
void ag_graph_make_task_id(const char *checkpoint_id, const char *node, char out[37]);
/* Writes the id of the idx-th interrupt() call of task `task_id` (a UUID text): 32 lowercase hex
 * digits + NUL. */
void ag_graph_interrupt_id(const char *task_id, int idx, char out[33]);

#endif
