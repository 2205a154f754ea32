#include "runtime/tlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/jsontext.h"
#include "core/log.h"
#include "core/obuf.h"
#include "runtime/stats.h"
#include "runtime/tlog_internal.h"
#include "runtime/v2values.h"

/* Batches read from Postgres per replay statement. */
#define PAGE 64

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

unsigned ag_tlog__method_chan(const char *method)
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

/* --- delivery --- */

static void sub_write(struct ag_tlog_sub *x, const struct tev *e)
{
    if (x->gone || !passes(&x->f, e))
        return;
    struct ag_tlog_event ev = {.seq = e->seq, .frame = e->frame};
    x->k.ops->on_event(x->k.ud, &ev);
}

void ag_tlog__deliver(struct tlog *l)
{
    for (uint32_t i = l->start; i < l->n; i++) {
        struct tev *e = &l->ev[i];
        if (e->seq <= l->delivered)
            continue;
        if (e->seq > l->reserved || e->held)
            break;
        for (struct ag_tlog_sub *x = l->subs; x; x = x->next)
            if (x->live && e->seq > x->cursor) {
                sub_write(x, e);
                x->cursor = e->seq;
            }
        l->delivered = e->seq;
    }
}

/* --- subscriptions --- */

static int sub_read(struct ag_tlog_sub *x);

void ag_tlog__sub_free(struct ag_tlog_sub *x)
{
    struct tlog_shard *ts = ag_tlog__shard();
    ag_tlog_filter_clear(&x->f);
    ag_pg_args_reset(&x->strs);
    ag_timer_cancel(&ts->s->timers, &x->idle);
    ag_free(x->owner);
    ag_free(x);
}

static void sub_unlink(struct ag_tlog_sub *x)
{
    struct ag_tlog_sub **pp = &x->l->subs;
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp)
        *pp = x->next;
}

/* Tells x's sink the end, once (the sink may let go of its reader at once). */
static void sink_end(struct ag_tlog_sub *x, enum ag_tlog_end why, const struct ag_pg_query *q)
{
    struct ag_tlog_sink k = x->k;
    if (!k.ops)
        return;
    x->k.ops = NULL;
    k.ops->on_end(k.ud, why, x->l->id, q);
}

/* Ends x's subscription and forgets it once no statement refers to it. One not started yet (its
 * first read in flight) is told when that read is done: its sink answers its reader then. */
void ag_tlog__sub_end(struct ag_tlog_sub *x, enum ag_tlog_end why)
{
    struct tlog_shard *ts = ag_tlog__shard();
    struct tlog *l = x->l;
    if (!x->gone) {
        x->gone = true;
        x->why = why;
        ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
        if (x->started)
            sink_end(x, why, NULL);
    }
    if (x->reading)
        return; /* on_read comes back here */
    sink_end(x, x->why, NULL);
    sub_unlink(x);
    ag_tlog__sub_free(x);
    ag_tlog__settle(l);
}

void ag_tlog_unsubscribe(struct ag_tlog_sub *x)
{
    ag_tlog__sub_end(x, AG_TLOG_END_LEFT);
}

static void on_idle(struct ag_timer *tm)
{
    struct tlog_shard *ts = ag_tlog__shard();
    struct ag_tlog_sub *x = AG_CONTAINER_OF(tm, struct ag_tlog_sub, idle);
    struct tlog *l = x->l;
    uint64_t idle_ns = ag_ms_to_ns(ts->lim->idle_close_ms);
    uint64_t last = AG_MAX(l->last_event_ns, x->opened_ns);
    if (l->runs || ts->s->now_ns < last + idle_ns) {
        ag_timer_arm(&ts->s->timers, &x->idle, AG_MAX(last + idle_ns, ts->s->now_ns + idle_ns / 4));
        return;
    }
    ag_tlog__sub_end(x, AG_TLOG_END_IDLE);
}

/* Replay done: the events in memory after the cursor, then live. */
static void go_live(struct ag_tlog_sub *x)
{
    struct tlog_shard *ts = ag_tlog__shard();
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
    ag_timer_arm(&ts->s->timers, &x->idle, ts->s->now_ns + ag_ms_to_ns(ts->lim->idle_close_ms));
}

/* The state inside {"$agentd.state": state} (borrowed), or NULL when v is not that. */
static json_t *state_of(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 1 ? json_object_get(v, AG_TLOG_STATE_REF) : NULL;
}

/* data of a stored event as it was sent (a new reference): a state named by versions in the log,
 * read back by TEV_READ, goes where it was, as the live event had it. */
static json_t *event_data(const char *method, json_t *data)
{
    json_t *st;
    if (!strcmp(method, "values") && (st = state_of(data))) return ag_v2_normalize_values(st);
    if (!strcmp(method, "tasks") && (st = state_of(json_object_get(data, "input")))) {
        json_t *out = json_copy(data);
        json_object_set(out, "input", st);
        return out;
    }
    return json_incref(data);
}

static void on_read(struct ag_pg_query *q, PGresult *res)
{
    struct tlog_shard *ts = ag_tlog__shard();
    struct ag_tlog_sub *x = q->ud;
    struct tlog *l = x->l;
    x->reading = false;
    ag_pg_args_reset(&x->strs);
    if (x->gone) {
        ag_tlog__sub_end(x, x->why);
        return;
    }
    if (q->status != AG_PG_OK || PQntuples(res) == 0) {
        enum ag_tlog_end why = q->status != AG_PG_OK ? AG_TLOG_END_DB_ERROR : AG_TLOG_END_NOT_FOUND;
        if (x->started) { /* the database went away mid-replay: the reader resumes with since */
            ag_tlog__sub_end(x, why);
            return;
        }
        x->gone = true;
        ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
        sink_end(x, why, why == AG_TLOG_END_DB_ERROR ? q : NULL);
        sub_unlink(x);
        ag_tlog__sub_free(x);
        ag_tlog__settle(l);
        return;
    }
    if (!x->started) {
        x->started = true;
        uint64_t trimmed = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        x->k.ops->on_start(x->k.ud, x->since, x->since < trimmed ? trimmed : 0);
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
                caught_up = true; /* held back from the live sinks (go_live and deliver give it) */
                break;
            }
            const char *method = json_string_value(json_array_get(ev, 2));
            json_t *raw = json_array_get(ev, 4);
            struct tev e = {.seq = seq, .chan = method ? ag_tlog__method_chan(method) : 0, .ns = json_array_get(ev, 3)};
            if (e.chan == AG_TCH_CUSTOM)
                e.custom = (char *)json_string_value(json_object_get(raw, "name"));
            if (method && passes(&x->f, &e)) {
                json_t *data = event_data(method, raw);
                char *d = ag_json_text(data, JSON_COMPACT | JSON_ENCODE_ANY, NULL);
                char *n = ag_json_text(e.ns, JSON_COMPACT, NULL);
                struct ag_tlog_event out = {
                    .seq = seq,
                    .frame = ts->codec->event(seq, method, n ? n : "[]", d ? d : "null", d ? strlen(d) : 4,
                                              (uint64_t)json_integer_value(json_array_get(ev, 5))),
                };
                x->k.ops->on_event(x->k.ud, &out);
                ag_obuf_unref(out.frame);
                ag_free(d);
                ag_free(n);
                json_decref(data);
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

/* Reads the next page of x's replay. The first read returns what ag_pg_submit did (0, -EAGAIN or
 * -ENOTCONN; x is the caller's to drop on failure); a later one that cannot be queued ends the
 * subscription (the reader resumes with since), and 0 is returned. */
static int sub_read(struct ag_tlog_sub *x)
{
    struct tlog_shard *ts = ag_tlog__shard();
    memset(&x->q, 0, sizeof x->q);
    x->q.stmt = AG_SQL_TEV_READ;
    x->q.kind = AG_PG_READ;
    x->q.cb = on_read;
    x->q.ud = x;
    x->q.params[0] = x->l->id;
    x->q.params[1] = x->owner;
    x->q.params[2] = ag_pg_args_printf(&x->strs, "%" PRIu64, x->cursor);
    x->q.params[3] = ag_pg_args_printf(&x->strs, "%d", PAGE);
    x->q.nparams = 4;
    int rc = ag_pg_submit(ts->s, &x->q);
    if (rc != 0) {
        ag_pg_args_reset(&x->strs);
        if (!x->started)
            return rc;
        ag_tlog__sub_end(x, AG_TLOG_END_DB_ERROR);
        return 0;
    }
    x->reading = true;
    return 0;
}

int ag_tlog_subscribe(const char *thread_id, const char *owner, struct ag_tlog_filter *f, uint64_t since,
                      const struct ag_tlog_sink *k, struct ag_tlog_sub **out)
{
    struct tlog_shard *ts = ag_tlog__shard();
    struct tlog *l = ag_tlog__log_get(thread_id, true);
    struct ag_tlog_sub *x = ag_calloc(1, sizeof *x);
    x->l = l;
    x->k = *k;
    x->owner = ag_strdup(owner);
    x->f = *f;
    memset(f, 0, sizeof *f);
    x->cursor = since;
    x->since = since;
    x->opened_ns = ts->s->now_ns;
    x->next = l->subs;
    l->subs = x;
    ag_stat_add(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    int rc = sub_read(x);
    if (rc == 0) {
        *out = x;
        return 0;
    }
    x->gone = true;
    ag_stat_sub(&ts->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    sub_unlink(x);
    ag_tlog__sub_free(x);
    ag_tlog__settle(l);
    return rc;
}

