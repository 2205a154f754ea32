/* The latest checkpoint of threads with no run on this shard (the thread entry is gone), kept so that a
 * thread's next run need not have Postgres build its state from its versions again, nor parse it: at a
 * long conversation's turn that was most of a run's cost. Bounded by runs.idle_checkpoint_bytes (the
 * least recently kept go first) and runs.idle_checkpoint_ms. A kept checkpoint is only a candidate:
 * RUN_PREPARE and RUN_CREATE take its id and build the thread's latest only when that is another one (a
 * state update, another process's run, a deleted and recreated thread). Part of the run lifecycle
 * (runtime/run_internal.h). */
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/common.h"
#include "persist/cpstore.h"
#include "runtime/run_internal.h"
#include "runtime/stats.h"

struct idle_cp {
    char id[37];
    json_t *cp;
    size_t bytes;
    uint64_t at_ns;
    struct idle_cp *prev, *next; /* oldest first */
};

static void unlink_entry(struct idle_cp *e)
{
    struct run_shard *rs = ag_run__rs;
    if (e->prev)
        e->prev->next = e->next;
    else
        rs->idle_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        rs->idle_tail = e->prev;
    ag_strmap_del(&rs->idle, e->id, strlen(e->id));
    rs->idle_bytes -= e->bytes;
    ag_stat_sub(&rs->s->stats, AG_STAT_IDLE_CHECKPOINT_BYTES, e->bytes);
}

static void drop_entry(struct idle_cp *e)
{
    unlink_entry(e);
    json_decref(e->cp);
    ag_free(e);
}

static void on_expire(struct ag_timer *tm)
{
    (void)tm;
    struct run_shard *rs = ag_run__rs;
    uint64_t keep = ag_ms_to_ns(rs->lim->idle_checkpoint_ms);
    while (rs->idle_head && rs->idle_head->at_ns + keep <= rs->s->now_ns)
        drop_entry(rs->idle_head);
    if (rs->idle_head)
        ag_timer_arm(&rs->s->timers, &rs->idle_expire, rs->idle_head->at_ns + keep);
}

void ag_run__idle_put(const char *thread_id, json_t *cp)
{
    struct run_shard *rs = ag_run__rs;
    ag_run__idle_drop(thread_id);
    size_t bytes = ag_cpstore_bytes(cp) + sizeof(struct idle_cp);
    if (!cp || !rs->lim->idle_checkpoint_ms || bytes > rs->lim->idle_checkpoint_bytes)
        return;
    while (rs->idle_head && rs->idle_bytes + bytes > rs->lim->idle_checkpoint_bytes)
        drop_entry(rs->idle_head);
    struct idle_cp *e = ag_calloc(1, sizeof *e);
    memcpy(e->id, thread_id, AG_MIN(strlen(thread_id), sizeof e->id - 1));
    e->cp = json_incref(cp);
    e->bytes = bytes;
    e->at_ns = rs->s->now_ns;
    e->prev = rs->idle_tail;
    if (rs->idle_tail)
        rs->idle_tail->next = e;
    else
        rs->idle_head = e;
    rs->idle_tail = e;
    ag_strmap_put(&rs->idle, e->id, strlen(e->id), e);
    rs->idle_bytes += bytes;
    ag_stat_add(&rs->s->stats, AG_STAT_IDLE_CHECKPOINT_BYTES, bytes);
    if (!ag_timer_armed(&rs->idle_expire))
        ag_timer_arm(&rs->s->timers, &rs->idle_expire, e->at_ns + ag_ms_to_ns(rs->lim->idle_checkpoint_ms));
}

json_t *ag_run__idle_take(const char *thread_id)
{
    struct idle_cp *e = ag_strmap_get(&ag_run__rs->idle, thread_id, strlen(thread_id));
    if (!e)
        return NULL;
    json_t *cp = json_incref(e->cp);
    drop_entry(e);
    return cp;
}

void ag_run__idle_drop(const char *thread_id)
{
    struct idle_cp *e = ag_strmap_get(&ag_run__rs->idle, thread_id, strlen(thread_id));
    if (e)
        drop_entry(e);
}

void ag_run__idle_init(void)
{
    ag_timer_init(&ag_run__rs->idle_expire, on_expire);
}

void ag_run__idle_free_all(void)
{
    ag_timer_cancel(&ag_run__rs->s->timers, &ag_run__rs->idle_expire);
    while (ag_run__rs->idle_head)
        drop_entry(ag_run__rs->idle_head);
    ag_strmap_free(&ag_run__rs->idle);
}
