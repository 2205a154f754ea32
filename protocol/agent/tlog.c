#include "protocol/agent/tlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "persist/pg.h"
#include "protocol/dbq.h"
#include "protocol/http.h"

#define OWNER "anonymous"
#define SSE_HEARTBEAT ": heartbeat\r\n\r\n"
/* Batches read from Postgres per replay statement. */
#define PAGE 64
/* Idle log entries (no run, no stream, nothing to write) kept per shard for their seq; each holds
 * sizeof(struct tlog) (under 300 bytes) and no buffer. One idle for events.idle_keep_ms leaves memory
 * (the thread's next run or stream reads its seq from Postgres in a statement it sends anyway), at
 * most IDLE_EXPIRE_BATCH per loop turn, so that a quiet server holds nothing for its threads. */
#define IDLE_MAX 4096
#define IDLE_EXPIRE_BATCH 256
#define RETRY_NS 500000000ull

/* One event in memory, framed once. */
struct tev {
    uint64_t seq;
    unsigned chan;
    bool held;
    uint32_t bytes; /* what it holds in memory (its frame, its custom name) */
    char *custom;  /* data.name of a custom event, or NULL */
    json_t *ns;    /* array of strings (shared with the producer: never modified), NULL at the root */
    struct ag_obuf *frame;
};

struct tsub;

/* A thread's log on this shard. */
struct tlog {
    char id[37];
    bool known;          /* tail is the thread's real last seq */
    uint64_t tail;       /* last seq handed out */
    uint64_t reserved;   /* seqs up to this are covered by a committed last_seq */
    uint64_t delivered;  /* events up to this went to the live streams */
    uint64_t evicted;    /* events up to this left memory (they are in Postgres) */
    uint64_t flushed;    /* events up to this are committed */
    uint64_t last_event_ns;
    unsigned runs;
    /* Recent events, ev[start..n), holding ev_bytes. */
    struct tev *ev;
    uint32_t start, n, cap;
    size_t ev_bytes;
    size_t acct; /* the bytes of this entry counted in the shard's total (log_account) */
    /* Events not submitted yet: "[seq,run,method,ns,data,ts]" joined by commas. */
    struct ag_buf pend;
    uint64_t pend_first, pend_max; /* seqs of its first and last event */
    struct ag_buf sent; /* what the write in flight carries (put back in front of pend if it must be retried) */
    uint64_t sent_first;
    /* Writing: dirty = queued for the shard's next statement, inflight = in the one in flight. */
    bool dirty, inflight, deleted;
    struct tlog *dnext;
    uint64_t inflight_max;
    struct tsub *subs;
    struct tlog *inext, *iprev; /* the idle list */
    bool idle;
    uint64_t idle_ns; /* when it joined the idle list */
};

struct tsub {
    struct tsub *next;
    struct tlog *l;
    struct ag_req *r;
    struct ag_tlog_filter f;
    uint64_t cursor;      /* last seq considered */
    uint64_t since;
    bool live, reading, started, gone;
    uint64_t opened_ns;
    struct ag_pg_query q;
    struct ag_pg_args strs;
    struct ag_timer idle;
};

struct tlog_shard {
    struct ag_shard *s;
    const struct ag_config *cfg;
    struct ag_strmap logs;
    struct tlog *idle_head, *idle_tail; /* oldest first */
    uint32_t nidle;
    struct ag_timer idle_expire; /* armed while the idle list is not empty */
    size_t bytes; /* what every log of the shard holds (AG_STAT_EVENT_LOG_BYTES) */
    /* The shard's one event write: the logs it carries, those waiting for the next one. */
    struct ag_pg_query q;
    struct ag_pg_args strs;
    bool inflight, retry_armed;
    struct tlog **batch;
    size_t nbatch, batch_cap;
    struct tlog *dirty_head, *dirty_tail;
    struct ag_task flush_task;
    struct ag_timer retry;
};

static _Thread_local struct tlog_shard *ts;

/* --- filters --- */

static const struct {
    const char *name;
    unsigned bit;
} chans[] = {
    {"values", AG_TCH_VALUES},       {"updates", AG_TCH_UPDATES},
    {"messages", AG_TCH_MESSAGES},   {"tools", AG_TCH_TOOLS},
    {"lifecycle", AG_TCH_LIFECYCLE}, {"input", AG_TCH_INPUT},
    {"checkpoints", AG_TCH_CHECKPOINTS}, {"tasks", AG_TCH_TASKS},
    {"custom", AG_TCH_CUSTOM},
};

unsigned ag_tlog_channel_bit(const char *name)
{
    if (!strncmp(name, "custom:", 7))
        return name[7] ? AG_TCH_CUSTOM : 0;
    for (size_t i = 0; i < AG_ARRAY_LEN(chans); i++)
        if (!strcmp(chans[i].name, name))
            return chans[i].bit;
    return 0;
}

/* The channel of an envelope method. */
static unsigned method_chan(const char *method)
{
    if (!strcmp(method, "input.requested"))
        return AG_TCH_INPUT;
    return ag_tlog_channel_bit(method);
}

void ag_tlog_filter_clear(struct ag_tlog_filter *f)
{
    json_decref(f->custom_names);
    json_decref(f->namespaces);
    memset(f, 0, sizeof *f);
}

/* A prefix segment matches a namespace segment literally or, when it has no ':', the segment's part
 * before its ':' ("researcher" matches "researcher:9c1e..."). */
static bool segment_matches(const char *p, const char *seg)
{
    if (!strcmp(p, seg))
        return true;
    if (strchr(p, ':'))
        return false;
    size_t n = strlen(p);
    return !strncmp(seg, p, n) && seg[n] == ':';
}

static bool passes(const struct ag_tlog_filter *f, const struct tev *e)
{
    if (!(f->channels & e->chan)) {
        bool named = false;
        if (e->chan == AG_TCH_CUSTOM && e->custom) {
            size_t i;
            json_t *v;
            json_array_foreach(f->custom_names, i, v) if (!strcmp(json_string_value(v), e->custom)) named = true;
        }
        if (!named)
            return false;
    }
    size_t depth = json_array_size(e->ns);
    if (depth == 0)
        return true; /* the root passes namespace and depth filters */
    if (f->depth >= 0 && depth > (size_t)f->depth)
        return false;
    if (!f->namespaces)
        return true;
    size_t i;
    json_t *prefix;
    json_array_foreach(f->namespaces, i, prefix) {
        size_t n = json_array_size(prefix);
        if (n > depth)
            continue;
        bool ok = true;
        for (size_t k = 0; k < n && ok; k++)
            ok = segment_matches(json_string_value(json_array_get(prefix, k)),
                                 json_string_value(json_array_get(e->ns, k)));
        if (ok)
            return true;
    }
    return false;
}

/* --- framing --- */

/* Frames one event: the SSE frame of its envelope, data being JSON text. */
static struct ag_obuf *frame_event(uint64_t seq, const char *method, const char *ns, const char *data, size_t dlen,
                                   uint64_t ts_ms)
{
    char head[400];
    int hl = snprintf(head, sizeof head,
                      "event: %s\ndata: {\"type\":\"event\",\"event_id\":\"%" PRIu64 "\",\"seq\":%" PRIu64
                      ",\"method\":\"%s\",\"params\":{\"namespace\":",
                      method, seq, seq, method);
    char mid[64];
    int ml = snprintf(mid, sizeof mid, ",\"timestamp\":%" PRIu64 ",\"data\":", ts_ms);
    char tail[48];
    int tl = snprintf(tail, sizeof tail, "}}\nid: %" PRIu64 "\n\n", seq);
    size_t nl = strlen(ns);
    struct ag_obuf *b = ag_http_piece_new((size_t)hl + nl + (size_t)ml + dlen + (size_t)tl);
    char *p = ag_http_piece_data(b);
    memcpy(p, head, (size_t)hl);
    p += hl;
    memcpy(p, ns, nl);
    p += nl;
    memcpy(p, mid, (size_t)ml);
    p += ml;
    memcpy(p, data, dlen);
    p += dlen;
    memcpy(p, tail, (size_t)tl);
    return b;
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

static struct tlog *log_get(const char *id, bool create)
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
    return ts->bytes > ts->cfg->events.memory_bytes_per_shard ? 0 : ts->cfg->events.memory_per_thread;
}

/* Trims l after a write or a release: its recent events as keep_recent says, and its write buffer
 * too while the shard is over its budget. */
static void trim_busy(struct tlog *l)
{
    trim_memory(l, keep_recent());
    if (ts->bytes > ts->cfg->events.memory_bytes_per_shard && !l->inflight && !l->sent.len) {
        ag_buf_free(&l->sent);
        log_account(l);
    }
}

/* The oldest idle entries whose time is up leave memory. */
static void on_idle_expire(struct ag_timer *tm)
{
    (void)tm;
    uint64_t now = ts->s->now_ns, keep = ag_ms_to_ns(ts->cfg->events.idle_keep_ms);
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
static void log_settle(struct tlog *l)
{
    log_account(l);
    if (l->deleted) {
        if (!l->inflight && !l->subs && !l->dirty)
            log_free(l);
        return;
    }
    if (l->runs || l->subs || l->inflight || l->pend.len || l->dirty || l->idle)
        return;
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
                     l->idle_ns + ag_ms_to_ns(ts->cfg->events.idle_keep_ms));
    l->iprev = ts->idle_tail;
    l->inext = NULL;
    if (ts->idle_tail)
        ts->idle_tail->inext = l;
    else
        ts->idle_head = l;
    ts->idle_tail = l;
    ts->nidle++;
    while (ts->idle_head && (ts->nidle > IDLE_MAX || ts->bytes > ts->cfg->events.memory_bytes_per_shard))
        log_free(ts->idle_head);
}

/* --- delivery --- */

static void sub_write(struct tsub *x, const struct tev *e)
{
    if (x->gone || x->r->gone)
        return;
    if (passes(&x->f, e))
        ag_http_stream_write_piece(x->r, e->frame);
}

/* Sends the events the reservation covers to the live streams. */
static void deliver(struct tlog *l)
{
    for (uint32_t i = l->start; i < l->n; i++) {
        struct tev *e = &l->ev[i];
        if (e->seq <= l->delivered)
            continue;
        if (e->seq > l->reserved || e->held)
            break;
        for (struct tsub *x = l->subs; x; x = x->next)
            if (x->live && e->seq > x->cursor) {
                sub_write(x, e);
                x->cursor = e->seq;
            }
        l->delivered = e->seq;
    }
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
        l->inflight = false;
        if (l->deleted) {
            l->sent.len = 0;
            continue;
        }
        if (ok || lost) {
            /* Written, or gone for good (memory may let them go either way). */
            if (l->inflight_max > l->flushed)
                l->flushed = l->inflight_max;
            l->sent.len = 0;
            if (ok && (int)i < rows && !PQgetisnull(res, (int)i, 1)) {
                uint64_t last = strtoull(PQgetvalue(res, (int)i, 1), NULL, 10);
                if (last > l->reserved)
                    l->reserved = last;
            }
            deliver(l);
            trim_busy(l);
        } else {
            put_back(l);
        }
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
        log_settle(ts->batch[i]);
}

/* Appends s[0..n) to b as an element of a Postgres array literal (quoted, \ and " escaped). */
static void array_text(struct ag_buf *b, const char *s, size_t n)
{
    ag_buf_puts(b, "\"");
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\') {
            ag_buf_append(b, s + from, i - from);
            ag_buf_puts(b, "\\");
            from = i;
        }
    ag_buf_append(b, s + from, n - from);
    ag_buf_puts(b, "\"");
}

static void shard_flush_task(struct ag_task *tk)
{
    (void)tk;
    if (ts->inflight || ts->retry_armed)
        return;
    struct ag_buf ids = {0}, firsts = {0}, lasts = {0}, events = {0}, reserves = {0}, trims = {0};
    ts->nbatch = 0;
    uint32_t retain = ts->cfg->events.retain_per_thread;
    uint64_t one_reserve = 0, one_trim = 0; /* the last log's, for TEV_APPEND1 */
    for (struct tlog *l = ts->dirty_head, *next; l; l = next) {
        next = l->dnext;
        l->dirty = false;
        l->dnext = NULL;
        /* Reserve ahead while a run is on: events past the reservation wait for this write. */
        uint64_t want = l->runs && l->tail + AG_TLOG_RESERVE / 2 > l->reserved ? l->tail + AG_TLOG_RESERVE : 0;
        if (l->deleted || (!l->pend.len && !want && l->tail <= l->reserved)) {
            log_settle(l);
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
            ag_buf_puts(&events, sep);
            struct ag_buf arr = {0};
            ag_buf_puts(&arr, "[");
            ag_buf_append(&arr, l->pend.base, l->pend.len);
            ag_buf_puts(&arr, "]");
            array_text(&events, arr.base, arr.len);
            ag_buf_free(&arr);
        } else {
            ag_buf_printf(&firsts, "%sNULL", sep);
            ag_buf_printf(&lasts, "%sNULL", sep);
            ag_buf_printf(&events, "%sNULL", sep);
        }
        one_reserve = AG_MAX(AG_MAX(l->pend_max, want), l->tail);
        ag_buf_printf(&reserves, "%s%" PRIu64, sep, one_reserve);
        one_trim = l->pend.len && l->pend_max > retain ? l->pend_max - retain : 0;
        if (one_trim)
            ag_buf_printf(&trims, "%s%" PRIu64, sep, one_trim);
        else
            ag_buf_printf(&trims, "%sNULL", sep);
        /* pend is in flight: it becomes sent, and pend starts over. */
        l->inflight = true;
        l->inflight_max = l->pend_max;
        l->sent_first = l->pend_first;
        struct ag_buf t = l->sent;
        l->sent = l->pend;
        l->pend = t;
        l->pend.len = 0;
    }
    ts->dirty_head = ts->dirty_tail = NULL;
    if (!ts->nbatch) {
        ag_buf_free(&ids), ag_buf_free(&firsts), ag_buf_free(&lasts);
        ag_buf_free(&events), ag_buf_free(&reserves), ag_buf_free(&trims);
        return;
    }
    struct ag_buf *cols[] = {&ids, &firsts, &lasts, &events, &reserves, &trims};
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
            struct ag_buf arr = {0};
            ag_buf_puts(&arr, "[");
            ag_buf_append(&arr, l->sent.base, l->sent.len);
            ag_buf_puts(&arr, "]");
            p[3] = ag_pg_args_dup(st, arr.base, arr.len);
            ag_buf_free(&arr);
        }
        p[4] = ag_pg_args_printf(st, "%" PRIu64, one_reserve);
        p[5] = one_trim ? ag_pg_args_printf(st, "%" PRIu64, one_trim) : NULL;
        for (int c = 0; c < 6; c++)
            ag_buf_free(cols[c]);
    } else {
        ts->q.stmt = AG_SQL_TEV_APPEND;
        for (int c = 0; c < 6; c++) {
            struct ag_buf lit = {0};
            ag_buf_puts(&lit, "{");
            if (cols[c]->len)
                ag_buf_append(&lit, cols[c]->base, cols[c]->len);
            ag_buf_puts(&lit, "}");
            ts->q.params[c] = ag_pg_args_dup(&ts->strs, lit.base, lit.len);
            ag_buf_free(&lit);
            ag_buf_free(cols[c]);
        }
    }
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
    struct tlog *l = log_get(thread_id, false);
    if (!l || !l->known) {
        if (l)
            log_settle(l);
        return NULL;
    }
    snprintf(buf, 24, "%" PRIu64, l->tail + AG_TLOG_RESERVE);
    log_settle(l);
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
    struct tlog *l = log_get(thread_id, true);
    if (!l->known) /* not known here: the stored value was just raised by a whole block */
        log_learn(l, last_seq >= AG_TLOG_RESERVE ? last_seq - AG_TLOG_RESERVE : 0);
    if (last_seq > l->reserved)
        l->reserved = last_seq;
    deliver(l);
    log_settle(l);
}

void ag_tlog_stored(const char *thread_id, uint64_t last_seq)
{
    struct tlog *l = log_get(thread_id, true);
    if (!l->known) {
        /* No seq past the stored value was ever handed out (events wait for their reservation). */
        log_learn(l, last_seq);
        if (last_seq > l->reserved)
            l->reserved = last_seq;
    }
    log_settle(l);
}

void ag_tlog_run_begin(const char *thread_id)
{
    struct tlog *l = log_get(thread_id, true);
    l->runs++;
}

void ag_tlog_run_end(const char *thread_id)
{
    struct tlog *l = log_get(thread_id, false);
    if (!l)
        return;
    if (l->runs)
        l->runs--;
    l->last_event_ns = ts->s->now_ns;
    log_settle(l);
}

uint64_t ag_tlog_last_seq(const char *thread_id)
{
    struct tlog *l = ag_strmap_get(&ts->logs, thread_id, strlen(thread_id));
    return l && l->known ? l->tail : 0;
}

uint64_t ag_tlog_append(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                        const json_t *data, bool hold)
{
    struct tlog *l = log_get(thread_id, true);
    if (!l->known || l->deleted) {
        ag_log(AG_LOG_ERROR, "thread=%s msg=\"v2 event dropped: the thread's seq is not known\" method=%s", thread_id,
               method);
        log_settle(l);
        return 0;
    }
    uint64_t seq = ++l->tail;
    uint64_t ts_ms = ag_us_to_ms(ag_clock_real_us());
    char *d = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    char *n = ns ? json_dumps(ns, JSON_COMPACT) : NULL;
    const char *nstr = n ? n : "[]";
    size_t dlen = strlen(d);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ev = ag_realloc(l->ev, l->cap * sizeof *l->ev);
    }
    struct tev *e = &l->ev[l->n++];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->held = hold;
    e->chan = method_chan(method);
    if (e->chan == AG_TCH_CUSTOM) {
        const char *name = json_string_value(json_object_get(data, "name"));
        if (name)
            e->custom = ag_strdup(name);
    }
    e->ns = ns && json_array_size(ns) ? json_incref((json_t *)ns) : NULL;
    e->frame = frame_event(seq, method, nstr, d, dlen, ts_ms);
    e->bytes = (uint32_t)(sizeof *e->frame + e->frame->cap + (e->custom ? strlen(e->custom) + 1 : 0));
    l->ev_bytes += e->bytes;
    /* For Postgres: [seq, run, method, ns, data, ts]. */
    if (l->pend.len)
        ag_buf_puts(&l->pend, ",");
    else
        l->pend_first = seq;
    ag_buf_printf(&l->pend, "[%" PRIu64 ",\"%s\",\"%s\",%s,", seq, run_id ? run_id : "", method, nstr);
    ag_buf_append(&l->pend, d, dlen);
    ag_buf_printf(&l->pend, ",%" PRIu64 "]", ts_ms);
    l->pend_max = seq;
    l->last_event_ns = ts->s->now_ns;
    ag_free(d);
    ag_free(n);
    deliver(l);
    log_account(l);
    schedule_flush(l);
    return seq;
}

void ag_tlog_release(const char *thread_id, uint64_t seq)
{
    struct tlog *l = log_get(thread_id, false);
    if (!l)
        return;
    for (uint32_t i = l->start; i < l->n; i++)
        if (l->ev[i].seq == seq)
            l->ev[i].held = false;
    deliver(l);
    trim_busy(l);
    log_settle(l);
}

/* --- streams --- */

static bool sub_read(struct tsub *x);

static void sub_free(struct tsub *x)
{
    ag_tlog_filter_clear(&x->f);
    ag_pg_args_reset(&x->strs);
    ag_timer_cancel(&ts->s->timers, &x->idle);
    ag_free(x);
}

static void sub_unlink(struct tsub *x)
{
    struct tsub **pp = &x->l->subs;
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp)
        *pp = x->next;
}

/* Ends x's stream (the client may still be there) and forgets it once no statement refers to it.
 * A stream not started yet (its first read in flight) is answered when that read is done: 503 when
 * the client is still there (the shard is stopping), nothing when it left. */
static void sub_end(struct tsub *x)
{
    struct tlog *l = x->l;
    if (!x->gone) {
        x->gone = true;
        ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
        if (x->started) {
            x->r->on_gone = NULL;
            ag_http_stream_end(x->r);
        }
    }
    if (x->reading)
        return; /* on_read comes back here */
    if (!x->started) {
        x->r->on_gone = NULL;
        if (!x->r->gone) {
            ag_http_add_header(x->r, "retry-after", "1");
            ag_http_error(x->r, 503, "the server is shutting down; retry");
        }
        ag_http_done(x->r);
    }
    sub_unlink(x);
    sub_free(x);
    log_settle(l);
}

static void on_sub_gone(struct ag_req *r)
{
    sub_end(r->stream_ud);
}

static void on_idle(struct ag_timer *tm)
{
    struct tsub *x = AG_CONTAINER_OF(tm, struct tsub, idle);
    struct tlog *l = x->l;
    uint64_t idle_ns = ag_ms_to_ns(ts->cfg->events.idle_close_ms);
    uint64_t last = AG_MAX(l->last_event_ns, x->opened_ns);
    if (l->runs || ts->s->now_ns < last + idle_ns) {
        ag_timer_arm(&ts->s->timers, &x->idle, AG_MAX(last + idle_ns, ts->s->now_ns + idle_ns / 4));
        return;
    }
    sub_end(x);
}

/* Replay done: the events in memory after the cursor, then live. */
static void go_live(struct tsub *x)
{
    struct tlog *l = x->l;
    for (uint32_t i = l->start; i < l->n; i++) {
        struct tev *e = &l->ev[i];
        if (e->seq <= x->cursor || e->seq > l->delivered)
            continue;
        sub_write(x, e);
        x->cursor = e->seq;
    }
    if (x->cursor < l->delivered)
        x->cursor = l->delivered;
    x->live = true;
    x->idle.cb = on_idle;
    ag_timer_arm(&ts->s->timers, &x->idle, ts->s->now_ns + ag_ms_to_ns(ts->cfg->events.idle_close_ms));
}

static void write_notice(struct tsub *x, uint64_t trimmed)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "event: lifecycle\ndata: {\"type\":\"event\",\"event_id\":\"truncated:%" PRIu64
                     "\",\"method\":\"lifecycle\",\"params\":{\"namespace\":[],\"timestamp\":%" PRIu64
                     ",\"data\":{\"event\":\"truncated\",\"since\":%" PRIu64 ",\"oldest_seq\":%" PRIu64
                     ",\"message\":\"events up to seq %" PRIu64
                     " are no longer retained; the stream starts at the oldest one kept\"}}}\n\n",
                     trimmed, ag_us_to_ms(ag_clock_real_us()), x->since, trimmed + 1, trimmed);
    ag_http_stream_write(x->r, buf, (size_t)n);
}

static void on_read(struct ag_pg_query *q, PGresult *res)
{
    struct tsub *x = q->ud;
    struct tlog *l = x->l;
    x->reading = false;
    ag_pg_args_reset(&x->strs);
    if (x->gone) {
        sub_end(x);
        return;
    }
    if (q->status != AG_PG_OK || PQntuples(res) == 0) {
        if (x->started) { /* the database went away mid-replay: the client resumes with since */
            sub_end(x);
            return;
        }
        if (q->status != AG_PG_OK)
            ag_dbq_fail(x->r, q);
        else {
            char msg[80];
            snprintf(msg, sizeof msg, "Thread '%s' not found", l->id);
            ag_http_error(x->r, 404, msg);
        }
        ag_http_done(x->r);
        x->gone = true;
        x->r->on_gone = NULL;
        ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
        sub_unlink(x);
        sub_free(x);
        log_settle(l);
        return;
    }
    if (!x->started) {
        x->started = true;
        ag_http_add_header(x->r, "cache-control", "no-cache");
        ag_http_add_header(x->r, "x-accel-buffering", "no");
        ag_http_stream_start(x->r, 200, "text/event-stream", SSE_HEARTBEAT, ts->cfg->runs.heartbeat_ms);
        uint64_t trimmed = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        if (x->since < trimmed)
            write_notice(x, trimmed);
    }
    int rows = PQntuples(res);
    int got = 0;
    bool caught_up = false;
    for (int i = 0; i < rows && !caught_up; i++) {
        if (PQgetisnull(res, i, 2))
            continue;
        got++;
        json_t *batch = json_loadb(PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3), 0, NULL);
        size_t k;
        json_t *ev;
        json_array_foreach(batch, k, ev) {
            uint64_t seq = (uint64_t)json_integer_value(json_array_get(ev, 0));
            if (seq <= x->cursor)
                continue;
            if (l->known && seq > l->delivered) {
                caught_up = true; /* held back from the live streams (go_live and deliver send it) */
                break;
            }
            const char *method = json_string_value(json_array_get(ev, 2));
            json_t *data = json_array_get(ev, 4);
            struct tev e = {.seq = seq, .chan = method ? method_chan(method) : 0, .ns = json_array_get(ev, 3)};
            if (e.chan == AG_TCH_CUSTOM)
                e.custom = (char *)json_string_value(json_object_get(data, "name"));
            if (method && passes(&x->f, &e)) {
                char *d = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
                char *n = json_dumps(e.ns, JSON_COMPACT);
                struct ag_obuf *b = frame_event(seq, method, n ? n : "[]", d ? d : "null", d ? strlen(d) : 4,
                                                (uint64_t)json_integer_value(json_array_get(ev, 5)));
                ag_http_stream_write_piece(x->r, b);
                ag_obuf_unref(b);
                ag_free(d);
                ag_free(n);
            }
            x->cursor = seq;
        }
        json_decref(batch);
    }
    if (!caught_up && (got == PAGE || l->evicted > x->cursor)) {
        (void)sub_read(x); /* more in Postgres than this page, or events left memory meanwhile */
        return;
    }
    go_live(x);
}

/* Reads the next page of x's replay. False only for the first read when it could not be queued
 * (the request was answered with 503); a later one that fails ends the stream. */
static bool sub_read(struct tsub *x)
{
    memset(&x->q, 0, sizeof x->q);
    x->q.stmt = AG_SQL_TEV_READ;
    x->q.kind = AG_PG_READ;
    x->q.cb = on_read;
    x->q.ud = x;
    x->q.params[0] = x->l->id;
    x->q.params[1] = OWNER;
    x->q.params[2] = ag_pg_args_printf(&x->strs, "%" PRIu64, x->cursor);
    x->q.params[3] = ag_pg_args_printf(&x->strs, "%d", PAGE);
    x->q.nparams = 4;
    if (!x->started) {
        /* The first read, from the handler: a full queue or no database is the request's 503. */
        if (ag_dbq_submit(x->r, &x->q) != AG_AGAIN) {
            ag_pg_args_reset(&x->strs);
            return false;
        }
    } else if (ag_pg_submit(ts->s, &x->q) != 0) {
        ag_pg_args_reset(&x->strs);
        sub_end(x); /* the database went away mid-replay: the client resumes with since */
        return true;
    }
    x->reading = true;
    return true;
}

int ag_tlog_stream(struct ag_req *r, const char *thread_id, struct ag_tlog_filter *f, uint64_t since)
{
    struct tlog *l = log_get(thread_id, true);
    struct tsub *x = ag_calloc(1, sizeof *x);
    x->l = l;
    x->r = r;
    x->f = *f;
    memset(f, 0, sizeof *f);
    x->cursor = since;
    x->since = since;
    x->opened_ns = ts->s->now_ns;
    x->next = l->subs;
    l->subs = x;
    r->stream_ud = x;
    r->on_gone = on_sub_gone;
    ag_stat_add(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    if (sub_read(x))
        return AG_AGAIN;
    x->gone = true;
    r->on_gone = NULL;
    ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    sub_unlink(x);
    sub_free(x);
    log_settle(l);
    return AG_OK;
}

void ag_tlog_thread_deleted(const char *thread_id)
{
    struct tlog *l = log_get(thread_id, false);
    if (!l)
        return;
    l->deleted = true;
    l->pend.len = 0;
    struct tsub *x = l->subs;
    while (x) {
        struct tsub *next = x->next;
        sub_end(x);
        x = next;
    }
    if (ag_strmap_get(&ts->logs, thread_id, strlen(thread_id)) == l)
        log_settle(l); /* a log still in a write is freed when the write is done */
}

/* --- shard set-up --- */

void ag_tlog_shard_init(struct ag_shard *s, const struct ag_config *cfg)
{
    ts = ag_calloc(1, sizeof *ts);
    ts->s = s;
    ts->cfg = cfg;
    ag_timer_init(&ts->idle_expire, on_idle_expire);
}

bool ag_tlog_shard_idle(struct ag_shard *s)
{
    (void)s;
    if (!ts)
        return true;
    /* The streams still open, collected first: ending one may free its log (and move map slots). */
    struct tsub **open = NULL;
    size_t n = 0, cap = 0;
    bool reading = false, unwritten = false;
    struct ag_strmap *m = &ts->logs;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct tlog *l = m->slots[i].key ? m->slots[i].val : NULL;
        /* Events not written yet go first (unless the database is away: the shutdown deadline rules). */
        if (l && l->pend.len && !ts->retry_armed && !l->deleted)
            unwritten = true;
        for (struct tsub *x = l ? l->subs : NULL; x; x = x->next) {
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
        sub_end(open[i]);
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
        for (struct tsub *x = l->subs, *next; x; x = next) {
            next = x->next;
            if (x->reading)
                held = true;
            else
                sub_free(x);
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
    ag_free(ts);
    ts = NULL;
}
