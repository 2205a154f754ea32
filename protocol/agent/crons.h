/* Cron endpoints (LangGraph Platform crons API): create a cron on a thread or stateless (each firing
 * on a new thread, deleted or kept per on_run_completed), update, delete, search and count. A cron's
 * run fields are checked by the RunCreate validation of protocol/agent/runs (a cron accepts what a
 * run accepts) and stored as given (its payload); the first run here and each firing of
 * protocol/agent/cron_scheduler map them with ag_run_spec_for_cron (runtime/run_spec.h).
 *
 * An enabled cron's creation fires its first run at once (standing in for the schedule's first
 * occurrence) and answers that Run; next_run_date is then the occurrence after it. With enabled:false
 * the answer is the Cron and nothing fires. */
#ifndef AG_PROTOCOL_AGENT_CRONS_H
#define AG_PROTOCOL_AGENT_CRONS_H

struct ag_req;

/* POST /runs/crons */
int ag_crons_create(struct ag_req *r);
/* POST /threads/{thread_id}/runs/crons (on the thread's owner shard) */
int ag_crons_create_for_thread(struct ag_req *r);
/* PATCH /runs/crons/{cron_id}: the Cron. */
int ag_crons_update(struct ag_req *r);
/* DELETE /runs/crons/{cron_id}: 204. */
int ag_crons_delete(struct ag_req *r);
/* POST /runs/crons/search: [Cron]. */
int ag_crons_search(struct ag_req *r);
/* POST /runs/crons/count: an integer. */
int ag_crons_count(struct ag_req *r);

#endif
