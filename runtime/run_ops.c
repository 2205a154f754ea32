/* Operations on existing runs and what other modules tell the run lifecycle about a thread. Part of
 * the run lifecycle (runtime/run_internal.h). */
#include "runtime/run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/shard.h"
#include "runtime/run_internal.h"
#include "runtime/tlog.h"

void ag_run_cancel(struct ag_run *run, bool rollback, const char *reason)
{
    ag_run__run_cancel(run, AG_RUN_INTERRUPTED, rollback, reason);
}

static bool mine(const struct ag_run *run, const char *owner)
{
    return !ag_run_done(run) && !strcmp(run->spec.owner, owner);
}

unsigned ag_run_cancel_many(const char *thread_id, const char *owner, const char *const *run_ids, size_t nids,
                            unsigned which, bool rollback)
{
    unsigned n = 0;
    if (nids) {
        for (size_t i = 0; i < nids; i++) {
            struct ag_run *run = ag_run_find(thread_id, run_ids[i]);
            if (run && mine(run, owner)) {
                ag_run_cancel(run, rollback, AG_RUN_CANCEL_REASON_USER);
                n++;
            }
        }
        return n;
    }
    struct trt *t = ag_run__trt_get(thread_id, false);
    if (!t)
        return 0;
    t->nthread_sinks++; /* holds t while its runs are cancelled */
    /* The queued ones first (a cancelled active run would start the next), from a snapshot: a cancel
     * takes its run out of the queue. */
    if (which & AG_RUN_CANCEL_PENDING) {
        size_t len = 0;
        for (struct ag_run *x = t->qhead; x; x = x->qnext)
            len++;
        struct ag_run **pick = ag_malloc((len ? len : 1) * sizeof *pick);
        size_t k = 0;
        for (struct ag_run *x = t->qhead; x; x = x->qnext)
            if (mine(x, owner))
                pick[k++] = x;
        for (size_t i = 0; i < k; i++)
            if (!ag_run_done(pick[i])) {
                ag_run__run_cancel(pick[i], AG_RUN_INTERRUPTED, rollback, AG_RUN_CANCEL_REASON_USER);
                n++;
            }
        ag_free(pick);
    }
    if ((which & AG_RUN_CANCEL_RUNNING) && t->active && t->active->state == R_RUNNING && mine(t->active, owner)) {
        ag_run__run_cancel(t->active, AG_RUN_INTERRUPTED, rollback, AG_RUN_CANCEL_REASON_USER);
        n++;
    }
    t->nthread_sinks--;
    ag_run__trt_release(t);
    return n;
}

unsigned ag_run_cancel_owner(const char *owner, unsigned which, bool rollback)
{
    /* The ids first: cancelling may take threads out of the map, which moves its entries. */
    const struct ag_strmap *m = &ag_run__rs->threads;
    char(*ids)[37] = ag_malloc((m->len ? m->len : 1) * sizeof *ids);
    size_t n = 0;
    for (uint32_t i = 0; i < m->cap && n < m->len; i++)
        if (m->slots[i].key)
            snprintf(ids[n++], sizeof ids[0], "%s", ((const struct trt *)m->slots[i].val)->id);
    unsigned c = 0;
    for (size_t i = 0; i < n; i++)
        c += ag_run_cancel_many(ids[i], owner, NULL, 0, which, rollback);
    ag_free(ids);
    return c;
}

enum { MSG_RUN_CANCEL_OWNER = 26 }; /* ptr: the owner (ag_strdup'd, the receiver frees it); u32: which, rollback */
#define CANCEL_ROLLBACK 0x100u

static void on_msg_cancel_owner(struct ag_shard *s, const struct ag_msg *m)
{
    (void)s;
    ag_run_cancel_owner(m->ptr, m->u32 & ~CANCEL_ROLLBACK, (m->u32 & CANCEL_ROLLBACK) != 0);
    ag_free(m->ptr);
}

void ag_run_register(void)
{
    ag_shard_register_msg(MSG_RUN_CANCEL_OWNER, on_msg_cancel_owner);
}

int ag_run_cancel_owner_everywhere(struct ag_shard *s, const char *owner, unsigned which, bool rollback)
{
    int rc = 0;
    for (int i = 0; i < s->rt->nshards; i++) {
        if (i == s->id)
            continue;
        struct ag_msg m = {.type = MSG_RUN_CANCEL_OWNER, .u32 = which | (rollback ? CANCEL_ROLLBACK : 0),
                           .ptr = ag_strdup(owner)};
        if (ag_shard_send(s, i, &m) < 0) {
            ag_free(m.ptr);
            rc = -EAGAIN;
        }
    }
    ag_run_cancel_owner(owner, which, rollback);
    return rc;
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
        ag_run__run_cancel(x, AG_RUN_INTERRUPTED, false, NULL);
    if (t->active)
        ag_run__run_cancel(t->active, AG_RUN_INTERRUPTED, false, NULL);
    t->nthread_sinks--;
    ag_run__trt_release(t);
}

void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    ag_run__idle_drop(thread_id);
    if (t) {
        json_decref(t->last_cp);
        t->last_cp = NULL;
        t->cp_known = false;
        json_decref(t->idle_cp);
        t->idle_cp = NULL;
    }
}

bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    return t && ag_run__trt_busy(t);
}
