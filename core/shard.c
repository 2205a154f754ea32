#define _GNU_SOURCE
#include "core/shard.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/jsontext.h"
#include "core/log.h"

#define RING_ENTRIES 4096
#define CQ_ENTRIES 65536
#define REAP_BATCH 256
#define REAP_BUDGET 16384
#define INBOX_BATCH 64
#define INBOX_BUDGET 4096      /* control messages handled per turn */
#define INBOX_DATA_BUDGET 4096 /* data messages handled per turn, after the control lanes */
#define TASK_BUDGET 4096
#define TIMER_BUDGET 1024
#define WAIT_CAP_NS AG_NS_PER_SEC
#define STOP_GRACE_NS AG_NS_PER_SEC
#define STALL_REPORT_EVERY_NS AG_NS_PER_SEC /* at most one stall report a second per shard */
/* The shortest time between two collects of freed memory (only on quiet turns). */
#define COLLECT_NS AG_NS_PER_SEC

enum ctrl_code { CTRL_DRAIN = 1, CTRL_STOP = 2 };

static ag_cqe_fn op_handlers[256];
static ag_msg_fn msg_handlers[256];
static _Thread_local struct ag_shard *tl_self;

void ag_shard_register_op(unsigned kind, ag_cqe_fn fn)
{
    AG_BUG_ON(kind < AG_OP_USER || kind > 255);
    op_handlers[kind] = fn;
}

void ag_shard_register_msg(unsigned type, ag_msg_fn fn)
{
    AG_BUG_ON(type > 255);
    msg_handlers[type] = fn;
}

struct ag_shard *ag_shard_self(void)
{
    return tl_self;
}

struct io_uring_sqe *ag_shard_sqe(struct ag_shard *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    while (!sqe) {
        unsigned n = io_uring_sq_ready(&s->ring);
        int r = io_uring_submit(&s->ring);
        if (r >= 0) {
            ag_stat_add(&s->stats, AG_STAT_SUBMIT_CALLS, 1);
            ag_stat_add(&s->stats, AG_STAT_SUBMITTED_SQES, n);
        }
        sqe = io_uring_get_sqe(&s->ring);
    }
    return sqe;
}

static struct ag_spsc *lane_of(struct ag_runtime *rt, int from, int to, enum ag_lane lane)
{
    return &rt->queues[((size_t)from * (size_t)rt->nshards + (size_t)to) * AG_LANES + lane];
}

static int send_on(struct ag_shard *s, int to, struct ag_msg *m, enum ag_lane lane)
{
    struct ag_runtime *rt = s->rt;
    AG_BUG_ON(to == s->id || to < 0 || to >= rt->nshards);
    m->from = (uint16_t)s->id;
    struct ag_spsc *q = lane_of(rt, s->id, to, lane);
    /* A data lane that refuses says so once it has room: the sender waits for that, not a timer. */
    if (!ag_spsc_push(q, m) && !(lane == AG_LANE_DATA && ag_spsc_want_room(q) && ag_spsc_push(q, m))) {
        ag_stat_add(&s->stats, lane == AG_LANE_DATA ? AG_STAT_XMSG_FULL_DATA : AG_STAT_XMSG_FULL_CTRL, 1);
        return -EAGAIN;
    }
    s->wake_pending[to / 64] |= 1ull << (to % 64);
    ag_stat_add(&s->stats, AG_STAT_XMSG_SENT, 1);
    return 0;
}

int ag_shard_send(struct ag_shard *s, int to, struct ag_msg *m)
{
    return send_on(s, to, m, AG_LANE_CTRL);
}

int ag_shard_send_data(struct ag_shard *s, int to, struct ag_msg *m)
{
    return send_on(s, to, m, AG_LANE_DATA);
}

void ag_shard_defer(struct ag_shard *s, struct ag_task *t)
{
    if (t->queued)
        return;
    t->queued = true;
    t->next = NULL;
    if (s->tasks_tail)
        s->tasks_tail->next = t;
    else
        s->tasks_head = t;
    s->tasks_tail = t;
}

void ag_shard_activity_begin(struct ag_shard *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->act.cur, sizeof s->act.cur, fmt, ap);
    va_end(ap);
    s->act.since_ns = ag_clock_mono_ns();
}

void ag_shard_activity_end(struct ag_shard *s)
{
    if (!s->act.since_ns)
        return;
    uint64_t took = ag_clock_mono_ns() - s->act.since_ns;
    s->act.since_ns = 0;
    if (took > s->act.top_ns) {
        s->act.top_ns = took;
        memcpy(s->act.top, s->act.cur, sizeof s->act.top);
    }
}

/* A turn that took longer than stall_report_ms is counted, and logged (rate-limited) with what
 * ran longest in it, so a node or a handler that holds the shard can be named. */
static void report_stall(struct ag_shard *s)
{
    uint32_t limit_ms = s->rt->loop.stall_report_ms;
    uint64_t end = ag_clock_mono_ns();
    uint64_t took = end - s->now_ns;
    if (limit_ms && took > ag_ms_to_ns(limit_ms)) {
        ag_stat_add(&s->stats, AG_STAT_LOOP_STALLS, 1);
        if (!s->act.reported_ns || end - s->act.reported_ns >= STALL_REPORT_EVERY_NS) {
            ag_log(AG_LOG_WARN,
                   "msg=\"loop turn stalled\" took_ms=%.1f stall_report_ms=%u longest=\"%s\" longest_ms=%.1f "
                   "unreported=%llu",
                   ag_ns_to_ms_f(took), limit_ms, s->act.top[0] ? s->act.top : "(unnamed)",
                   ag_ns_to_ms_f(s->act.top_ns), (unsigned long long)s->act.unreported);
            s->act.reported_ns = end;
            s->act.unreported = 0;
        } else {
            s->act.unreported++;
        }
    }
    s->act.top[0] = '\0';
    s->act.top_ns = 0;
}

/* Handles up to budget messages of one lane from every other shard. Returns false when the budget
 * ran out (more may wait). */
static bool drain_lane(struct ag_shard *s, enum ag_lane lane, unsigned budget)
{
    struct ag_runtime *rt = s->rt;
    struct ag_msg batch[INBOX_BATCH];
    unsigned total = 0;
    for (int from = 0; from < rt->nshards; from++) {
        if (from == s->id)
            continue;
        struct ag_spsc *q = lane_of(rt, from, s->id, lane);
        size_t k;
        bool took = false;
        while (total < budget && (k = ag_spsc_pop_batch(q, batch, AG_MIN(INBOX_BATCH, budget - total))) > 0) {
            for (size_t i = 0; i < k; i++) {
                ag_msg_fn fn = msg_handlers[batch[i].type];
                AG_BUG_ON(!fn);
                fn(s, &batch[i]);
            }
            ag_stat_add(&s->stats, AG_STAT_XMSG_RECEIVED, k);
            total += (unsigned)k;
            took = true;
        }
        if (took && lane == AG_LANE_DATA && ag_spsc_room_wanted(q))
            s->room_pending[from / 64] |= 1ull << (from % 64);
        if (total >= budget)
            return false;
    }
    return true;
}

static void drain_inbox(struct ag_shard *s)
{
    /* Control first: a forwarded request or a goodbye never waits behind a burst of stream pieces. */
    if (!drain_lane(s, AG_LANE_CTRL, INBOX_BUDGET))
        s->more_work = true;
    if (!drain_lane(s, AG_LANE_DATA, INBOX_DATA_BUDGET))
        s->more_work = true;
}

static void on_ctrl(struct ag_shard *s, int code)
{
    const struct ag_shard_hooks *h = &s->rt->hooks;
    if (code == CTRL_DRAIN && !s->draining) {
        s->draining = true;
        if (h->on_drain)
            h->on_drain(s);
    } else if (code == CTRL_STOP && !s->stopping) {
        s->draining = true;
        s->stopping = true;
        if (h->on_stop)
            h->on_stop(s);
    }
}

static void dispatch(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    unsigned kind = ag_ud_kind(cqe->user_data);
    switch (kind) {
    case AG_OP_NONE:
        if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -ENOENT && cqe->res != -EALREADY)
            ag_log(AG_LOG_DEBUG, "msg=\"background op failed\" error=\"%s\"", strerror(-cqe->res));
        return;
    case AG_OP_XWAKE:
        s->more_work = true; /* the inbox phase already ran this turn */
        return;
    case AG_OP_XWAKE_SENT: {
        uint32_t to = ag_ud_idx(cqe->user_data);
        ag_log(AG_LOG_WARN, "msg=\"cross-shard wake-up failed, retrying\" to=%u error=\"%s\"", to,
               strerror(-cqe->res));
        s->wake_pending[to / 64] |= 1ull << (to % 64);
        return;
    }
    case AG_OP_XROOM:
        if (s->rt->hooks.on_data_room)
            s->rt->hooks.on_data_room(s, (int)ag_ud_idx(cqe->user_data));
        return;
    case AG_OP_XROOM_SENT: {
        uint32_t to = ag_ud_idx(cqe->user_data);
        ag_log(AG_LOG_WARN, "msg=\"cross-shard room notice failed, retrying\" to=%u error=\"%s\"", to,
               strerror(-cqe->res));
        s->room_pending[to / 64] |= 1ull << (to % 64);
        return;
    }
    case AG_OP_CTRL:
        on_ctrl(s, cqe->res);
        return;
    case AG_OP_LOG:
        s->log_inflight = 0;
        ag_log__done(cqe->res);
        return;
    default:
        AG_BUG_ON(!op_handlers[kind]);
        op_handlers[kind](s, cqe);
    }
}

static void reap(struct ag_shard *s)
{
    struct io_uring_cqe *cqes[REAP_BATCH];
    unsigned total = 0;
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&s->ring, cqes, REAP_BATCH);
        if (!n)
            return;
        for (unsigned i = 0; i < n; i++)
            dispatch(s, cqes[i]);
        io_uring_cq_advance(&s->ring, n);
        total += n;
        if (total >= REAP_BUDGET) {
            s->more_work = true;
            return;
        }
    }
}

static void run_tasks(struct ag_shard *s)
{
    /* Tasks queued while running go to the next turn, so a task that re-queues itself cannot starve I/O. */
    struct ag_task *t = s->tasks_head;
    s->tasks_head = s->tasks_tail = NULL;
    unsigned n = 0;
    while (t) {
        struct ag_task *next = t->next;
        if (n++ >= TASK_BUDGET) {
            /* Put the rest back in front of whatever was queued meanwhile. */
            struct ag_task *last = t;
            while (last->next)
                last = last->next;
            last->next = s->tasks_head;
            if (!s->tasks_head)
                s->tasks_tail = last;
            s->tasks_head = t;
            break;
        }
        t->queued = false;
        t->next = NULL;
        t->fn(t);
        t = next;
    }
}

/* One MSG_RING of kind `kind` to every shard set in `pending` (cleared); a failure comes back as
 * `failed` and sets the bit again. */
static void flush_notices(struct ag_shard *s, uint64_t *pending, unsigned kind, unsigned failed)
{
    struct ag_runtime *rt = s->rt;
    for (int w = 0; w < (rt->nshards + 63) / 64; w++) {
        while (pending[w]) {
            int bit = __builtin_ctzll(pending[w]);
            pending[w] &= pending[w] - 1;
            int to = w * 64 + bit;
            struct io_uring_sqe *sqe = ag_shard_sqe(s);
            io_uring_prep_msg_ring(sqe, rt->ring_fds[to], 0, ag_ud(kind, 0, (uint32_t)s->id), 0);
            io_uring_sqe_set_data64(sqe, ag_ud(failed, 0, (uint32_t)to));
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
    }
}

static void flush_wakes(struct ag_shard *s)
{
    flush_notices(s, s->wake_pending, AG_OP_XWAKE, AG_OP_XWAKE_SENT);
    flush_notices(s, s->room_pending, AG_OP_XROOM, AG_OP_XROOM_SENT);
}

static void flush_log(struct ag_shard *s)
{
    if (s->log_inflight)
        return;
    struct ag_iov v = ag_log__take();
    if (!v.len)
        return;
    struct io_uring_sqe *sqe = ag_shard_sqe(s);
    io_uring_prep_write(sqe, 2, v.base, (unsigned)v.len, (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_LOG, 0, 0));
    s->log_inflight = 1;
}

static void submit_and_wait(struct ag_shard *s)
{
    unsigned queued = io_uring_sq_ready(&s->ring);
    int r;
    ag_stat_set(&s->stats, AG_STAT_ALLOCATIONS, ag_alloc_count()); /* everything up to the wait */
    if (s->more_work || s->tasks_head || s->stopping) {
        r = io_uring_submit(&s->ring);
        io_uring_get_events(&s->ring);
    } else {
        uint64_t next = ag_timer_next(&s->timers);
        uint64_t wait = WAIT_CAP_NS;
        if (next != UINT64_MAX)
            wait = next > s->now_ns ? AG_MIN(next - s->now_ns, WAIT_CAP_NS) : 0;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait / AG_NS_PER_SEC),
                                       .tv_nsec = (long long)(wait % AG_NS_PER_SEC)};
        struct io_uring_cqe *cqe;
        r = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
    }
    s->quiet = r == -ETIME;
    if (r >= 0 || r == -ETIME) {
        ag_stat_add(&s->stats, AG_STAT_SUBMIT_CALLS, 1);
        ag_stat_add(&s->stats, AG_STAT_SUBMITTED_SQES, queued);
    } else if (r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        ag_log(AG_LOG_ERROR, "msg=\"io_uring submit failed\" error=\"%s\"", strerror(-r));
    }
    s->now_ns = ag_clock_mono_ns();
    ag_stat_add(&s->stats, AG_STAT_LOOP_ITERATIONS, 1);
}

/* A shard whose last wait saw nothing complete gives what it freed since the last collect back to
 * the system (mimalloc keeps a thread's empty pages until that thread allocates or collects, so a
 * shard that went quiet after a burst would hold its peak for good). At most once per COLLECT_NS. */
static void collect_when_quiet(struct ag_shard *s)
{
    if (!s->quiet || s->more_work || s->tasks_head || s->now_ns - s->collect_ns < COLLECT_NS)
        return;
    if (ag_alloc_count() == s->collect_allocs)
        return;
    ag_alloc_collect();
    s->collect_ns = s->now_ns;
    s->collect_allocs = ag_alloc_count();
}

static void run_loop(struct ag_shard *s)
{
    const struct ag_shard_hooks *h = &s->rt->hooks;
    uint64_t stop_since = 0;
    s->now_ns = ag_clock_mono_ns();
    const uint32_t work_per_turn = s->rt->loop.work_per_turn;
    for (;;) {
        s->more_work = false;
        s->work_left = work_per_turn;
        drain_inbox(s);
        reap(s);
        run_tasks(s);
        /* Timers stop early once the turn's work budget is spent; the ones left are due next turn. */
        if (ag_timer_run(&s->timers, s->now_ns, TIMER_BUDGET, &s->work_left) == TIMER_BUDGET)
            s->more_work = true;
        if (h->on_flush)
            h->on_flush(s);
        report_stall(s);
        flush_wakes(s);
        flush_log(s);
        if (s->draining && (!h->is_idle || h->is_idle(s)) && !s->tasks_head)
            break;
        if (s->stopping) {
            if (!stop_since)
                stop_since = s->now_ns;
            else if (s->now_ns - stop_since > STOP_GRACE_NS)
                break;
        }
        collect_when_quiet(s);
        submit_and_wait(s);
    }
    /* Let the last log write land before its buffer goes away. */
    for (int i = 0; i < 100 && s->log_inflight; i++) {
        reap(s);
        if (!s->log_inflight)
            break;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)(10 * AG_NS_PER_MS)};
        io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
    }
    reap(s);
}

static void *shard_main(void *arg)
{
    struct ag_shard *s = arg;
    struct ag_runtime *rt = s->rt;
    tl_self = s;
    ag_log__thread_init(s->id);
    if (s->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            ag_log(AG_LOG_WARN, "msg=\"could not pin shard\" cpu=%d", s->cpu);
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    int r = io_uring_queue_init_params(RING_ENTRIES, &s->ring, &p);
    if (r < 0) {
        ag_log(AG_LOG_ERROR, "msg=\"io_uring setup failed\" error=\"%s\"", strerror(-r));
        atomic_store(&rt->start_failed, 1);
        rt->ring_fds[s->id] = -1;
    } else {
        rt->ring_fds[s->id] = s->ring.ring_fd;
    }
    pthread_barrier_wait(&rt->barrier); /* every ring exists */
    if (r == 0 && !atomic_load(&rt->start_failed) && rt->hooks.on_start && rt->hooks.on_start(s) != 0)
        atomic_store(&rt->start_failed, 1);
    pthread_barrier_wait(&rt->barrier); /* every shard started, or someone failed */
    if (!atomic_load(&rt->start_failed))
        run_loop(s);
    atomic_fetch_sub(&rt->running, 1);
    /* No ring closes while another shard may still message it. */
    pthread_barrier_wait(&rt->exit_barrier);
    if (rt->hooks.on_exit && r == 0)
        rt->hooks.on_exit(s);
    if (r == 0)
        io_uring_queue_exit(&s->ring);
    ag_timer_heap_free(&s->timers);
    ag_json_scratch_free();
    ag_log__thread_exit();
    return NULL;
}

int ag_runtime_start(struct ag_runtime *rt, const struct ag_loop_config *loop, int nshards, const int *cpus, int ncpus,
                     const struct ag_shard_hooks *hooks, void *user)
{
    memset(rt, 0, sizeof *rt);
    rt->user = user;
    rt->nshards = nshards;
    rt->loop = *loop;
    if (hooks)
        rt->hooks = *hooks;
    int r = io_uring_queue_init(64, &rt->ctrl, 0);
    if (r < 0) {
        ag_log(AG_LOG_ERROR, "msg=\"io_uring setup failed\" error=\"%s\"", strerror(-r));
        return -1;
    }
    rt->shards = ag_calloc((size_t)nshards, sizeof *rt->shards);
    rt->queues = ag_calloc((size_t)nshards * (size_t)nshards * AG_LANES, sizeof *rt->queues);
    rt->ring_fds = ag_calloc((size_t)nshards, sizeof *rt->ring_fds);
    rt->threads = ag_calloc((size_t)nshards, sizeof *rt->threads);
    for (int i = 0; i < nshards * nshards; i++) {
        ag_spsc_init(&rt->queues[i * AG_LANES + AG_LANE_CTRL], AG_XQ_CTRL_SLOTS);
        ag_spsc_init(&rt->queues[i * AG_LANES + AG_LANE_DATA], AG_XQ_DATA_SLOTS);
    }
    bool pin = ncpus >= nshards;
    for (int i = 0; i < nshards; i++) {
        struct ag_shard *s = ag_calloc(1, sizeof *s);
        s->id = i;
        s->cpu = pin ? cpus[i] : -1;
        s->rt = rt;
        s->wake_pending = ag_calloc((size_t)(nshards + 63) / 64, sizeof *s->wake_pending);
        s->room_pending = ag_calloc((size_t)(nshards + 63) / 64, sizeof *s->room_pending);
        rt->shards[i] = s;
    }
    pthread_barrier_init(&rt->barrier, NULL, (unsigned)nshards + 1);
    pthread_barrier_init(&rt->exit_barrier, NULL, (unsigned)nshards);
    atomic_store(&rt->running, nshards);
    for (int i = 0; i < nshards; i++) {
        if (pthread_create(&rt->threads[i], NULL, shard_main, rt->shards[i]) != 0) {
            ag_log(AG_LOG_ERROR, "msg=\"cannot create shard thread\"");
            abort(); /* the barrier would never complete; nothing sensible to unwind at boot */
        }
    }
    pthread_barrier_wait(&rt->barrier);
    pthread_barrier_wait(&rt->barrier);
    if (atomic_load(&rt->start_failed)) {
        ag_runtime_join(rt);
        return -1;
    }
    return 0;
}

static void send_ctrl(struct ag_runtime *rt, int code)
{
    int sent = 0;
    for (int i = 0; i < rt->nshards; i++) {
        if (rt->ring_fds[i] < 0)
            continue;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&rt->ctrl);
        if (!sqe) {
            io_uring_submit(&rt->ctrl);
            sqe = io_uring_get_sqe(&rt->ctrl);
        }
        io_uring_prep_msg_ring(sqe, rt->ring_fds[i], (unsigned)code, ag_ud(AG_OP_CTRL, 0, 0), 0);
        sent++;
    }
    io_uring_submit_and_wait(&rt->ctrl, (unsigned)sent);
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&rt->ctrl, head, cqe)
    {
        if (cqe->res < 0)
            ag_log(AG_LOG_WARN, "msg=\"control message failed\" error=\"%s\"", strerror(-cqe->res));
        n++;
    }
    io_uring_cq_advance(&rt->ctrl, n);
}

void ag_runtime_drain(struct ag_runtime *rt)
{
    atomic_store(&rt->drain_requested, true);
    send_ctrl(rt, CTRL_DRAIN);
}

void ag_runtime_stop(struct ag_runtime *rt)
{
    send_ctrl(rt, CTRL_STOP);
}

void ag_runtime_join(struct ag_runtime *rt)
{
    for (int i = 0; i < rt->nshards; i++)
        pthread_join(rt->threads[i], NULL);
    for (int i = 0; i < rt->nshards * rt->nshards * AG_LANES; i++)
        ag_spsc_destroy(&rt->queues[i]);
    for (int i = 0; i < rt->nshards; i++) {
        ag_free(rt->shards[i]->wake_pending);
        ag_free(rt->shards[i]->room_pending);
        ag_free(rt->shards[i]);
    }
    pthread_barrier_destroy(&rt->barrier);
    pthread_barrier_destroy(&rt->exit_barrier);
    io_uring_queue_exit(&rt->ctrl);
    ag_free(rt->shards);
    ag_free(rt->queues);
    ag_free(rt->ring_fds);
    ag_free(rt->threads);
    rt->shards = NULL;
}
