#include "idle.h"

#include <stdio.h>
#include <stdlib.h>

#include "conn.h"

#define TICK_MS 20

struct idle_conn {
    struct al_conn conn;
    bool served, failed;
};

static char request[512];
static size_t request_len;
static unsigned served, failed;
static struct al_run *run;
static unsigned op;

static void on_open(struct al_conn *c)
{
    al_conn_request(c, request, request_len);
}

static void on_done(struct al_conn *c, struct al_resp *r)
{
    struct idle_conn *k = c->owner;
    if (r->status < 600) run->ops[op].status[r->status]++;
    if (r->status == 200) {
        k->served = true;
        served++;
    } else {
        k->failed = true;
        failed++;
    }
}

static void on_error(struct al_conn *c, const char *what)
{
    struct idle_conn *k = c->owner;
    if (!k->failed) {
        k->failed = true;
        failed++;
        run->ops[op].err[k->served ? AL_E_CLOSED : AL_E_CONNECT]++;
        if (k->served) served--;
        if (!run->o.quiet && failed <= 3) fprintf(stderr, "agentload: idle connection: %s\n", what);
    }
}

static const struct al_conn_ops ops = {.on_open = on_open, .on_done = on_done, .on_error = on_error};

int al_idle_run(struct al_run *r)
{
    run = r;
    op = al_run_op(r, "idle.connect");
    request_len = al_run_request(r, request, sizeof request, "GET", "/ok", NULL, NULL);
    unsigned n = r->o.conns;
    struct idle_conn *cs = calloc(n, sizeof *cs);
    uint64_t rss0 = 0, hwm0 = 0, rss1 = 0, hwm1 = 0, cpu0 = 0, cpu1 = 0;
    if (r->have_proc) {
        al_proc_mem_kib(&r->proc, &rss0, &hwm0);
        cpu0 = al_proc_cpu_ns(&r->proc);
    }
    uint64_t t0 = al_now(), hard = t0 + (uint64_t)(r->o.max_seconds * 1e9);
    for (unsigned i = 0; i < n; i++) {
        al_conn_init(&cs[i].conn, &ops, &cs[i]);
        al_conn_open(&cs[i].conn);
    }
    while (served + failed < n && al_now() < hard)
        al_conn_loop_poll(TICK_MS);
    uint64_t t_up = al_now(), hold_until = t_up + (uint64_t)(r->o.hold * 1e9);
    while (al_now() < hold_until)
        al_conn_loop_poll(TICK_MS);
    if (r->have_proc) {
        al_proc_mem_kib(&r->proc, &rss1, &hwm1);
        cpu1 = al_proc_cpu_ns(&r->proc);
    }
    struct al_op_stats *st = &r->ops[op];
    st->ok = served;
    st->failed = n - served;
    for (unsigned i = 0; i < n; i++)
        al_conn_close(&cs[i].conn);
    free(cs);
    r->cpu_ns = cpu1 - cpu0;
    r->tasks = served;
    al_run_report_hold(r, "connections", "connection", "server_kib_per_connection",
                       n, served, t0, t_up, rss0, rss1);
    return served ? 0 : -1;
}
