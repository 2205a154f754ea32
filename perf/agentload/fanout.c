#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "jscan.h"
#include "sse.h"
#include "sync.h"

#define TICK_MS 20

struct sub {
    struct al_conn conn;
    struct al_sse sse;
    uint64_t frames;
    bool ok200, done, complete;
};

static struct al_run *run;
static struct sub *subs;
static unsigned nsubs, n200, ndone, ncomplete, nfailed;
static uint64_t *first_seen; /* per event index: first receive time */
static unsigned nindex;
static uint64_t t_read, t_first, t_last, t_subscribed, deliveries, server_lag_n;
static struct al_hist server_lag;
static unsigned op;
static char request[2048];
static size_t request_len;
static bool expect_events;
static bool v2; /* fanout.v2: subscribers read POST /threads/{id}/stream/events, which stays open */

static void on_open(struct al_conn *c)
{
    al_conn_request(c, request, request_len);
}

static void on_head(struct al_conn *c, struct al_resp *r)
{
    struct sub *s = c->owner;
    if (r->status == 200) {
        s->ok200 = true;
        if (++n200 == nsubs) t_subscribed = al_now();
    } else if (r->status < 600) {
        run->ops[op].status[r->status]++;
    }
}

static void on_frame(void *ud, const struct al_sse_frame *f)
{
    struct sub *s = ud;
    if (f->event_len == 3 && !memcmp(f->event, "end", 3)) return;
    if (s->frames >= run->o.tokens) return;
    double idx;
    if (!(f->event_len == 6 && !memcmp(f->event, "custom", 6)) || !al_jscan_num(f->data, f->data_len, "index", &idx))
        return;
    s->frames++;
    deliveries++;
    if (!t_first) t_first = t_read;
    t_last = t_read;
    unsigned i = idx >= 0 && idx < nindex ? (unsigned)idx : 0;
    if (!first_seen[i]) first_seen[i] = t_read;
    struct al_op_stats *st = &run->ops[op];
    st->ok++;
    st->status[200]++;
    al_hist_record(&st->lat, t_read - first_seen[i]);
    double ts;
    if (al_jscan_num(f->data, f->data_len, "timestamp", &ts) && ts > 1e12) {
        double lag = al_wall_ms() - ts;
        al_hist_record(&server_lag, lag > 0 ? (uint64_t)(lag * 1e6) : 0);
        server_lag_n++;
    }
}

static void finish_sub(struct sub *s, bool failed);

static void on_body(struct al_conn *c, const char *p, size_t n)
{
    struct sub *s = c->owner;
    if (s->done) return;
    t_read = al_now();
    if (s->ok200 && al_sse_feed(&s->sse, p, n, on_frame, s) < 0) run->ops[op].err[AL_E_PARSE]++;
    if (v2 && s->ok200 && s->frames >= run->o.tokens) { /* a v2 stream does not end with its run */
        finish_sub(s, false);
        al_conn_close(c);
    }
}

static void finish_sub(struct sub *s, bool failed)
{
    if (s->done) return;
    s->done = true;
    ndone++;
    if (failed) nfailed++;
    s->complete = !failed && s->ok200 && (!expect_events || s->frames >= run->o.tokens);
    if (s->complete) ncomplete++;
}

static void on_done(struct al_conn *c, struct al_resp *r)
{
    struct sub *s = c->owner;
    finish_sub(s, r->status != 200);
    al_conn_close(c);
}

static void on_error(struct al_conn *c, const char *what)
{
    struct sub *s = c->owner;
    if (!s->done) {
        run->ops[op].err[strncmp(what, "connect", 7) ? AL_E_CLOSED : AL_E_CONNECT]++;
        if (!run->o.quiet && nfailed < 3) fprintf(stderr, "agentload: subscriber: %s\n", what);
    }
    finish_sub(s, true);
}

static const struct al_conn_ops sub_ops = {on_open, on_head, on_body, on_done, on_error};

/* Creates the thread and the background run; fills path with the join URL. */
static int make_run(struct al_run *r, const char *configurable, unsigned after_s, char *tid, char *rid)
{
    char out[8192], body[4096];
    int st = al_sync_request(r, "POST", "/threads", "{}", false, 30, out, sizeof out);
    if (st != 200 || !al_jscan_str(out, strlen(out), "thread_id", tid, 40)) {
        fprintf(stderr, "agentload: POST /threads answered %d: %.200s\n", st, out);
        return -1;
    }
    snprintf(body, sizeof body,
             "{\"assistant_id\":\"%s\",\"input\":%s,\"config\":{\"configurable\":%s},"
             "\"stream_mode\":[\"custom\"],\"stream_resumable\":true,\"after_seconds\":%u}",
             r->assistant, r->o.input, configurable, after_s);
    char path[128];
    snprintf(path, sizeof path, "/threads/%s/runs", tid);
    st = al_sync_request(r, "POST", path, body, false, 30, out, sizeof out);
    if (st != 200 || !al_jscan_str(out, strlen(out), "run_id", rid, 40)) {
        fprintf(stderr, "agentload: POST %s answered %d: %.200s\n", path, st, out);
        return -1;
    }
    return 0;
}

static void open_subs(const char *tid, const char *rid)
{
    char path[160];
    if (v2) {
        char body[1024];
        snprintf(path, sizeof path, "/threads/%s/stream/events", tid);
        snprintf(body, sizeof body, "{\"channels\":%s}", run->o.channels);
        request_len = al_run_request(run, request, sizeof request, "POST", path, body, NULL);
    } else {
        snprintf(path, sizeof path, "/threads/%s/runs/%s/stream", tid, rid);
        request_len = al_run_request(run, request, sizeof request, "GET", path, NULL, "Last-Event-ID: -1\r\n");
    }
    nsubs = run->o.subs;
    subs = calloc(nsubs, sizeof *subs);
    n200 = ndone = ncomplete = nfailed = 0;
    for (unsigned i = 0; i < nsubs; i++) {
        al_conn_init(&subs[i].conn, &sub_ops, &subs[i]);
        al_sse_init(&subs[i].sse);
        al_conn_open(&subs[i].conn);
    }
}

static void close_subs(void)
{
    for (unsigned i = 0; i < nsubs; i++) {
        al_conn_close(&subs[i].conn);
        al_sse_free(&subs[i].sse);
    }
    free(subs);
    subs = NULL;
}

/* The server's CPU in cpu[0], its aux processes' in cpu[1]. */
static void sample_server(struct al_run *r, uint64_t cpu[2])
{
    if (r->have_proc) cpu[0] = al_proc_cpu_ns(&r->proc);
    if (r->have_aux) cpu[1] = al_proc_cpu_ns(&r->aux);
}

int al_fanout_run(struct al_run *r)
{
    run = r;
    expect_events = true;
    v2 = !strcmp(r->o.scenario, "fanout.v2");
    op = al_run_op(r, "fanout.delivery");
    al_hist_reset(&server_lag);
    char tid[40], rid[40], conf[256];
    snprintf(conf, sizeof conf, "{\"tokens\":%u,\"mode\":\"custom\",\"delay_ms\":%u}", r->o.tokens, r->o.delay_ms);
    uint64_t cpu0[2] = {0, 0}, cpu1[2] = {0, 0}, t0 = al_now();
    al_run_allocs_begin(r);
    sample_server(r, cpu0);
    if (make_run(r, conf, r->o.after_s, tid, rid) < 0) return -1;
    nindex = r->o.tokens ? r->o.tokens : 1;
    first_seen = calloc(nindex, sizeof *first_seen);
    t_first = t_last = t_subscribed = deliveries = server_lag_n = 0;
    open_subs(tid, rid);
    uint64_t hard = t0 + (uint64_t)(r->o.max_seconds * 1e9), idle = (uint64_t)(r->o.idle_stop * 1e9);
    bool aborted = false;
    while (ndone < nsubs) {
        uint64_t now = al_now();
        if (now >= hard || (t_last && now - t_last > idle)) {
            aborted = true;
            break;
        }
        al_conn_loop_poll(TICK_MS);
    }
    sample_server(r, cpu1);
    al_run_allocs_end(r);
    if (aborted && !r->o.quiet)
        fprintf(stderr, "agentload: fanout stopped by the %s with %u of %u subscribers done\n",
                al_now() >= hard ? "time limit" : "idle limit", ndone, nsubs);
    for (unsigned i = 0; i < nsubs; i++)
        if (!subs[i].done && subs[i].ok200 && subs[i].frames < r->o.tokens) r->ops[op].err[AL_E_TIMEOUT]++;
    r->ops[op].failed = nsubs - ncomplete;
    r->mode = "fanout";
    r->t_window = t_first;
    r->t_end = t_last > t_first ? t_last : t_first + 1;
    r->cpu_ns = cpu1[0] - cpu0[0];
    r->aux_cpu_ns = cpu1[1] - cpu0[1];
    r->tasks = deliveries;
    r->cpu_per = "delivery";
    double span = (double)(r->t_end - r->t_window) / 1e9;
    al_run_extra(r, "subscribers", nsubs, 0);
    al_run_extra(r, "subscribed_200", n200, 0);
    al_run_extra(r, "complete_subscribers", ncomplete, 0);
    al_run_extra(r, "deliveries", (double)deliveries, 0);
    al_run_extra(r, "deliveries_expected", (double)nsubs * r->o.tokens, 0);
    al_run_extra(r, "deliveries_per_s", span > 0 ? (double)deliveries / span : 0, 0);
    al_run_extra(r, "span_s", span, 3);
    al_run_extra(r, "subscribed_s", t_subscribed ? (double)(t_subscribed - t0) / 1e9 : -1, 3);
    al_run_extra(r, "first_event_s", t_first ? (double)(t_first - t0) / 1e9 : -1, 3);
    al_run_extra(r, "late_subscribers", t_first && (!t_subscribed || t_subscribed > t_first), 0);
    al_run_extra(r, "deliveries_per_read",
                 al_conn_totals()->reads ? (double)deliveries / (double)al_conn_totals()->reads : 0, 1);
    al_run_extra(r, "timed_out", aborted, 0);
    if (server_lag_n) {
        al_run_extra(r, "server_lag_p50_ms", (double)al_hist_percentile(&server_lag, 50) / 1e6, 2);
        al_run_extra(r, "server_lag_p99_ms", (double)al_hist_percentile(&server_lag, 99) / 1e6, 2);
        al_run_extra(r, "server_lag_max_ms", (double)server_lag.max / 1e6, 2);
    }
    close_subs();
    free(first_seen);
    first_seen = NULL;
    return n200 ? 0 : -1;
}

int al_sse_idle_run(struct al_run *r)
{
    run = r;
    expect_events = false;
    v2 = false;
    op = al_run_op(r, "sse.subscribe");
    char tid[40], rid[40];
    unsigned after = (unsigned)(r->o.hold + r->o.max_seconds + 60);
    if (make_run(r, "{\"tokens\":1,\"mode\":\"custom\",\"delay_ms\":0}", after, tid, rid) < 0) return -1;
    nindex = 1;
    first_seen = calloc(1, sizeof *first_seen);
    uint64_t rss0 = 0, hwm0 = 0, rss1 = 0, hwm1 = 0, t0 = al_now(), cpu0[2] = {0, 0}, cpu1[2] = {0, 0};
    if (r->have_proc) al_proc_mem_kib(&r->proc, &rss0, &hwm0);
    sample_server(r, cpu0);
    open_subs(tid, rid);
    uint64_t hard = t0 + (uint64_t)(r->o.max_seconds * 1e9);
    while (n200 + ndone < nsubs && al_now() < hard)
        al_conn_loop_poll(TICK_MS);
    uint64_t t_up = al_now();
    uint64_t hold_until = t_up + (uint64_t)(r->o.hold * 1e9);
    while (al_now() < hold_until)
        al_conn_loop_poll(TICK_MS);
    if (r->have_proc) al_proc_mem_kib(&r->proc, &rss1, &hwm1);
    sample_server(r, cpu1);
    unsigned open_now = 0;
    for (unsigned i = 0; i < nsubs; i++)
        open_now += subs[i].ok200 && !subs[i].done;
    struct al_op_stats *st = &r->ops[op];
    st->ok = n200;
    st->status[200] = n200;
    st->failed = nsubs - n200;
    close_subs();
    char path[160];
    snprintf(path, sizeof path, "/threads/%s/runs/%s/cancel", tid, rid);
    al_sync_request(r, "POST", path, "{}", false, 10, NULL, 0);
    free(first_seen);
    first_seen = NULL;
    r->cpu_ns = cpu1[0] - cpu0[0];
    r->aux_cpu_ns = cpu1[1] - cpu0[1];
    r->tasks = n200;
    al_run_report_hold(r, "subscribers", "subscriber", "server_kib_per_subscriber",
                       nsubs, open_now, t0, t_up, rss0, rss1);
    return n200 ? 0 : -1;
}
