/* The cron scheduler: fires each due cron once, on time, across shards and processes.
 *
 * Shard 0 of every agentd process ticks: one statement (CRON_CLAIM) disables crons past their
 * end_time and claims up to a batch of due ones in Postgres (FOR UPDATE SKIP LOCKED, then
 * claimed_until = now + crons.claim_ms), so two processes never both claim a cron. The next tick is
 * when the earliest unclaimed cron falls due, at most crons.poll_ms away (at once after a full batch).
 *
 * Each claimed cron becomes one firing: its stored payload is mapped to a run spec
 * (ag_run_spec_for_cron, runtime/run_spec.h; no HTTP validation) and the run is created (for now
 * through protocol's ag_run_sinks_create_cb) on the owner shard of its thread (a stateless cron's new
 * thread is minted for a shard in turn), where admission applies the cron's multitask strategy. Back
 * on shard 0 the cron is advanced: next_run_date = the first occurrence after both now and the fired
 * one (occurrences missed while no agentd ran collapse into this single firing), claim released. A
 * refused occurrence (409 reject, 4xx) is skipped likewise; a transient failure (503) only releases
 * the claim, so the next tick retries it. A process that dies between firing and advancing leaves a
 * claim that expires: delivery is at least once. */
#ifndef AG_RUNTIME_CRON_SCHEDULER_H
#define AG_RUNTIME_CRON_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ag_shard;

/* How the scheduler ticks (read-only while the shards run). */
struct ag_cron_config {
    uint32_t poll_ms;  /* the longest pause between two looks for due crons (sooner when one is due) */
    uint32_t claim_ms; /* how long a process's claim on a due cron lasts before another may fire it */
};
#define AG_CRON_CONFIG_DEFAULT {.poll_ms = 1000, .claim_ms = 60000}

struct ag_run_spec;
/* What a firing's run creation answered: 200 and the Run, or the status and error body a client would
 * have got (the scheduler logs a refusal with both and retries a 5xx at the next tick). */
typedef void (*ag_cron_answer_fn)(void *ud, int status, const char *body, size_t len);
/* Creates the background run spec (taking its references) and tells cb exactly once. */
typedef void (*ag_cron_create_fn)(struct ag_run_spec *spec, ag_cron_answer_fn cb, void *ud);
/* Main thread, before the shards start: how firings create their runs. The composition root (server/)
 * installs the protocol's run creation, so that the runtime never names HTTP statuses itself. */
void ag_cron_scheduler_set_create(ag_cron_create_fn create);

/* Main thread, before the runtime starts: the cross-shard message handlers. */
void ag_cron_scheduler_register(void);
/* Per-shard start (after ag_pg_start): on shard 0 of a server with a database, arms the first tick
 * (at once); elsewhere nothing. cfg must outlive the shard. */
void ag_cron_scheduler_start(struct ag_shard *s, const struct ag_cron_config *cfg);
/* While draining: true when no firing is in flight (no new tick starts once draining). */
bool ag_cron_scheduler_idle(struct ag_shard *s);
/* Per-shard exit: disarms the tick on shard 0. */
void ag_cron_scheduler_stop(struct ag_shard *s);

#endif
