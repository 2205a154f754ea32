/* Cron endpoints (LangGraph Platform crons API): create a cron on a thread or stateless (each firing
 * on a new thread, deleted or kept per on_run_completed), update, delete, search and count. A cron's
 * run fields are checked by the RunCreate validation of protocol/agent/runs (a cron accepts what a
 * run accepts) and stored as given (its payload); the first run here and each firing of
 * protocol/agent/cron_scheduler map them with ag_run_spec_for_cron (runtime/run_spec.h).
 *
 * A create answers the Cron (as search shows it; the SDKs' CronCreateResponse). An enabled cron's
 * creation also fires its first run at once (standing in for the schedule's first occurrence; its
 * next_run_date is then the occurrence after it), and the answer carries that run's fields the Cron
 * lacks: run_id, status, kwargs, multitask_strategy (on the keys both have, thread_id, assistant_id,
 * metadata, created_at and updated_at, the Cron's values: a stateless cron's thread_id stays null, and
 * the new thread of its first run is in kwargs.config.configurable.thread_id). With enabled:false nothing
 * fires and the answer is the Cron alone. If the first run is refused, the cron is deleted again and the
 * run's refusal is the answer. */
#ifndef AG_PROTOCOL_AGENT_CRONS_H
#define AG_PROTOCOL_AGENT_CRONS_H

struct ag_req;

/* POST /runs/crons → 200 the Cron (with its first run's fields when enabled). */
int ag_crons_create(struct ag_req *r);
/* POST /threads/{thread_id}/runs/crons (on the thread's owner shard) → as ag_crons_create. */
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
