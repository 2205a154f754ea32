/* drive: runs tasks (one request, or one multi-request session) on keep-alive connections and
 * measures them. Closed loop: N workers, each starting its next task when the last one ends. Open
 * loop: tasks arrive at a fixed rate whatever the server does, wait for a free worker if none is
 * idle, and their latency counts from the arrival, so a slow server cannot hide queueing
 * (coordinated omission). A warm-up runs first and is not recorded; the measured window is a
 * duration or a task count, then in-flight tasks are awaited (at most the task timeout). */
#ifndef AL_DRIVE_H
#define AL_DRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "run.h"
#include "sse.h"

struct al_worker;

/* One kind of task. start: begin it on w (w->conn may still be connecting: send through
 * al_worker_send). The callbacks see responses on w->conn (aux false) or w->aux (aux true); the op
 * ends the task with al_task_done. Connection failures end it with AL_E_CLOSED / AL_E_CONNECT
 * without involving the op. */
struct al_op {
    const char *name;
    void (*start)(struct al_worker *w);
    void (*on_head)(struct al_worker *w, bool aux, struct al_resp *r);
    void (*on_body)(struct al_worker *w, bool aux, const char *p, size_t n);
    void (*on_done)(struct al_worker *w, bool aux, struct al_resp *r);
    bool uses_pool; /* takes a thread from the pool for the task */
};

#define AL_BODY_MAX (1u << 20) /* response bytes kept for the op to read (beyond: counted, not kept) */

struct al_worker {
    struct al_run *run;
    struct al_phase *ph;
    unsigned idx;
    struct al_conn conn, aux;
    bool busy, measured;
    unsigned op; /* index into the phase's ops */
    uint64_t t_sched, t_start;
    int pool_slot; /* -1: none */
    int phase;     /* the op's own progress marker */
    int status;    /* last HTTP status seen */
    bool flag_a, flag_b;
    char thread_id[40], run_id[40];
    struct al_sse sse;
    char *body; /* the response body so far (the first AL_BODY_MAX bytes) */
    size_t blen, bcap;
    struct al_worker *next_idle;
};

/* A load shape: which ops (with weights, for a mixed profile), how many connections, closed or
 * open loop, for how long, and where the results go. */
struct al_phase {
    const struct al_op *ops[AL_OPS_MAX];
    unsigned weight[AL_OPS_MAX];
    unsigned stat[AL_OPS_MAX]; /* index into run->ops for each op */
    unsigned nops;
    unsigned conns;
    double rate;        /* tasks/s; 0: closed loop */
    double duration;    /* measured seconds (when count is 0) */
    uint64_t count;     /* measured tasks (0: by duration) */
    double warmup;      /* seconds */
    double timeout;     /* per task, seconds */
    double max_seconds; /* hard cap on the whole phase */
    bool quiet;
    bool sample_server; /* read the server's CPU (run->proc) at the window's start and end */
    /* set by al_drive */
    uint64_t t_window, t_end, measured_started;
    bool aborted; /* the hard cap ended the phase */
};

/* Runs the phase: opens the connections, warms up, measures, drains. Per-op results go to
 * run->ops[ph->stat[i]]. Returns 0, or -1 when no connection could be opened at all. */
int al_drive(struct al_run *run, struct al_phase *ph);

/* Sends a request on w->conn (aux false) or w->aux, opening the connection first if it is closed,
 * and clears the kept body. */
void al_worker_send(struct al_worker *w, bool aux, const char *req, size_t len);

/* Ends w's current task. status: the HTTP status it ended with (0 if none); err: -1 for none, else
 * an enum al_err. A task with err -1 and a 2xx status counts as ok. */
void al_task_done(struct al_worker *w, int status, int err);

/* Keeps body bytes for the op (the generic on_body of request/response ops). */
void al_worker_keep_body(struct al_worker *w, const char *p, size_t n);

#endif
