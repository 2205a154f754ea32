/* Operations on existing runs and what other modules tell the run lifecycle about a thread. Part of
 * the run lifecycle (runtime/run_internal.h). */
#include "runtime/run.h"

#include <string.h>

#include "core/alloc.h"
#include "runtime/run_internal.h"
#include "runtime/tlog.h"

void ag_run_cancel(struct ag_run *run, bool rollback)
{
    ag_run__run_cancel(run, AG_RUN_INTERRUPTED, rollback);
}

void ag_run_thread_deleted(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    ag_tlog_thread_deleted(thread_id);
    struct trt *t = ag_run__trt_get(thread_id, false);
    if (!t)
        return;
    t->nthread_sinks++; /* holds t while its sinks end and its runs are cancelled */
    ag_run__thread_sinks_end(t);
    /* Runs still creating fail to be created: their thread is gone. */
    for (struct ag_run *x; (x = ag_run__first_queued(t));)
        ag_run__run_cancel(x, AG_RUN_INTERRUPTED, false);
    if (t->active)
        ag_run__run_cancel(t->active, AG_RUN_INTERRUPTED, false);
    t->nthread_sinks--;
    ag_run__trt_release(t);
}

void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    if (t) {
        json_decref(t->last_cp);
        t->last_cp = NULL;
        t->cp_known = false;
    }
}

bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    return t && ag_run__trt_busy(t);
}
