#include "runtime/tlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/jsontext.h"
#include "core/log.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "persist/pg.h"
#include "persist/pgargs.h"
#include "runtime/stats.h"
#include "runtime/tlog_internal.h"

/* Idle log entries (no run, no subscription, nothing to write) kept per shard for their seq; each holds
 * sizeof(struct tlog) (under 300 bytes) and no buffer. One idle for events.idle_keep_ms leaves memory
 * (the thread's next run or subscription reads its seq from Postgres in a statement it sends anyway), at
 * most IDLE_EXPIRE_BATCH per loop turn, so that a quiet server holds nothing for its threads. */
#define IDLE_MAX 4096
#define IDLE_EXPIRE_BATCH 256
#define RETRY_NS 500000000ull

static _Thread_local struct tlog_shard *ts;

struct tlog_shard *ag_tlog__shard(void)
{
    return ts;
}

static void tev_clear(struct tlog *l, struct tev *e)
{
    l->ev_bytes -= e->bytes;
    ag_free(e->custom);
    json_decref(e->ns);
    ag_obuf_unref(e->frame);
}

/* --- log entries --- */

/* What l holds in memory now. */
static size_t log_bytes(const struct tlog *l)
{
    return sizeof *l + (size_t)l->cap * sizeof *l->ev + l->ev_bytes + l->pend.cap + l->sent.cap;
}

/* Brings the shard's total up to date with l after it changed. */
static void log_account(struct tlog *l)
{
    size_t now = log_bytes(l);
    if (now > l->acct)
        ag_stat_add(&ts->s->stats, AG_STAT_EVENT_LOG_BYTES, now - l->acct);
    else
        ag_stat_sub(&ts->s->stats, AG_STAT_EVENT_LOG_BYTES, l->acct - now);
    ts->bytes += now - l->acct;
    l->acct = now;
}

static void idle_unlink(struct tlog *l)
{
    if (!l->idle)
        return;
    if (l->iprev)
        l->iprev->inext = l->inext;
    else
        ts->idle_head = l->inext;
    if (l->inext)
        l->inext->iprev = l->iprev;
    else
        ts->idle_tail = l->iprev;
    l->inext = l->iprev = NULL;
    l->idle = false;
    ts->nidle--;
}

static void log_free(struct tlog *l)
{
    idle_unlink(l);
    ag_strmap_del(&ts->logs, l->id, strlen(l->id));
    for (uint32_t i = l->start; i < l->n; i++)
        tev_clear(l, &l->ev[i]);
    ag_free(l->ev);
    ag_buf_free(&l->pend);
    ag_buf_free(&l->sent);
    AG_BUG_ON(l->dirty || l->inflight);
    ag_stat_sub(&ts->s->stats, AG_STAT_EVENT_LOG_BYTES, l->acct);
    ts->bytes -= l->acct;
    ag_free(l);
}

struct tlog *ag_tlog__log_get(const char *id, bool create)
{
    struct tlog *l = ag_strmap_get(&ts->logs, id, strlen(id));
    if (l || !create) {
        if (l)
            idle_unlink(l);
        return l;
    }
    l = ag_calloc(1, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    ag_strmap_put(&ts->logs, l->id, strlen(l->id), l);
    log_account(l);
    return l;
}

/* Drops the events that need not stay in memory: beyond memory_per_thread, only ones committed and
 * delivered leave. */
static void trim_memory(struct tlog *l, uint32_t keep)
{
    while (l->n - l->start > keep) {
        struct tev *e = &l->ev[l->start];
        if (e->seq > l->flushed || e->seq > l->delivered)
            break;
        l->evicted = e->seq;
        tev_clear(l, e);
        l->start++;
    }
    if (l->start == l->n) {
        l->start = l->n = 0;
    } else if (l->start > l->n / 2 && l->start > 64) {
        memmove(l->ev, l->ev + l->start, (l->n - l->start) * sizeof *l->ev);
        l->n -= l->start;
        l->start = 0;
    }
    log_account(l);
}

/* How many recent events a busy log keeps: events.memory_per_thread, none while the shard's logs
 * hold more than events.memory_bytes_per_shard. */
static uint32_t keep_recent(void)
{
    return ts->bytes > ts->lim->memory_bytes_per_shard ? 0 : ts->lim->memory_per_thread;
}

/* Trims l after a write or a release: its recent events as keep_recent says, and its write buffer
 * too while the shard is over its budget. */
static void trim_busy(struct tlog *l)
{
    trim_memory(l, keep_recent());
    if (ts->bytes > ts->lim->memory_bytes_per_shard && !l->inflight && !l->sent.len) {
        ag_buf_free(&l->sent);
        log_account(l);
    }
}

/* The oldest idle entries whose time is up leave memory. */
static void on_idle_expire(struct ag_timer *tm)
{
    (void)tm;
    uint64_t now = ts->s->now_ns, keep = ag_ms_to_ns(ts->lim->idle_keep_ms);
    for (unsigned n = 0; ts->idle_head && ts->idle_head->idle_ns + keep <= now; n++) {
        if (n == IDLE_EXPIRE_BATCH) {
            ag_timer_arm(&ts->s->timers, &ts->idle_expire, now + 1); /* the rest next turn */
            return;
        }
        log_free(ts->idle_head);
    }
    if (ts->idle_head)
        ag_timer_arm(&ts->s->timers, &ts->idle_expire, ts->idle_head->idle_ns + keep);
}

/* Called whenever something that keeps l busy ended: an idle entry keeps only its seq, and the
 * oldest idle ones go beyond IDLE_MAX or while the shard is over events.memory_bytes_per_shard
 * (their seq is read from Postgres again when needed). l itself may be freed. */
void ag_tlog__settle(struct tlog *l)
{
    log_account(l);
    if (l->deleted) {
        if (!l->inflight && !l->subs && !l->dirty && !l->write_holds) log_free(l);
        return;
    }
    if (l->runs || l->subs || l->inflight || l->write_holds || l->pend.len || l->dirty || l->idle) return;
    trim_memory(l, 0);
    /* Its buffers go as well: they are sized for its busiest moment (a long stream's events), and
     * Postgres holds what a replay needs. */
    if (l->n == l->start) {
        ag_free(l->ev);
        l->ev = NULL;
        l->cap = 0;
    }
    ag_buf_free(&l->pend);
    ag_buf_free(&l->sent);
    log_account(l);
    if (!l->known) {
        if (l->n == l->start)
            log_free(l);
        return;
    }
    l->idle = true;
    l->idle_ns = ts->s->now_ns;
    if (!ag_timer_armed(&ts->idle_expire))
        ag_timer_arm(&ts->s->timers, &ts->idle_expire,
                     l->idle_ns + ag_ms_to_ns(ts->lim->idle_keep_ms));
    l->iprev = ts->idle_tail;
    l->inext = NULL;
    if (ts->idle_tail)
        ts->idle_tail->inext = l;
    else
        ts->idle_head = l;
    ts->idle_tail = l;
    ts->nidle++;
    while (ts->idle_head && (ts->nidle > IDLE_MAX || ts->bytes > ts->lim->memory_bytes_per_shard))
        log_free(ts->idle_head);
}

/* --- writing: one statement per shard for every log with something to write --- */

static void shard_flush_task(struct ag_task *tk);

/* l has events to write (or a reservation to extend): it joins the next statement. */
static void schedule_flush(struct tlog *l)
{
    if (!l->dirty) {
        l->dirty = true;
        l->dnext = NULL;
        if (ts->dirty_tail)
            ts->dirty_tail->dnext = l;
        else
            ts->dirty_head = l;
        ts->dirty_tail = l;
    }
    if (ts->inflight || ts->retry_armed || ts->flush_task.queued)
        return;
    ts->flush_task.fn = shard_flush_task;
    ag_shard_defer(ts->s, &ts->flush_task);
}

static void retry_flush(struct ag_timer *tm)
{
    (void)tm;
    ts->retry_armed = false;
    if (ts->dirty_head && !ts->flush_task.queued) {
        ts->flush_task.fn = shard_flush_task;
        ag_shard_defer(ts->s, &ts->flush_task);
    }
}

static void arm_retry(void)
{
    ts->retry_armed = true;
    ts->retry.cb = retry_flush;
    ag_timer_arm(&ts->s->timers, &ts->retry, ts->s->now_ns + RETRY_NS);
}

/* A write that may be retried failed: what it carried goes back in front of what came since. */
static void put_back(struct tlog *l)
{
    if (l->pend.len) {
        ag_buf_puts(&l->sent, ",");
        ag_buf_append(&l->sent, l->pend.base, l->pend.len);
    } else {
        l->pend_max = l->inflight_max;
    }
    if (l->sent.len)
        l->pend_first = l->sent_first;
    struct ag_buf t = l->pend;
    l->pend = l->sent;
    l->sent = t;
    l->sent.len = 0;
}

/* l's unwritten events go into a write: pend becomes sent, and pend starts over. */
static void pend_to_sent(struct tlog *l)
{
    l->inflight = true;
    l->inflight_max = l->pend_max;
    l->sent_first = l->pend_first;
    struct ag_buf t = l->sent;
    l->sent = l->pend;
    l->pend = t;
    l->pend.len = 0;
}

/* The write carrying l's sent events ended: written (or lost for good: memory may let them go either
 * way), or they go back in front of pend to be written again. */
static void sent_ended(struct tlog *l, bool written)
{
    l->inflight = false;
    if (l->deleted) {
        l->sent.len = 0;
    } else if (written) {
        if (l->inflight_max > l->flushed) l->flushed = l->inflight_max;
        l->sent.len = 0;
        ag_tlog__deliver(l);
        trim_busy(l);
    } else {
        put_back(l);
    }
}

/* The seq at or below which l's older batches go with the write of pend (retention), or 0. */
static uint64_t pend_trim_to(const struct tlog *l)
{
    uint32_t retain = ts->lim->retain_per_thread;
    return l->pend.len && l->pend_max > retain ? l->pend_max - retain : 0;
}

/* open, p[0..n), close, as a statement parameter in a. */
static const char *param_wrapped(struct ag_pg_args *a, char open, const char *p, size_t n, char close)
{
    char *w = ag_pg_args_alloc(a, n + 2);
    w[0] = open;
    if (n) memcpy(w + 1, p, n);
    w[n + 1] = close;
    return w;
}

static void on_flushed(struct ag_pg_query *q, PGresult *res)
{
    ts->inflight = false;
    ag_pg_args_reset(&ts->strs);
    bool ok = q->status == AG_PG_OK;
    bool lost = !ok && (q->status == AG_PG_SQL_ERROR || ts->s->stopping);
    if (!ok)
        ag_log(lost ? AG_LOG_ERROR : AG_LOG_WARN, "msg=\"v2 events %s\" threads=%zu error=\"%s\"",
               lost ? "not written" : "not written yet", ts->nbatch, q->error ? q->error : "stopping");
    int rows = ok ? PQntuples(res) : 0;
    for (size_t i = 0; i < ts->nbatch; i++) {
        struct tlog *l = ts->batch[i];
        if (ok && !l->deleted && (int)i < rows && !PQgetisnull(res, (int)i, 1)) {
            uint64_t last = strtoull(PQgetvalue(res, (int)i, 1), NULL, 10);
            if (last > l->reserved) l->reserved = last;
        }
        sent_ended(l, ok || lost);
    }
    if (!ok && !lost)
        arm_retry();
    /* What came meanwhile (and what must be written again) goes next; then idle logs settle. */
    for (size_t i = 0; i < ts->nbatch; i++) {
        struct tlog *l = ts->batch[i];
        if (!l->deleted && (l->pend.len || l->tail > l->reserved))
            schedule_flush(l);
    }
    if (ts->dirty_head && !ts->retry_armed && !ts->flush_task.queued) {
        ts->flush_task.fn = shard_flush_task;
        ag_shard_defer(ts->s, &ts->flush_task);
    }
    size_t n = ts->nbatch;
    ts->nbatch = 0;
    for (size_t i = 0; i < n; i++)
        ag_tlog__settle(ts->batch[i]);
}

/* Appends "[" s[0..n) "]" to b as an element of a Postgres array literal (quoted, \ and " escaped). */
static void array_batch(struct ag_buf *b, const char *s, size_t n)
{
    ag_buf_append(b, "\"[", 2);
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\') {
            ag_buf_append(b, s + from, i - from);
            ag_buf_append(b, "\\", 1);
            from = i;
        }
    ag_buf_append(b, s + from, n - from);
    ag_buf_append(b, "]\"", 2);
}

/* What the shard's batch buffer may keep between writes (beyond, it is freed after each). */
#define BATCH_BUF_KEEP (1u << 20)

static void shard_flush_task(struct ag_task *tk)
{
    (void)tk;
    if (ts->inflight || ts->retry_armed)
        return;
    struct ag_buf ids = {0}, firsts = {0}, lasts = {0}, reserves = {0}, trims = {0};
    struct ag_buf *events = &ts->events_buf;
    events->len = 0;
    ts->nbatch = 0;
    uint64_t one_reserve = 0, one_trim = 0; /* the last log's, for TEV_APPEND1 */
    bool any_trim = false;
    struct tlog *later_head = NULL, *later_tail = NULL; /* taken by another statement: they wait for it */
    for (struct tlog *l = ts->dirty_head, *next; l; l = next) {
        next = l->dnext;
        l->dirty = false;
        l->dnext = NULL;
        /* Reserve ahead while a run is on: events past the reservation wait for this write. */
        uint64_t want = l->runs && l->tail + AG_TLOG_RESERVE / 2 > l->reserved ? l->tail + AG_TLOG_RESERVE : 0;
        if (l->deleted || (!l->pend.len && !want && l->tail <= l->reserved)) {
            ag_tlog__settle(l);
            continue;
        }
        if (l->inflight || l->write_holds) {
            l->dirty = true;
            if (later_tail)
                later_tail->dnext = l;
            else
                later_head = l;
            later_tail = l;
            continue;
        }
        if (ts->nbatch == ts->batch_cap) {
            ts->batch_cap = ts->batch_cap ? ts->batch_cap * 2 : 64;
            ts->batch = ag_realloc(ts->batch, ts->batch_cap * sizeof *ts->batch);
        }
        ts->batch[ts->nbatch++] = l;
        const char *sep = ts->nbatch > 1 ? "," : "";
        ag_buf_printf(&ids, "%s\"%s\"", sep, l->id);
        if (l->pend.len) {
            ag_buf_printf(&firsts, "%s%" PRIu64, sep, l->pend_first);
            ag_buf_printf(&lasts, "%s%" PRIu64, sep, l->pend_max);
            ag_buf_puts(events, sep);
            array_batch(events, l->pend.base, l->pend.len);
        } else {
            ag_buf_printf(&firsts, "%sNULL", sep);
            ag_buf_printf(&lasts, "%sNULL", sep);
            ag_buf_printf(events, "%sNULL", sep);
        }
        one_reserve = AG_MAX(AG_MAX(l->pend_max, want), l->tail);
        ag_buf_printf(&reserves, "%s%" PRIu64, sep, one_reserve);
        one_trim = pend_trim_to(l);
        any_trim |= one_trim != 0;
        if (one_trim)
            ag_buf_printf(&trims, "%s%" PRIu64, sep, one_trim);
        else
            ag_buf_printf(&trims, "%sNULL", sep);
        pend_to_sent(l);
    }
    ts->dirty_head = later_head;
    ts->dirty_tail = later_tail;
    if (!ts->nbatch) {
        ag_buf_free(&ids), ag_buf_free(&firsts), ag_buf_free(&lasts);
        ag_buf_free(&reserves), ag_buf_free(&trims);
        return;
    }
    struct ag_buf *cols[] = {&ids, &firsts, &lasts, events, &reserves, &trims};
    memset(&ts->q, 0, sizeof ts->q);
    ts->q.kind = AG_PG_WRITE;
    ts->q.cb = on_flushed;
    ts->q.nparams = 6;
    if (ts->nbatch == 1) {
        /* One thread (a quiet shard): the statement Postgres does not plan again every time. */
        struct tlog *l = ts->batch[0];
        struct ag_pg_args *st = &ts->strs;
        const char **p = ts->q.params;
        ts->q.stmt = AG_SQL_TEV_APPEND1;
        p[0] = l->id;
        if (l->sent.len) {
            p[1] = ag_pg_args_printf(st, "%" PRIu64, l->sent_first);
            p[2] = ag_pg_args_printf(st, "%" PRIu64, l->inflight_max);
            p[3] = param_wrapped(st, '[', l->sent.base, l->sent.len, ']');
        }
        p[4] = ag_pg_args_printf(st, "%" PRIu64, one_reserve);
        p[5] = one_trim ? ag_pg_args_printf(st, "%" PRIu64, one_trim) : NULL;
    } else {
        ts->q.stmt = any_trim ? AG_SQL_TEV_APPEND_TRIM : AG_SQL_TEV_APPEND;
        for (int c = 0; c < 6; c++)
            ts->q.params[c] = param_wrapped(&ts->strs, '{', cols[c]->base, cols[c]->len, '}');
    }
    for (int c = 0; c < 6; c++)
        if (cols[c] != events) ag_buf_free(cols[c]);
    if (events->cap > BATCH_BUF_KEEP) ag_buf_free(events);
    if (ag_pg_submit(ts->s, &ts->q) == 0) {
        ts->inflight = true;
        return;
    }
    /* The database queue is full or there is no database: try again a little later. */
    ag_pg_args_reset(&ts->strs);
    for (size_t i = 0; i < ts->nbatch; i++) {
        struct tlog *l = ts->batch[i];
        l->inflight = false;
        put_back(l);
        schedule_flush(l);
    }
    ts->nbatch = 0;
    arm_retry();
}

/* --- the producer side --- */

const char *ag_tlog_reservation(const char *thread_id, char buf[24])
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    if (!l || !l->known) {
        if (l)
            ag_tlog__settle(l);
        return NULL;
    }
    snprintf(buf, 24, "%" PRIu64, l->tail + AG_TLOG_RESERVE);
    ag_tlog__settle(l);
    return buf;
}

/* The thread's seq becomes known here: tail is the last seq handed out before (none of those is
 * in memory: they are in Postgres). */
static void log_learn(struct tlog *l, uint64_t tail)
{
    if (tail > l->tail)
        l->tail = tail;
    if (l->delivered < l->tail)
        l->delivered = l->tail;
    if (l->flushed < l->tail)
        l->flushed = l->tail;
    if (l->evicted < l->tail)
        l->evicted = l->tail;
    l->known = true;
}

void ag_tlog_reserved(const char *thread_id, uint64_t last_seq)
{
    struct tlog *l = ag_tlog__log_get(thread_id, true);
    if (!l->known) /* not known here: the stored value was just raised by a whole block */
        log_learn(l, last_seq >= AG_TLOG_RESERVE ? last_seq - AG_TLOG_RESERVE : 0);
    if (last_seq > l->reserved)
        l->reserved = last_seq;
    ag_tlog__deliver(l);
    ag_tlog__settle(l);
}

void ag_tlog_stored(const char *thread_id, uint64_t last_seq)
{
    struct tlog *l = ag_tlog__log_get(thread_id, true);
    if (!l->known) {
        /* No seq past the stored value was ever handed out (events wait for their reservation). */
        log_learn(l, last_seq);
        if (last_seq > l->reserved)
            l->reserved = last_seq;
    }
    ag_tlog__settle(l);
}

void ag_tlog_run_begin(const char *thread_id)
{
    struct tlog *l = ag_tlog__log_get(thread_id, true);
    l->runs++;
}

void ag_tlog_run_end(const char *thread_id)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    if (!l)
        return;
    if (l->runs)
        l->runs--;
    l->last_event_ns = ts->s->now_ns;
    ag_tlog__settle(l);
}

uint64_t ag_tlog_last_seq(const char *thread_id)
{
    struct tlog *l = ag_strmap_get(&ts->logs, thread_id, strlen(thread_id));
    return l && l->known ? l->tail : 0;
}

/* ag_tlog_append_text, with what Postgres keeps instead of data (stored; NULL: data itself). */
static uint64_t append(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                       const char *ns_text, const char *data, size_t dlen, const json_t *stored, const char *custom,
                       bool hold)
{
    struct tlog *l = ag_tlog__log_get(thread_id, true);
    if (!l->known || l->deleted) {
        ag_log(AG_LOG_ERROR, "thread=%s msg=\"v2 event dropped: the thread's seq is not known\" method=%s", thread_id,
               method);
        ag_tlog__settle(l);
        return 0;
    }
    uint64_t seq = ++l->tail;
    uint64_t ts_ms = ag_us_to_ms(ag_clock_real_us());
    const char *nstr = ns_text ? ns_text : "[]";
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ev = ag_realloc(l->ev, l->cap * sizeof *l->ev);
    }
    struct tev *e = &l->ev[l->n++];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->held = hold;
    e->chan = ag_tlog__method_chan(method);
    if (e->chan == AG_TCH_CUSTOM && custom) e->custom = ag_strdup(custom);
    e->ns = ns && json_array_size(ns) ? json_incref((json_t *)ns) : NULL;
    e->frame = ts->codec->event(seq, method, nstr, data, dlen, ts_ms);
    e->bytes = (uint32_t)(sizeof *e->frame + e->frame->cap + (e->custom ? strlen(e->custom) + 1 : 0));
    l->ev_bytes += e->bytes;
    /* For Postgres: [seq, run, method, ns, data, ts]. */
    if (l->pend.len)
        ag_buf_puts(&l->pend, ",");
    else
        l->pend_first = seq;
    ag_buf_printf(&l->pend, "[%" PRIu64 ",\"%s\",\"%s\",%s,", seq, run_id ? run_id : "", method, nstr);
    if (!stored)
        ag_buf_append(&l->pend, data, dlen);
    else if (ag_json_append(&l->pend, stored, JSON_COMPACT | JSON_ENCODE_ANY) < 0)
        ag_buf_puts(&l->pend, "null");
    ag_buf_printf(&l->pend, ",%" PRIu64 "]", ts_ms);
    l->pend_max = seq;
    l->last_event_ns = ts->s->now_ns;
    ag_tlog__deliver(l);
    log_account(l);
    schedule_flush(l);
    return seq;
}

uint64_t ag_tlog_append_text(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                             const char *ns_text, const char *data, size_t dlen, const char *custom, bool hold)
{
    return append(thread_id, run_id, method, ns, ns_text, data, dlen, NULL, custom, hold);
}

uint64_t ag_tlog_append(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                        const json_t *data, const json_t *stored, bool hold)
{
    char *n = ns && json_array_size(ns) ? ag_json_text(ns, JSON_COMPACT, NULL) : NULL;
    size_t dlen;
    const char *d = ag_json_scratch_text(data, JSON_COMPACT | JSON_ENCODE_ANY, &dlen); /* copied at once */
    if (!d) d = "null", dlen = 4;
    const char *custom = json_string_value(json_object_get(data, "name"));
    uint64_t seq = append(thread_id, run_id, method, ns, n, d, dlen, stored, custom, hold);
    ag_free(n);
    return seq;
}

void ag_tlog_release(const char *thread_id, uint64_t seq)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    if (!l)
        return;
    for (uint32_t i = l->start; i < l->n; i++)
        if (l->ev[i].seq == seq)
            l->ev[i].held = false;
    ag_tlog__deliver(l);
    trim_busy(l);
    ag_tlog__settle(l);
}

bool ag_tlog_take(const char *thread_id, struct ag_pg_args *a, struct ag_tlog_taken *out)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    if (!l) return false;
    if (!l->known || l->deleted || l->inflight || !l->pend.len) {
        ag_tlog__settle(l);
        return false;
    }
    uint64_t trim = pend_trim_to(l);
    out->first_seq = ag_pg_args_printf(a, "%" PRIu64, l->pend_first);
    out->last_seq = ag_pg_args_printf(a, "%" PRIu64, l->pend_max);
    out->batch = param_wrapped(a, '[', l->pend.base, l->pend.len, ']');
    out->trim_to = trim ? ag_pg_args_printf(a, "%" PRIu64, trim) : NULL;
    pend_to_sent(l); /* as in the log's own write */
    ag_tlog__settle(l);
    return true;
}

void ag_tlog_taken_done(const char *thread_id, enum ag_tlog_taken_end how)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    AG_BUG_ON(!l || !l->inflight); /* a log in a write stays in memory */
    sent_ended(l, how != AG_TLOG_TAKEN_RETRY);
    if (!l->deleted && (l->pend.len || l->tail > l->reserved || l->dirty)) schedule_flush(l);
    ag_tlog__settle(l);
}

void ag_tlog_hold_writes(const char *thread_id)
{
    ag_tlog__log_get(thread_id, true)->write_holds++;
}

void ag_tlog_release_writes(const char *thread_id)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    AG_BUG_ON(!l || !l->write_holds); /* a held log stays in memory (it is dirty or has a run) */
    if (--l->write_holds == 0 && !l->deleted && (l->pend.len || l->dirty)) schedule_flush(l);
    ag_tlog__settle(l);
}

void ag_tlog_thread_deleted(const char *thread_id)
{
    struct tlog *l = ag_tlog__log_get(thread_id, false);
    if (!l)
        return;
    l->deleted = true;
    l->pend.len = 0;
    struct ag_tlog_sub *x = l->subs;
    while (x) {
        struct ag_tlog_sub *next = x->next;
        ag_tlog__sub_end(x, AG_TLOG_END_DELETED);
        x = next;
    }
    if (ag_strmap_get(&ts->logs, thread_id, strlen(thread_id)) == l)
        ag_tlog__settle(l); /* a log still in a write is freed when the write is done */
}

/* --- shard set-up --- */

void ag_tlog_shard_init(struct ag_shard *s, const struct ag_tlog_limits *lim, const struct ag_tlog_codec *codec)
{
    ts = ag_calloc(1, sizeof *ts);
    ts->s = s;
    ts->lim = lim;
    ts->codec = codec;
    ag_timer_init(&ts->idle_expire, on_idle_expire);
}

bool ag_tlog_shard_idle(struct ag_shard *s)
{
    (void)s;
    if (!ts)
        return true;
    /* The subscriptions still open, collected first: ending one may free its log (and move map slots). */
    struct ag_tlog_sub **open = NULL;
    size_t n = 0, cap = 0;
    bool reading = false, unwritten = false;
    struct ag_strmap *m = &ts->logs;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct tlog *l = m->slots[i].key ? m->slots[i].val : NULL;
        /* Events not written yet go first (unless the database is away: the shutdown deadline rules). */
        if (l && l->pend.len && !ts->retry_armed && !l->deleted)
            unwritten = true;
        for (struct ag_tlog_sub *x = l ? l->subs : NULL; x; x = x->next) {
            reading |= x->reading;
            if (x->gone)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                open = ag_realloc(open, cap * sizeof *open);
            }
            open[n++] = x;
        }
    }
    for (size_t i = 0; i < n; i++)
        ag_tlog__sub_end(open[i], AG_TLOG_END_SHUTDOWN);
    ag_free(open);
    return !ts->inflight && !reading && !unwritten;
}

void ag_tlog_shard_exit(struct ag_shard *s)
{
    (void)s;
    if (!ts)
        return;
    struct ag_strmap *m = &ts->logs;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct tlog *l = m->slots[i].key ? m->slots[i].val : NULL;
        if (!l)
            continue;
        /* A statement still held by the database layer keeps its memory (only a forced exit leaves one). */
        bool held = l->inflight || l->dirty;
        for (struct ag_tlog_sub *x = l->subs, *next; x; x = next) {
            next = x->next;
            if (x->reading)
                held = true;
            else
                ag_tlog__sub_free(x);
        }
        if (held)
            continue;
        for (uint32_t k = l->start; k < l->n; k++)
            tev_clear(l, &l->ev[k]);
        ag_free(l->ev);
        ag_buf_free(&l->pend);
        ag_buf_free(&l->sent);
        ag_free(l);
    }
    ag_strmap_free(&ts->logs);
    ag_timer_cancel(&ts->s->timers, &ts->retry);
    ag_timer_cancel(&ts->s->timers, &ts->idle_expire);
    if (ts->inflight || ts->flush_task.queued)
        return; /* held by the database layer or the task queue (only a forced exit leaves one) */
    ag_pg_args_reset(&ts->strs);
    ag_free(ts->batch);
    ag_buf_free(&ts->events_buf);
    ag_free(ts);
    ts = NULL;
}
