/* Run creation and admission: validation against the assistant and the thread (RUN_CREATE, or
 * RUN_PREPARE for a run written once at its end), multitask admission, and the creator's typed outcome.
 * Part of the run lifecycle (runtime/run_internal.h). */
#include "runtime/run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "runtime/run_internal.h"
#include "runtime/stats.h"
#include "runtime/tlog.h"

/* --- creation --- */

/* A creation refused: the creator hears why (detail: the id it names, or NULL). */
static void refuse(struct ag_run *run, enum ag_run_admit why, const char *detail)
{
    ag_run__tell_creator(run, &(struct ag_run_created){.result = why, .detail = detail});
}

/* A run whose creation was refused (its creator told) goes away, and gives its place in the queue to
 * the runs behind it. */
static void drop_refused(struct ag_run *run)
{
    struct trt *t = run->t;
    ag_run__queue_remove(t, run);
    run->t = NULL;
    ag_run__start_next(t);
    ag_run__trt_release(t);
    ag_run__free(run);
}

/* The first R_QUEUED run ahead of run in its thread's queue (NULL: none). */
static struct ag_run *queued_ahead(const struct trt *t, const struct ag_run *run)
{
    for (struct ag_run *x = t->qhead; x && x != run; x = x->qnext)
        if (x->state == R_QUEUED)
            return x;
    return NULL;
}

/* The start checkpoint as RUN_CREATE or RUN_PREPARE answered it: its text (NULL: not sent) and id (NULL:
 * there is none). Not sent when it is the one the run said it has (run->known_cp). A new reference. */
static json_t *start_cp_of(struct ag_run *run, const char *text, const char *id)
{
    json_t *cp = NULL;
    if (text) {
        cp = json_loads(text, 0, NULL);
        if (cp) json_object_set_new(cp, "bytes", json_integer((json_int_t)strlen(text)));
    } else if (id && run->known_cp && !strcmp(id, json_string_value(json_object_get(run->known_cp, "checkpoint_id")))) {
        cp = json_incref(run->known_cp);
    }
    json_decref(run->known_cp);
    run->known_cp = NULL;
    return cp;
}

/* The checkpoint a run's RUN_PREPARE / RUN_CREATE says it has, as their parameter (the id; NULL: none):
 * for a fork none (the checkpoint named is read); else the thread's latest known here, or what this
 * shard kept of it while the thread was idle (run_idle.c), or for a promoted run the one it started
 * from. */
static const char *known_cp_param(struct ag_run *run)
{
    struct trt *t = run->t;
    json_decref(run->known_cp);
    run->known_cp = NULL;
    if (run->persist == RP_DIRECT && run->start_cp)
        run->known_cp = json_incref(run->start_cp);
    else if (!run->spec.checkpoint_id[0])
        run->known_cp = json_incref(t->cp_known ? t->last_cp : t->idle_cp);
    const char *id = json_string_value(json_object_get(run->known_cp, "checkpoint_id"));
    return id ? ag_pg_args_dup(&run->args, id, strlen(id)) : NULL;
}

/* Takes the run in once its assistant, kwargs and start checkpoint are known (text of RUN_CREATE's
 * or RUN_PREPARE's row and its id: see start_cp_of; run_kwargs: AG_RUN_SQL_KWARGS_RUN's config and
 * context; kwargs: the whole, for a direct run's RUN_RECORD): it becomes R_QUEUED at the place it
 * took when accepted. */
static void admit(struct ag_run *run, const char *graph_id, const char *run_kwargs, const char *kwargs,
                  const char *cp_text, const char *cp_id)
{
    struct trt *t = run->t;
    if (!ag_engine_graph_find(graph_id, &run->graph))
        run->graph = (struct ag_engine_graph){0}; /* starts as an error: no engine has the graph */
    run->kwargs = json_loads(run_kwargs, 0, NULL);
    if (run->persist == RP_DIRECT)
        run->kwargs_text = ag_strdup(kwargs);
    /* Built, sent and parsed only when it is not known here already (a thread's latest stays in memory
     * between its runs, and a while after): at a long conversation's end, building it was most of a
     * run's Postgres CPU, parsing it again a tenth of agentd's. */
    json_t *cp = start_cp_of(run, cp_text, cp_id);
    if (run->spec.checkpoint_id[0]) {
        run->fork_cp = json_incref(cp);
    } else if (!t->cp_known) {
        ag_run__set_last_cp(t, cp);
    }
    json_decref(cp);
    json_decref(t->idle_cp);
    t->idle_cp = NULL;
    ag_strmap_put(&ag_run__rs->runs, run->run_id, strlen(run->run_id), run);
    ag_run__rs->live++;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    run->cps = json_array();

    /* Admission: interrupt and rollback stop what was accepted before them (the active run, the
     * queued ones now, the ones still creating once created); enqueue waits behind it. Runs accepted
     * after this one stay queued behind it. */
    if (run->spec.mt == AG_MT_INTERRUPT || run->spec.mt == AG_MT_ROLLBACK) {
        bool rb = run->spec.mt == AG_MT_ROLLBACK;
        for (struct ag_run *x; (x = queued_ahead(t, run));)
            ag_run__run_cancel(x, AG_RUN_INTERRUPTED, rb, AG_RUN_CANCEL_REASON_MULTITASK);
        for (struct ag_run *x = t->qhead; x && x != run; x = x->qnext) {
            x->preempted = true;
            x->preempted_rollback = rb;
        }
        if (t->active)
            ag_run__run_cancel(t->active, AG_RUN_INTERRUPTED, rb, AG_RUN_CANCEL_REASON_MULTITASK);
    }
    run->state = R_QUEUED;
}

/* The run's creator has its first answer: a run preempted while it was creating stops now, a delayed
 * one waits for its time, and the thread's first run starts when it may. */
static void admitted(struct ag_run *run)
{
    struct trt *t = run->t;
    if (run->preempted) {
        ag_run__run_cancel(run, AG_RUN_INTERRUPTED, run->preempted_rollback, AG_RUN_CANCEL_REASON_MULTITASK);
    } else if (run->spec.after_seconds > 0) {
        run->timer.cb = ag_run__on_delay;
        ag_timer_arm(&ag_run__rs->s->timers, &run->timer,
                     ag_run__rs->s->now_ns + (uint64_t)ag_sec_to_ns_f(run->spec.after_seconds));
    }
    ag_run__start_next(t);
}

static void emit_metadata(struct ag_run *run)
{
    json_t *md = json_pack("{s:s,s:i}", "run_id", run->run_id, "attempt", 1);
    ag_run__emit(run, "metadata", md);
    json_decref(md);
}

static void on_created(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    struct trt *t = run->t;
    t->creating--;
    ag_pg_args_reset(&run->args);
    if (q->status != AG_PG_OK) {
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_DB_FAILED, .q = q});
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        refuse(run, AG_RUN_NO_ASSISTANT, run->spec.assistant_id);
        drop_refused(run);
        return;
    }
    if (!PQgetisnull(res, 0, 6)) {
        refuse(run, AG_RUN_FOREIGN_BUSY, PQgetvalue(res, 0, 6));
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 2)) {
        if (!PQgetisnull(res, 0, 4) && PQgetvalue(res, 0, 4)[0] == 'f')
            refuse(run, AG_RUN_NO_CHECKPOINT, run->spec.checkpoint_id);
        else
            refuse(run, AG_RUN_NO_THREAD, run->spec.thread_id);
        drop_refused(run);
        return;
    }
    if (!PQgetisnull(res, 0, 5))
        ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 5), NULL, 10));
    admit(run, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), NULL,
          PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3), PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7));
    ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_ADMITTED,
                                                       .run = run,
                                                       .run_json = PQgetvalue(res, 0, 2),
                                                       .run_json_len = (size_t)PQgetlength(res, 0, 2)});
    emit_metadata(run);
    admitted(run);
}

/* kwargs as LangGraph Platform shows them (config and context are merged in SQL). */
static json_t *base_kwargs(const struct ag_run_spec *sp)
{
    json_t *k = json_object();
    json_object_set(k, "input", sp->input ? sp->input : json_null());
    if (sp->command)
        json_object_set(k, "command", sp->command);
    json_object_set_new(k, "stream_mode", sp->stream_mode ? json_incref(sp->stream_mode) : json_pack("[s]", "values"));
    json_object_set_new(k, "interrupt_before", sp->interrupt_before ? json_incref(sp->interrupt_before) : json_null());
    json_object_set_new(k, "interrupt_after", sp->interrupt_after ? json_incref(sp->interrupt_after) : json_null());
    if (sp->checkpoint)
        json_object_set(k, "checkpoint", sp->checkpoint);
    if (sp->checkpoint_id[0])
        json_object_set_new(k, "checkpoint_id", json_string(sp->checkpoint_id));
    json_object_set_new(k, "temporary", json_boolean(sp->stateless && sp->delete_thread));
    json_object_set_new(k, "subgraphs", json_boolean(sp->subgraphs));
    json_object_set_new(k, "resumable", json_boolean(sp->resumable));
    json_object_set_new(k, "on_disconnect", json_string(sp->cancel_on_disconnect ? "cancel" : "continue"));
    if (sp->feedback_keys)
        json_object_set(k, "feedback_keys", sp->feedback_keys);
    if (sp->durability != AG_DURABILITY_DEFAULT)
        json_object_set_new(k, "durability", json_string(ag_durability_name(sp->durability)));
    if (sp->after_seconds > 0)
        json_object_set_new(k, "after_seconds", json_real(sp->after_seconds));
    return k;
}

/* RUN_CREATE's parameters (persist/sql_runs.def), in their order. */
struct create_params {
    const char *thread_id, *assistant_id, *owner, *run_id, *metadata, *kwargs, *config, *context, *create_thread,
        *multitask, *after_seconds, *checkpoint_id, *ttl_marker, *claimant, *lease_ms, *reservation, *reserve_block,
        *accepted_us, *known_cp;
};

/* run->q becomes its RUN_CREATE (answered by on_created). */
static void create_query(struct ag_run *run)
{
    struct ag_pg_args *a = &run->args;
    struct ag_run_spec *sp = &run->spec;
    ag_run__query_init(run, AG_SQL_RUN_CREATE, AG_PG_WRITE, on_created);
    json_t *k = base_kwargs(sp);
    struct create_params p = {
        .thread_id = sp->thread_id,
        .assistant_id = sp->assistant_id,
        .owner = sp->owner,
        .run_id = run->run_id,
        .metadata = ag_pg_args_json(a, sp->metadata),
        .kwargs = ag_pg_args_json(a, k),
        .config = ag_pg_args_json(a, sp->config),
        .context = ag_pg_args_json(a, sp->context),
        .create_thread = sp->create_thread ? "true" : "false",
        .multitask = ag_run__mt_names[sp->mt],
        .after_seconds = sp->after_seconds > 0 ? ag_pg_args_printf(a, "%.3f", sp->after_seconds) : NULL,
        .checkpoint_id = sp->checkpoint_id[0] ? sp->checkpoint_id : NULL,
        .ttl_marker = sp->stateless && sp->delete_thread ? "ephemeral" : NULL,
        .claimant = ag_run__boot_id,
        .lease_ms = ag_pg_args_printf(a, "%u", ag_run__rs->lim->lease_ms),
        .reservation = ag_run__reservation_param(run),
        .reserve_block = AG_TLOG_RESERVE_TEXT,
        .accepted_us = ag_pg_args_printf(a, "%" PRIu64, run->accepted_us),
        .known_cp = known_cp_param(run),
    };
    json_decref(k);
    AG_PG_PARAMS(&run->q, p);
}

static void on_prepared(struct ag_pg_query *q, PGresult *res);

/* RUN_PREPARE's parameters, in their order. */
struct prepare_params {
    const char *thread_id, *assistant_id, *owner, *run_id, *kwargs, *config, *context, *checkpoint_id, *claimant,
        *known_cp;
};

/* run->q becomes its RUN_PREPARE (a direct run). */
static void prepare_query(struct ag_run *run)
{
    struct ag_pg_args *a = &run->args;
    struct ag_run_spec *sp = &run->spec;
    ag_run__query_init(run, AG_SQL_RUN_PREPARE, AG_PG_READ, on_prepared);
    json_t *k = base_kwargs(sp);
    struct prepare_params p = {
        .thread_id = sp->thread_id,
        .assistant_id = sp->assistant_id,
        .owner = sp->owner,
        .run_id = run->run_id,
        .kwargs = ag_pg_args_json(a, k),
        .config = ag_pg_args_json(a, sp->config),
        .context = ag_pg_args_json(a, sp->context),
        .checkpoint_id = sp->checkpoint_id[0] ? sp->checkpoint_id : NULL,
        .claimant = ag_run__boot_id,
        .known_cp = known_cp_param(run),
    };
    json_decref(k);
    AG_PG_PARAMS(&run->q, p);
}

/* The promotion of a direct run failed: its creator hears why, and nothing of it will be written.
 * q: the statement that failed or found no thread (NULL: it could not be submitted); foreign: the id of
 * another process's active run that refused it (NULL: none). */
static void promotion_failed(struct ag_run *run, const struct ag_pg_query *q, const char *foreign)
{
    ag_log(AG_LOG_WARN, "run=%s msg=\"run not created: %s\"", run->run_id,
           q && q->error ? q->error : "no database or the thread is gone");
    struct ag_run_created res = {.result = AG_RUN_NOT_STORED};
    if (q && q->status != AG_PG_OK)
        res = (struct ag_run_created){.result = AG_RUN_DB_FAILED, .q = q};
    else if (foreign)
        res = (struct ag_run_created){.result = AG_RUN_FOREIGN_BUSY, .detail = foreign};
    else if (q)
        res = (struct ag_run_created){.result = AG_RUN_NO_THREAD, .detail = run->spec.thread_id};
    ag_run__tell_creator(run, &res);
    run->persist = RP_ORPHAN;
    if (run->state == R_RUNNING) {
        run->error = ag_strdup("the run could not be stored");
        ag_run__run_cancel(run, AG_RUN_ERROR, false, NULL); /* its end writes nothing */
    }
}

static void on_promoted(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    if (q->status == AG_PG_OK && !PQgetisnull(res, 0, 2)) {
        run->persist = RP_STORED;
        if (!PQgetisnull(res, 0, 5))
            ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 5), NULL, 10));
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_ADMITTED, .run = run});
    } else {
        promotion_failed(run, q, q->status == AG_PG_OK && !PQgetisnull(res, 0, 6) ? PQgetvalue(res, 0, 6) : NULL);
    }
    ag_run__progress_done(run);
}

/* A direct run still running runs.direct_ms after it started is created like any run (RUN_CREATE, in
 * place of its first checkpoint write) and its creator answered once that is stored. */
static void promote(struct ag_run *run)
{
    create_query(run);
    run->q.cb = on_promoted;
    run->persist = RP_PROMOTING;
    if (ag_pg_submit(ag_run__rs->s, &run->q) == 0)
        return;
    run->persist = RP_DIRECT;
    ag_pg_args_reset(&run->args);
    promotion_failed(run, NULL, NULL);
}

static void on_promote_timer(struct ag_timer *tm)
{
    struct ag_run *run = AG_CONTAINER_OF(tm, struct ag_run, promote_timer);
    ag_run__release_events(run);
    if (run->persist == RP_DIRECT && run->state == R_RUNNING) promote(run);
}

/* A direct run that did not end in the turn it started in: it is still written once, at its end, if that
 * comes within runs.direct_ms (a run that yielded the shard to others, or whose state took a turn's
 * budget to encode, ends a turn or two later); else promoted then. Its v2 events wait for it meanwhile,
 * held back from the sinks as a direct run's are until its RUN_RECORD commits. */
static void promote_later(struct ag_run *run)
{
    uint32_t ms = ag_run__rs->lim->direct_ms;
    if (!ms) {
        promote(run);
        return;
    }
    if (run->v2) { /* its events go with its RUN_RECORD, not in a write of their own before it */
        ag_tlog_hold_writes(run->spec.thread_id);
        run->holds_events = true;
    }
    run->promote_timer.cb = on_promote_timer;
    ag_timer_arm(&ag_run__rs->s->timers, &run->promote_timer, ag_run__rs->s->now_ns + ag_ms_to_ns(ms));
}

static void on_prepared(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    struct trt *t = run->t;
    t->creating--;
    ag_pg_args_reset(&run->args);
    if (q->status != AG_PG_OK) {
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_DB_FAILED, .q = q});
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        refuse(run, AG_RUN_NO_ASSISTANT, run->spec.assistant_id);
        drop_refused(run);
        return;
    }
    if (PQgetvalue(res, 0, 4)[0] == 'f') {
        refuse(run, AG_RUN_NO_CHECKPOINT, run->spec.checkpoint_id);
        drop_refused(run);
        return;
    }
    if (!PQgetisnull(res, 0, 5)) {
        refuse(run, AG_RUN_FOREIGN_BUSY, PQgetvalue(res, 0, 5));
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 2) || !ag_run__direct_ok(t, run)) {
        /* A thread to create, or runs admitted meanwhile: created like any run. */
        run->persist = RP_STORED;
        create_query(run);
        t->creating++;
        int rc = ag_pg_submit(ag_run__rs->s, &run->q);
        if (rc == 0)
            return;
        t->creating--;
        ag_pg_args_reset(&run->args);
        ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_NOT_SUBMITTED, .submit_rc = rc});
        drop_refused(run);
        return;
    }
    ag_tlog_stored(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 2), NULL, 10));
    admit(run, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 7), PQgetvalue(res, 0, 1),
          PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3), PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6));
    emit_metadata(run);
    admitted(run);
    if (run->state == R_RUNNING) promote_later(run);
}

void ag_run_create(struct ag_run_spec *spec, enum ag_run_reply how, ag_run_created_fn cb, void *ud)
{
    AG_BUG_ON(!spec->owner[0]); /* every creator says whose run it is */
    struct trt *t = ag_run__trt_get(spec->thread_id, true);
    if (ag_run__trt_busy(t) && spec->mt == AG_MT_REJECT) {
        ag_run_spec_clear(spec);
        ag_run__trt_release(t);
        cb(ud, &(struct ag_run_created){.result = AG_RUN_REJECTED_BUSY});
        return;
    }
    if (t->qhead && spec->mt == AG_MT_ENQUEUE) { /* runs still creating hold their place: they count */
        unsigned n = 0;
        for (struct ag_run *x = t->qhead; x; x = x->qnext)
            n++;
        if (n >= ag_run__rs->lim->queue_max) {
            ag_run_spec_clear(spec);
            cb(ud, &(struct ag_run_created){.result = AG_RUN_QUEUE_FULL});
            return;
        }
    }
    struct ag_run *run = ag_calloc(1, sizeof *run);
    run->spec = *spec;
    memset(spec, 0, sizeof *spec);
    run->how = how;
    run->created_cb = cb;
    run->created_ud = ud;
    run->t = t;
    run->state = R_CREATING;
    run->accepted_us = ag_clock_real_us();
    ag_uuid7(run->run_id);
    run->modes = (struct ag_run_modes){.modes = run->spec.modes,
                                       .thread_id = run->spec.thread_id,
                                       .run_id = run->run_id,
                                       .emit = ag_run__emit_modes,
                                       .ud = run,
                                       .subgraphs = run->spec.subgraphs};
    /* Watched to its end by its creator, on an idle thread that exists: written once, at its end, when
     * it ends within the turn it starts in (RUN_PREPARE, then RUN_RECORD). */
    bool direct = how != AG_RUN_REPLY_RUN && !run->spec.stateless && run->spec.after_seconds <= 0 &&
                  run->spec.durability != AG_DURABILITY_SYNC && ag_run__direct_ok(t, NULL);
    run->persist = direct ? RP_DIRECT : RP_STORED;
    t->creating++;
    ag_run__queue_append(t, run);
    if (direct)
        prepare_query(run);
    else
        create_query(run);
    int rc = ag_pg_submit(ag_run__rs->s, &run->q);
    if (rc == 0)
        return;
    t->creating--;
    ag_run__queue_remove(t, run);
    ag_pg_args_reset(&run->args);
    ag_run_spec_clear(&run->spec);
    ag_free(run);
    ag_run__start_next(t);
    ag_run__trt_release(t);
    cb(ud, &(struct ag_run_created){.result = AG_RUN_NOT_SUBMITTED, .submit_rc = rc});
}
