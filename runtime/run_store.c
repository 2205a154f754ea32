/* Persistence of runs: checkpoints written as a run goes (RUN_PROGRESS, one statement per turn), the
 * outcome with the thread's new status (RUN_FINISH, or RUN_RECORD for a run written once at its end),
 * retried while there is no database, and the lease that marks this process's runs as alive. Part of
 * the run lifecycle (runtime/run_internal.h). */
#include "runtime/run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "persist/cpstore.h"
#include "runtime/run_internal.h"
#include "runtime/sweep.h"
#include "runtime/tlog.h"

/* A run's outcome is tried again this long after the database refused or lost it. */
#define FINISH_RETRY_NS 500000000ull

struct ag_run *ag_run__run_of(struct ag_pg_query *q)
{
    return q->ud;
}

void ag_run__query_init(struct ag_run *run, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    memset(&run->q, 0, sizeof run->q);
    run->q.stmt = stmt;
    run->q.kind = kind;
    run->q.cb = cb;
    run->q.ud = run;
}

bool ag_run__writing(const struct ag_run *run)
{
    return run->persist == RP_PROMOTING || run->persist == RP_WRITING;
}

static void flush_task(struct ag_task *tk);

void ag_run__progress_done(struct ag_run *run)
{
    if (run->persist == RP_WRITING)
        run->persist = RP_STORED;
    ag_pg_args_reset(&run->args);
    if (run->state == R_FINISHING) {
        ag_run__submit_finish(run);
        return;
    }
    if (json_array_size(run->cps))
        ag_run__schedule_progress(run);
    else if (run->spec.durability == AG_DURABILITY_SYNC && run->exec && !ag_run__writing(run))
        run->graph.engine->proceed(run->exec); /* its checkpoints are written: the next superstep */
}

void ag_run__schedule_progress(struct ag_run *run)
{
    run->flush_task.fn = flush_task;
    ag_shard_defer(ag_run__rs->s, &run->flush_task);
}

const char *ag_run__us_param(struct ag_pg_args *a, uint64_t us)
{
    return us ? ag_pg_args_printf(a, "%" PRIu64, us) : NULL;
}

/* A run with durability "sync" may not go on without its checkpoint: it ends with an error. */
static void sync_write_failed(struct ag_run *run)
{
    if (!run->error)
        run->error = ag_strdup("a checkpoint could not be written (durability \"sync\")");
    ag_run__run_cancel(run, AG_RUN_ERROR, false, NULL);
}

/* A checkpoint write of the run failed: the checkpoints not written yet may name channel versions (or
 * append to ones) that are not stored. They are stamped again, the first with its whole values. */
static void restamp_lost(struct ag_run *run)
{
    if (!run->cps_lost || !json_array_size(run->cps))
        return; /* (those to come are stamped against the last of these, so this waits for one) */
    run->cps_lost = false;
    json_t *prevs = json_object(); /* namespace ("" the root's) → the last checkpoint stamped again */
    size_t i;
    json_t *cp;
    json_array_foreach(run->cps, i, cp)
    {
        const char *ns = json_string_value(json_object_get(cp, "checkpoint_ns"));
        ns = ns ? ns : "";
        json_t *again = ag_cpstore_stamp(json_object_get(prevs, ns), cp);
        if (run->t && run->t->last_cp == cp) ag_run__set_last_cp(run->t, again);
        if (run->stamp_prev == cp) {
            json_decref(run->stamp_prev);
            run->stamp_prev = json_incref(again);
        }
        if (*ns && json_object_get(run->sub_stamps, ns) == cp) json_object_set(run->sub_stamps, ns, again);
        json_object_set(prevs, ns, again);
        json_array_set_new(run->cps, i, again);
    }
    json_decref(prevs);
}

static void on_progress(struct ag_pg_query *q, PGresult *res)
{
    (void)res;
    struct ag_run *run = ag_run__run_of(q);
    if (q->status != AG_PG_OK) {
        run->cps_lost = true;
        ag_log(AG_LOG_WARN, "run=%s checkpoints not written yet: %s", run->run_id, q->error ? q->error : "no database");
        if (run->spec.durability == AG_DURABILITY_SYNC && run->state == R_RUNNING) {
            /* It may not go on without them: it ends with an error (its outcome is retried). */
            run->persist = RP_STORED;
            ag_pg_args_reset(&run->args);
            sync_write_failed(run);
            return;
        }
    }
    ag_run__progress_done(run);
}

static void flush_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, flush_task);
    /* A direct run writes its checkpoints with its outcome; a promoted one once its row exists. */
    if (run->state != R_RUNNING || run->persist != RP_STORED || !json_array_size(run->cps))
        return;
    restamp_lost(run);
    ag_run__query_init(run, AG_SQL_RUN_PROGRESS, AG_PG_WRITE, on_progress);
    struct {
        const char *run_id, *thread_id, *checkpoints, *started_us;
    } p = {
        .run_id = run->run_id,
        .thread_id = run->spec.thread_id,
        .checkpoints = ag_cpstore_param(&run->args, run->cps),
        .started_us = ag_run__us_param(&run->args, run->started_us),
    };
    AG_PG_PARAMS(&run->q, p);
    if (ag_pg_submit(ag_run__rs->s, &run->q) == 0) {
        json_array_clear(run->cps);
        run->persist = RP_WRITING;
        run->wrote_cps = true;
    } else {
        ag_pg_args_reset(&run->args); /* kept for the outcome's write (RUN_FINISH retries) */
        if (run->spec.durability == AG_DURABILITY_SYNC)
            sync_write_failed(run);
    }
}

static void finish_retry(struct ag_timer *tm)
{
    ag_run__submit_finish(AG_CONTAINER_OF(tm, struct ag_run, timer));
}

static void arm_finish_retry(struct ag_run *run)
{
    run->timer.cb = finish_retry;
    ag_timer_arm(&ag_run__rs->s->timers, &run->timer, ag_run__rs->s->now_ns + FINISH_RETRY_NS);
}

/* RUN_RECORD of a direct run ended: its creator hears of it now. */
static void direct_written(struct ag_run *run, const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK) {
        if (!PQgetisnull(res, 0, 1))
            ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 1), NULL, 10));
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_ADMITTED, .run = run});
    } else {
        /* Nothing of the run is stored: its creator must not be told that it ran. */
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_DB_FAILED, .q = q});
    }
}

/* The v2 events RUN_RECORD carried were written, lost or are to be written by the log. */
static void events_done(struct ag_run *run, enum ag_tlog_taken_end how)
{
    if (!run->took_events) return;
    run->took_events = false;
    ag_tlog_taken_done(run->spec.thread_id, how);
}

static void on_finish(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    ag_pg_args_reset(&run->args);
    bool lost = q->status == AG_PG_SQL_ERROR || ag_run__rs->s->stopping;
    events_done(run, q->status == AG_PG_OK ? AG_TLOG_TAKEN_WRITTEN : lost ? AG_TLOG_TAKEN_LOST : AG_TLOG_TAKEN_RETRY);
    if (q->status == AG_PG_OK || lost) {
        if (q->status != AG_PG_OK)
            ag_log(AG_LOG_ERROR, "run=%s outcome not written: %s", run->run_id, q->error ? q->error : "stopping");
        if (run->persist == RP_DIRECT)
            direct_written(run, q, res);
        ag_run__ended(run);
        return;
    }
    /* No database right now: the outcome must not be lost, nor reported before it is stored. */
    arm_finish_retry(run);
}

static const char *thread_status_after(struct ag_run *run)
{
    if (run->t && (run->t->active || run->t->qhead || run->t->creating))
        return "busy";
    if (run->refused_resume && run->t) /* nothing ran: the interrupts it answered wrongly still wait */
        return json_array_size(json_object_get(run->t->last_cp, "next")) ? "interrupted" : "idle";
    if (run->status == AG_RUN_SUCCESS)
        return "idle";
    if (run->status == AG_RUN_INTERRUPTED)
        return run->cancel_status != AG_RUN_PENDING ? "idle" : "interrupted";
    return "error";
}

/* {task id: [interrupts]} of the last checkpoint's tasks, as Thread.interrupts. */
static json_t *thread_interrupts(struct ag_run *run)
{
    json_t *out = json_object();
    const json_t *cp = run->t ? run->t->last_cp : NULL;
    size_t i;
    json_t *task;
    json_array_foreach(json_object_get(cp, "tasks"), i, task) {
        json_t *ints = json_object_get(task, "interrupts");
        if (json_array_size(ints) && json_is_string(json_object_get(task, "id")))
            json_object_set(out, json_string_value(json_object_get(task, "id")), ints);
    }
    return out;
}

/* The outcome as RUN_FINISH and RUN_RECORD take it (consecutive parameters, in this order). */
struct outcome_params {
    const char *run_status, *output, *error, *checkpoints, *thread_status, *thread_interrupts;
};

/* The checkpoint whose values the run's output is (the thread's latest, at the run's end), named instead
 * of storing the state again (borrowed from that checkpoint); NULL: the output is stored as it is. */
static const char *output_checkpoint_id(const struct ag_run *run)
{
    if (ag_run__failed(run->status) || run->rollback || !run->output || !run->t || !run->t->cp_known)
        return NULL;
    const json_t *cp = run->t->last_cp;
    return json_object_get(cp, "values") == run->output ? json_string_value(json_object_get(cp, "checkpoint_id"))
                                                        : NULL;
}

/* The same as a parameter, in the run's args: the thread's next run may replace its latest checkpoint
 * (and free the id) before the statement is sent. */
static const char *output_checkpoint(struct ag_run *run)
{
    const char *id = output_checkpoint_id(run);
    return id ? ag_pg_args_dup(&run->args, id, strlen(id)) : NULL;
}

static struct outcome_params outcome_params(struct ag_run *run)
{
    struct ag_pg_args *a = &run->args;
    restamp_lost(run);
    json_t *ints = thread_interrupts(run);
    bool named = output_checkpoint_id(run) != NULL;
    struct outcome_params o = {
        .run_status = ag_run_status_name(run->status),
        .output = ag_run__failed(run->status) || named ? NULL
                  : run->output_text                   ? ag_pg_args_dup(a, run->output_text, run->output_bytes)
                                                       : ag_pg_args_json(a, run->output),
        .error = run->error ? ag_pg_args_dup(a, run->error, strlen(run->error)) : NULL,
        /* A rollback deletes the run's checkpoints; the ones not written yet are simply dropped. */
        .checkpoints = run->rollback || !run->cps ? "[]" : ag_cpstore_param(a, run->cps),
        .thread_status = thread_status_after(run),
        .thread_interrupts = ag_pg_args_json(a, ints),
    };
    json_decref(ints);
    if (!run->output_bytes && o.output)
        run->output_bytes = strlen(o.output); /* the recent list counts it without encoding again */
    return o;
}

const char *ag_run__reservation_param(struct ag_run *run)
{
    char seq[24];
    const char *reserve = ag_tlog_reservation(run->spec.thread_id, seq);
    return reserve ? ag_pg_args_dup(&run->args, reserve, strlen(reserve)) : NULL;
}

/* The run's cancel_reason when a cancel ended it interrupted (NULL otherwise). */
static const char *cancel_reason(const struct ag_run *run)
{
    return run->status == AG_RUN_INTERRUPTED && run->cancel_status != AG_RUN_PENDING ? run->cancel_reason : NULL;
}

/* RUN_RECORD: a direct run, its checkpoints and the thread, written together. */
static void record_query(struct ag_run *run)
{
    struct ag_pg_args *a = &run->args;
    json_t *c = json_object_get(json_object_get(run->kwargs, "config"), "configurable");
    struct {
        const char *run_id, *thread_id, *owner, *assistant_id, *graph_id, *metadata, *kwargs, *multitask;
        struct outcome_params outcome;
        const char *claimant, *reservation, *accepted_us, *started_us, *ended_us, *cancel_reason, *output_cp;
        struct ag_tlog_taken events;
    } p = {
        .run_id = run->run_id,
        .thread_id = run->spec.thread_id,
        .owner = run->spec.owner,
        .assistant_id = json_string_value(json_object_get(c, "assistant_id")),
        .graph_id = json_string_value(json_object_get(c, "graph_id")),
        .metadata = ag_pg_args_json(a, run->spec.metadata),
        .kwargs = run->kwargs_text,
        .multitask = ag_run__mt_names[run->spec.mt],
        .outcome = outcome_params(run),
        .claimant = ag_run__boot_id,
        .reservation = ag_run__reservation_param(run),
        .accepted_us = ag_run__us_param(a, run->accepted_us),
        .started_us = ag_run__us_param(a, run->started_us),
        .ended_us = ag_run__us_param(a, run->ended_us),
        .cancel_reason = cancel_reason(run),
        .output_cp = output_checkpoint(run),
    };
    /* After the reservation: the events it covers. */
    run->took_events = ag_tlog_take(run->spec.thread_id, a, &p.events);
    AG_PG_PARAMS(&run->q, p);
}

/* RUN_FINISH: the outcome of a run whose row exists, and the thread. */
static void finish_query(struct ag_run *run)
{
    struct {
        const char *run_id, *thread_id;
        struct outcome_params outcome;
        const char *rollback, *delete_thread, *started_us, *ended_us, *cancel_reason, *output_cp, *state_changed;
    } p = {
        .run_id = run->run_id,
        .thread_id = run->spec.thread_id,
        .outcome = outcome_params(run),
        .rollback = run->rollback ? "true" : "false",
        .delete_thread = run->spec.stateless && run->spec.delete_thread ? "true" : "false",
        .started_us = ag_run__us_param(&run->args, run->started_us),
        .ended_us = ag_run__us_param(&run->args, run->ended_us),
        .cancel_reason = cancel_reason(run),
        .output_cp = output_checkpoint(run),
        .state_changed = run->rollback || run->wrote_cps || json_array_size(run->cps) ? "true" : "false",
    };
    AG_PG_PARAMS(&run->q, p);
}

void ag_run__submit_finish(struct ag_run *run)
{
    if (ag_run__writing(run))
        return; /* on_progress or on_promoted sends it: statements of one run stay in order */
    if (run->persist == RP_ORPHAN || (run->persist == RP_DIRECT && run->rollback)) {
        ag_run__end_unwritten(run); /* nothing of it was written, and nothing is to be */
        return;
    }
    ag_pg_args_reset(&run->args);
    if (run->persist == RP_DIRECT) {
        ag_run__query_init(run, AG_SQL_RUN_RECORD, AG_PG_WRITE, on_finish);
        record_query(run);
    } else {
        ag_run__query_init(run, AG_SQL_RUN_FINISH, AG_PG_WRITE, on_finish);
        finish_query(run);
    }
    if (ag_pg_submit(ag_run__rs->s, &run->q) != 0) {
        events_done(run, AG_TLOG_TAKEN_RETRY);
        ag_pg_args_reset(&run->args);
        arm_finish_retry(run);
    }
}

/* --- leases (runtime/sweep.h: shard 0 only) --- */

static bool leased(const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK && PQntuples(res) == 1) {
        long dead = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (dead)
            ag_log(AG_LOG_WARN, "msg=\"runs of a stopped process ended as error\" runs=%ld", dead);
    } else if (q->status != AG_PG_OK) {
        ag_log(AG_LOG_WARN, "msg=\"run lease renewal failed\" error=\"%s\"", q->error ? q->error : "no database");
    }
    return false;
}

static _Thread_local struct ag_sweep lease_sweep;
static _Thread_local struct ag_sweep_def lease_def;
static _Thread_local char lease_text[16];

void ag_run__leases_start(struct ag_shard *s, const struct ag_run_limits *lim)
{
    snprintf(lease_text, sizeof lease_text, "%u", lim->lease_ms);
    lease_def = (struct ag_sweep_def){
        .stmt = AG_SQL_RUN_LEASE,
        .batch = ag_run__boot_id,
        .arg2 = lease_text,
        .interval_ns = ag_ms_to_ns(lim->lease_ms) / 3,
        .first_ns = 1, /* at once: runs a crashed process left behind end now, not a lease later */
        .done = leased,
    };
    ag_sweep_start(&lease_sweep, s, &lease_def);
}

void ag_run__leases_stop(struct ag_shard *s)
{
    ag_sweep_stop(&lease_sweep, s);
}
