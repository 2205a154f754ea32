/* Cron endpoints (LangGraph Platform crons API): create a cron on a thread or stateless (each firing
 * on a new thread, deleted or kept per on_run_completed), update, delete, search and count. The
 * firing itself is protocol/agent/cron_scheduler; both build a firing's run with ag_crons_firing_spec,
 * through the RunCreate validation of protocol/agent/runs (a cron accepts what a run accepts).
 *
 * An enabled cron's creation fires its first run at once (standing in for the schedule's first
 * occurrence) and answers that Run; next_run_date is then the occurrence after it. With enabled:false
 * the answer is the Cron and nothing fires. */
#ifndef AG_PROTOCOL_AGENT_CRONS_H
#define AG_PROTOCOL_AGENT_CRONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ag_req;
struct ag_run_spec;

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

/* The run of one firing of cron cron_id: the stored payload (its run fields; "timezone" is skipped)
 * with the cron's assistant, metadata {"cron_id": cron_id}, and for a stateless cron (stateless)
 * on_completion from on_run_completed (NULL: delete). Fills sp except sp->thread_id, which the caller
 * sets afterwards. Returns true, or false with the reason in err (sp is then empty). */
bool ag_crons_firing_spec(const char *cron_id, const char *assistant_id, bool stateless, const json_t *payload,
                          const char *on_run_completed, struct ag_run_spec *sp, char *err, size_t errlen);

#endif
