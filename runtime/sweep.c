#include "runtime/sweep.h"

#include <string.h>

#include "core/common.h"
#include "core/shard.h"

static void sweep_arm(struct ag_sweep *w, uint64_t delay_ns)
{
    struct ag_shard *s = w->s;
    if (s && !s->draining && !s->stopping)
        ag_timer_arm(&s->timers, &w->timer, s->now_ns + delay_ns);
}

static void on_swept(struct ag_pg_query *q, PGresult *res)
{
    struct ag_sweep *w = AG_CONTAINER_OF(q, struct ag_sweep, q);
    w->busy = false;
    sweep_arm(w, w->def->done(q, res) ? 0 : w->def->interval_ns);
}

static void on_sweep_timer(struct ag_timer *t)
{
    struct ag_sweep *w = AG_CONTAINER_OF(t, struct ag_sweep, timer);
    struct ag_shard *s = w->s;
    if (w->busy || s->draining || s->stopping)
        return; /* a run in flight re-arms when it is done */
    memset(&w->q, 0, sizeof w->q);
    w->q.stmt = w->def->stmt;
    w->q.kind = AG_PG_WRITE;
    w->q.nparams = w->def->arg2 ? 2 : 1;
    w->q.params[0] = w->def->batch;
    w->q.params[1] = w->def->arg2;
    w->q.cb = on_swept;
    w->q.ud = w;
    if (ag_pg_submit(s, &w->q) == 0)
        w->busy = true;
    else
        sweep_arm(w, w->def->interval_ns); /* no connection yet, or the queue is full */
}

void ag_sweep_start(struct ag_sweep *w, struct ag_shard *s, const struct ag_sweep_def *def)
{
    if (s->id != 0 || !ag_pg_configured(s))
        return;
    memset(w, 0, sizeof *w);
    w->def = def;
    w->s = s;
    ag_timer_init(&w->timer, on_sweep_timer);
    sweep_arm(w, def->first_ns ? def->first_ns : def->interval_ns);
}

void ag_sweep_stop(struct ag_sweep *w, struct ag_shard *s)
{
    if (s->id != 0 || w->s != s)
        return;
    ag_timer_cancel(&s->timers, &w->timer);
    w->s = NULL;
}
