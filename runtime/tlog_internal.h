/* Module-private parts of the thread event log (runtime/tlog.h): the per-shard state and the
 * structs shared by tlog.c (log entries, memory, the batched event write, the producer side, shard
 * set-up) and tlog_sub.c (filters, subscriptions: replay from Postgres, live delivery to sinks).
 * Everything here is used on the thread's owner shard only. */
#ifndef AG_RUNTIME_TLOG_INTERNAL_H
#define AG_RUNTIME_TLOG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "persist/pg.h"
#include "persist/pgargs.h"
#include "runtime/stats.h"
#include "runtime/tlog.h"

/* One event in memory, encoded once (by the shard's codec). */
struct tev {
    uint64_t seq;
    unsigned chan;
    bool held;
    uint32_t bytes; /* what it holds in memory (its encoding, its custom name) */
    char *custom;  /* data.name of a custom event, or NULL */
    json_t *ns;    /* array of strings (shared with the producer: never modified), NULL at the root */
    struct ag_obuf *frame;
};

/* A thread's log on this shard. */
struct tlog {
    char id[37];
    bool known;          /* tail is the thread's real last seq */
    uint64_t tail;       /* last seq handed out */
    uint64_t reserved;   /* seqs up to this are covered by a committed last_seq */
    uint64_t delivered;  /* events up to this went to the live sinks */
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
    unsigned write_holds; /* ag_tlog_hold_writes: the log does not write its events itself meanwhile */
    struct tlog *dnext;
    uint64_t inflight_max;
    struct ag_tlog_sub *subs;
    struct tlog *inext, *iprev; /* the idle list */
    bool idle;
    uint64_t idle_ns; /* when it joined the idle list */
};

struct ag_tlog_sub {
    struct ag_tlog_sub *next;
    struct tlog *l;
    struct ag_tlog_sink k; /* cleared once told the end */
    char *owner;
    struct ag_tlog_filter f;
    uint64_t cursor;      /* last seq considered */
    uint64_t since;
    bool live, reading, started, gone;
    enum ag_tlog_end why; /* once gone */
    uint64_t opened_ns;
    struct ag_pg_query q;
    struct ag_pg_args strs;
    struct ag_timer idle;
};

struct tlog_shard {
    struct ag_shard *s;
    const struct ag_tlog_limits *lim;
    const struct ag_tlog_codec *codec;
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
    struct ag_buf events_buf; /* the batch's events column, kept between writes (up to BATCH_BUF_KEEP) */
    struct ag_task flush_task;
    struct ag_timer retry;
};

/* tlog.c */

/* This shard's logs (from ag_tlog_shard_init; NULL before it and after ag_tlog_shard_exit). */
struct tlog_shard *ag_tlog__shard(void);

/* The log of thread id on this shard (taken off the idle list), created when create; NULL when it
 * is not here and not created. Hand it back with ag_tlog__settle when done. */
struct tlog *ag_tlog__log_get(const char *id, bool create);
/* Called whenever something that keeps l busy ended: memory accounting, trimming, the idle list.
 * l itself may be freed. */
void ag_tlog__settle(struct tlog *l);

/* tlog_sub.c */

/* The channel bit (AG_TCH_*) of an envelope method; 0 for an unknown one. */
unsigned ag_tlog__method_chan(const char *method);
/* Gives the events the reservation covers (and no held one) to l's live subscriptions. */
void ag_tlog__deliver(struct tlog *l);
/* Ends x with why (the sink is told once; see ag_tlog_sink_ops.on_end) and frees it once no read
 * refers to it; its log settles then. */
void ag_tlog__sub_end(struct ag_tlog_sub *x, enum ag_tlog_end why);
/* Frees x without telling its sink (shard exit; x must be unlinked or its log going away). */
void ag_tlog__sub_free(struct ag_tlog_sub *x);

#endif
