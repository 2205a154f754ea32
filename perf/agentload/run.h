/* run: the state of one agentload invocation shared by its modules: the options, the server's
 * address, the thread pool the runs scenarios draw from, the per-operation statistics and the
 * scenario-specific results the report prints. */
#ifndef AL_RUN_H
#define AL_RUN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "proc.h"

/* Why a task failed, other than an HTTP status. */
enum al_err {
    AL_E_CONNECT,  /* connect refused or failed */
    AL_E_CLOSED,   /* the server closed or reset the connection */
    AL_E_TIMEOUT,  /* no complete answer within --timeout */
    AL_E_PARSE,    /* malformed HTTP or SSE */
    AL_E_BODY,     /* a 2xx whose body was not what the scenario expects */
    AL_E_OVERLOAD, /* open loop: the arrival waited longer than --timeout for a free connection */
    AL_E_POOL,     /* no free thread in the pool */
    AL_E__N,
};

/* Names of enum al_err for the report ("connect", "closed", ...). */
extern const char *const al_err_names[AL_E__N];

#define AL_OPS_MAX 8
#define AL_EXTRA_MAX 48

/* Outcomes of one operation (a request, or a v2 session) over the measured window. */
struct al_op_stats {
    const char *name;
    struct al_hist lat; /* latency of the measured tasks that succeeded, ns */
    uint64_t ok, failed, warm;
    uint64_t status[600]; /* final HTTP status of measured tasks */
    uint64_t err[AL_E__N];
};

struct al_opts {
    const char *url, *scenario, *assistant, *input, *config, *stream_mode, *channels, *mix, *json_out, *label, *pids,
        *aux_pids;
    const char *thread; /* --thread: the runs pool is this one existing thread (NULL: a pool is created) */
    unsigned conns, subs, tokens, delay_ms, after_s, pool;
    double rate, duration, warmup, timeout, max_seconds, hold, idle_stop;
    uint64_t requests;
    bool quiet;
};

/* One scenario-specific figure for the report (e.g. "deliveries_per_s"). */
struct al_extra {
    const char *key;
    double value;
    int decimals;
};

struct al_run {
    struct al_opts o;
    struct sockaddr_in addr;
    char host[64 + 6];   /* Host header value: a host of up to 63 bytes, ":PORT" and the NUL */
    char assistant[64];  /* assistant id (graph names echo/stress/interrupt mapped to their ids) */
    struct al_proc proc; /* the server's pids, when given */
    bool have_proc;
    struct al_proc aux; /* processes working for the server (its Postgres), reported apart */
    bool have_aux;

    /* The thread pool of the runs scenarios: ids and a FIFO of the free ones. */
    char (*pool_ids)[40];
    unsigned pool_n, pool_cap;
    unsigned *pool_free, pool_head, pool_count;

    struct al_op_stats ops[AL_OPS_MAX];
    unsigned nops;
    const char *mode;         /* "closed" or "open" */
    uint64_t t_window, t_end; /* measured window, monotonic ns */
    uint64_t cpu_ns;          /* server CPU over the window */
    uint64_t aux_cpu_ns;      /* the aux processes' CPU over the same window */
    uint64_t rss_kib, hwm_kib;
    double allocs0, allocs; /* the server's agentd_allocations_total at the window's start; then its growth */
    bool allocs_begun;      /* allocs0 was read */
    bool have_allocs;       /* allocs is set: the server has the counter (agentd does, the JS peer not) */
    uint64_t tasks;      /* what CPU per request divides by (measured tasks, or deliveries) */
    const char *cpu_per; /* "request", "session", "delivery", ... */
    struct al_extra extra[AL_EXTRA_MAX];
    unsigned nextra;
    const char *unsupported; /* the server does not implement the scenario's endpoint: why */
};

/* Monotonic clock, ns. */
uint64_t al_now(void);

/* Wall clock, ms since the epoch (to compare with a server's event timestamps). */
double al_wall_ms(void);

/* Adds (or replaces) a scenario figure for the report. */
void al_run_extra(struct al_run *r, const char *key, double value, int decimals);

/* With --pid, reads the server's allocation counter at the window's start (begin) and its growth over
 * the window (end: r->allocs, r->have_allocs). A server without the counter leaves have_allocs false. */
void al_run_allocs_begin(struct al_run *r);
void al_run_allocs_end(struct al_run *r);

/* The report of a hold scenario (idle, sse.idle): n of them asked for (figure `key`), open at the
 * sample, all up between t0 and t_up, and the server's RSS in KiB before and after (with --pid):
 * figure per_key is the growth divided by open. Sets the mode, window and unit (CPU per unit); the
 * caller sets tasks and the CPU counters. The strings are kept (literals). */
void al_run_report_hold(struct al_run *r, const char *key, const char *unit, const char *per_key, unsigned n,
                        unsigned open, uint64_t t0, uint64_t t_up, uint64_t rss0, uint64_t rss1);

/* Registers an operation name; returns its index in r->ops. */
unsigned al_run_op(struct al_run *r, const char *name);

/* Formats one HTTP/1.1 request into buf (Host, and for a body Content-Type: application/json and
 * Content-Length; `extra` is more header lines, each ending in CRLF, or NULL). Returns its length,
 * or 0 when it does not fit. */
size_t al_run_request(const struct al_run *r, char *buf, size_t cap, const char *method, const char *path,
                      const char *body, const char *extra);

/* Adds a thread id to the pool, free. Returns 0, or -1 when the id is too long. */
int al_pool_add(struct al_run *r, const char *id);

/* Takes the longest-free thread of the pool: its slot, or -1 when every thread is busy. */
int al_pool_take(struct al_run *r);

/* Gives a taken thread back (it becomes the newest free one). */
void al_pool_give(struct al_run *r, int slot);

/* A v4 UUID string (36 characters + NUL) from a fast non-cryptographic generator. */
void al_run_uuid(char out[37]);

/* Uniform random 64-bit value (xorshift). */
uint64_t al_run_rand(void);

#endif
