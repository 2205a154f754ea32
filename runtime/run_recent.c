/* The runs that ended recently, kept in memory for join and attach (with their events) within
 * runs.recent_bytes, runs.recent_ms and RECENT_MAX; older ones are answered from Postgres. Part of the
 * run lifecycle (runtime/run_internal.h). */
#include "runtime/run.h"

#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/jsontext.h"
#include "core/obuf.h"
#include "runtime/run_internal.h"
#include "runtime/stats.h"
#include "runtime/v2proj.h"

/* Ended runs kept in memory per shard for join and attach (with their events), at most; and they
 * hold at most runs.recent_bytes. */
#define RECENT_MAX 512
/* Ended runs whose runs.recent_ms is up leave memory at most this many per loop turn. */
#define RECENT_EXPIRE_BATCH 256

void ag_run__free(struct ag_run *run)
{
    if (ag_strmap_get(&ag_run__rs->runs, run->run_id, strlen(run->run_id)) == run) /* a refused one never was */
        ag_strmap_del(&ag_run__rs->runs, run->run_id, strlen(run->run_id));
    for (uint32_t i = 0; i < run->nev; i++)
        ag_obuf_unref(run->ev[i]);
    ag_free(run->ev);
    if (run->exec)
        run->graph.engine->free(run->exec);
    ag_v2proj_free(run->v2);
    ag_timer_cancel(&ag_run__rs->s->timers, &run->timer);
    ag_timer_cancel(&ag_run__rs->s->timers, &run->promote_timer);
    ag_run__release_events(run);
    ag_run_spec_clear(&run->spec);
    json_decref(run->kwargs);
    ag_free(run->kwargs_text);
    json_decref(run->fork_cp);
    json_decref(run->known_cp);
    json_decref(run->prev_cp);
    json_decref(run->start_cp);
    json_decref(run->stamp_prev);
    json_decref(run->output);
    ag_free(run->output_text);
    ag_run_modes_clear(&run->modes);
    json_decref(run->md);
    json_decref(run->final_values);
    json_decref(run->final_interrupts);
    json_decref(run->cps);
    json_decref(run->sub_stamps);
    ag_free(run->error);
    ag_free(run->cancel_reason);
    ag_pg_args_reset(&run->args);
    AG_BUG_ON(run->flush_task.queued);
    ag_free(run);
}

/* What an ended run holds in memory: itself, its events and its output (as text: an estimate). */
static size_t run_bytes(const struct ag_run *run)
{
    size_t out = run->output_bytes;
    if (!out && run->output && !ag_json_scratch_text(run->output, JSON_COMPACT | JSON_ENCODE_ANY, &out)) out = 0;
    return sizeof *run + (size_t)run->evcap * sizeof *run->ev + run->ev_bytes + out +
           (run->error ? strlen(run->error) + 1 : 0);
}

static void recent_unlink(struct ag_run *run)
{
    ag_run__rs->recent_bytes -= run->recent_bytes;
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_ENDED_RUN_BYTES, run->recent_bytes);
    ag_run__rs->nrecent--;
}

/* An ended run leaves the recent list and memory. */
void ag_run__forget(struct ag_run *run)
{
    if (run->rprev)
        run->rprev->rnext = run->rnext;
    else
        ag_run__rs->recent_head = run->rnext;
    if (run->rnext)
        run->rnext->rprev = run->rprev;
    else
        ag_run__rs->recent_tail = run->rprev;
    recent_unlink(run);
    ag_run__free(run);
}

/* An ended run keeps what join and attach answer from (status, output, error, events); the rest
 * goes now rather than when it leaves the recent list (its checkpoint alone can be the thread's whole
 * history). */
static void run_shed(struct ag_run *run)
{
    struct ag_run_spec *sp = &run->spec;
    if (run->output_text) { /* join answers the text */
        json_decref(run->output);
        run->output = NULL;
    }
    json_t **owned[] = {&sp->input,       &sp->command,       &sp->config,           &sp->context,
                        &sp->metadata,    &sp->checkpoint,    &sp->interrupt_before, &sp->interrupt_after,
                        &sp->stream_mode, &sp->feedback_keys, &run->kwargs,          &run->fork_cp,
                        &run->known_cp,   &run->prev_cp,      &run->start_cp,        &run->stamp_prev,
                        &run->md,         &run->final_values, &run->final_interrupts};
    for (size_t i = 0; i < AG_ARRAY_LEN(owned); i++) {
        json_decref(*owned[i]);
        *owned[i] = NULL;
    }
    ag_free(run->kwargs_text);
    run->kwargs_text = NULL;
    ag_run_modes_clear(&run->modes);
    run->modes.md = NULL;
    if (run->evcap > run->nev) { /* the array doubled as it grew */
        run->ev = ag_realloc(run->ev, AG_MAX(run->nev, 1u) * sizeof *run->ev);
        run->evcap = AG_MAX(run->nev, 1u);
    }
}

/* run keeps only its last event (its end), as attach answers a run read back from Postgres. */
static void keep_end_only(struct ag_run *run)
{
    for (uint32_t i = 0; i + 1 < run->nev; i++) {
        run->ev_bytes -= sizeof *run->ev[i] + run->ev[i]->cap;
        ag_obuf_unref(run->ev[i]);
    }
    run->ev[0] = run->ev[run->nev - 1];
    run->ev_first += run->nev - 1;
    run->nev = run->evcap = 1;
    run->ev = ag_realloc(run->ev, sizeof *run->ev);
}

/* The oldest ended runs whose runs.recent_ms is up leave memory (join and attach answer from
 * Postgres after that), so that a quiet server holds none. */
static void on_recent_expire(struct ag_timer *tm)
{
    (void)tm;
    uint64_t now = ag_run__rs->s->now_ns, keep = ag_ms_to_ns(ag_run__rs->lim->recent_ms);
    for (unsigned n = 0; ag_run__rs->recent_head && ag_run__rs->recent_head->ended_ns + keep <= now; n++) {
        if (n == RECENT_EXPIRE_BATCH) {
            ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire, now + 1); /* the rest next turn */
            return;
        }
        ag_run__forget(ag_run__rs->recent_head);
    }
    if (ag_run__rs->recent_head)
        ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire, ag_run__rs->recent_head->ended_ns + keep);
}

void ag_run__recent_add(struct ag_run *run)
{
    uint64_t budget = ag_run__rs->lim->recent_bytes;
    run_shed(run);
    run->recent_bytes = run_bytes(run);
    if (run->recent_bytes > budget && run->nev > 1) {
        keep_end_only(run);
        run->recent_bytes = run_bytes(run);
    }
    run->rprev = ag_run__rs->recent_tail;
    run->rnext = NULL;
    if (ag_run__rs->recent_tail)
        ag_run__rs->recent_tail->rnext = run;
    else
        ag_run__rs->recent_head = run;
    ag_run__rs->recent_tail = run;
    ag_run__rs->nrecent++;
    run->ended_ns = ag_run__rs->s->now_ns;
    if (!ag_timer_armed(&ag_run__rs->recent_expire))
        ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire,
                     run->ended_ns + ag_ms_to_ns(ag_run__rs->lim->recent_ms));
    ag_run__rs->recent_bytes += run->recent_bytes;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_ENDED_RUN_BYTES, run->recent_bytes);
    /* The oldest go first; run itself stays (this may be its own statement's callback). */
    while ((ag_run__rs->nrecent > RECENT_MAX || ag_run__rs->recent_bytes > budget) && ag_run__rs->recent_head != run) {
        struct ag_run *old = ag_run__rs->recent_head;
        ag_run__rs->recent_head = old->rnext;
        if (ag_run__rs->recent_head)
            ag_run__rs->recent_head->rprev = NULL;
        else
            ag_run__rs->recent_tail = NULL;
        recent_unlink(old);
        ag_run__free(old);
    }
}

void ag_run_forget(struct ag_run *run)
{
    ag_run__forget(run);
}

void ag_run__recent_init(void)
{
    ag_timer_init(&ag_run__rs->recent_expire, on_recent_expire);
}

void ag_run__recent_free_all(void)
{
    ag_timer_cancel(&ag_run__rs->s->timers, &ag_run__rs->recent_expire);
    while (ag_run__rs->recent_head) {
        struct ag_run *run = ag_run__rs->recent_head;
        ag_run__rs->recent_head = run->rnext;
        ag_run__free(run);
    }
}
