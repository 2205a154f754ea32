#include <stdio.h>
#include <string.h>

#include "hist.h"
#include "jscan.h"
#include "ops.h"
#include "run.h"

/* v2.session progress: phase bit 1 = the stream answered 200 and run.start was sent, bit 2 = the
 * command answered success; flag_a = the root terminal lifecycle arrived, flag_b = it was not
 * `completed`. */
#define P_STREAM 1
#define P_COMMAND 2

static char req[64 * 1024];
static char body[60 * 1024];

/* Every frame the sessions' streams deliver: how many, when the first and last came, and the lag of
 * each from the server's params.timestamp (same machine, wall clock). */
static uint64_t deliveries, lag_n;
static double t_first_ms, t_last_ms;
static struct al_hist lag;

static void maybe_finish(struct al_worker *w)
{
    if ((w->phase & P_COMMAND) && w->flag_a) al_task_done(w, 200, w->flag_b ? AL_E_BODY : -1);
}

static void v2_start(struct al_worker *w)
{
    char path[128];
    al_run_uuid(w->thread_id);
    al_sse_free(&w->sse);
    snprintf(path, sizeof path, "/threads/%s/stream/events", w->thread_id);
    snprintf(body, sizeof body, "{\"channels\":%s}", w->run->o.channels);
    size_t n = al_run_request(w->run, req, sizeof req, "POST", path, body, NULL);
    al_worker_send(w, true, req, n);
}

static void send_run_start(struct al_worker *w)
{
    const struct al_opts *o = &w->run->o;
    char path[128];
    snprintf(path, sizeof path, "/threads/%s/commands", w->thread_id);
    int k = snprintf(body, sizeof body,
                     "{\"id\":1,\"method\":\"run.start\",\"params\":{\"assistant_id\":\"%s\",\"input\":%s%s%s}}",
                     w->run->assistant, o->input, o->config ? ",\"config\":" : "", o->config ? o->config : "");
    if (k < 0 || (size_t)k >= sizeof body) {
        al_task_done(w, 0, AL_E_BODY);
        return;
    }
    size_t n = al_run_request(w->run, req, sizeof req, "POST", path, body, NULL);
    al_worker_send(w, false, req, n);
}

static void v2_head(struct al_worker *w, bool aux, struct al_resp *r)
{
    if (!aux) return;
    if (r->status != 200) {
        al_task_done(w, r->status, -1);
        return;
    }
    w->phase |= P_STREAM;
    send_run_start(w);
}

static void v2_frame(void *ud, const struct al_sse_frame *f)
{
    struct al_worker *w = ud;
    if (!w->busy || w->flag_a) return;
    double now = al_wall_ms(), ts;
    if (!deliveries++) t_first_ms = now;
    t_last_ms = now;
    if (al_jscan_num(f->data, f->data_len, "timestamp", &ts) && ts > 1e12) {
        al_hist_record(&lag, now > ts ? (uint64_t)((now - ts) * 1e6) : 0);
        lag_n++;
    }
    if (f->event_len != 9 || memcmp(f->event, "lifecycle", 9) ||
        !al_jscan_has(f->data, f->data_len, "\"namespace\":[]"))
        return;
    bool completed = al_jscan_has(f->data, f->data_len, "\"event\":\"completed\"");
    if (completed || al_jscan_has(f->data, f->data_len, "\"event\":\"failed\"") ||
        al_jscan_has(f->data, f->data_len, "\"event\":\"interrupted\"")) {
        w->flag_a = true;
        w->flag_b = !completed;
        maybe_finish(w);
    }
}

static void v2_body(struct al_worker *w, bool aux, const char *p, size_t n)
{
    if (!aux) {
        al_worker_keep_body(w, p, n);
        return;
    }
    if (al_sse_feed(&w->sse, p, n, v2_frame, w) < 0 && w->busy) al_task_done(w, 200, AL_E_PARSE);
}

static void v2_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    if (aux) { /* the server ended the stream before the run's terminal event */
        if (!w->flag_a) al_task_done(w, r->status, AL_E_CLOSED);
        return;
    }
    if (r->status != 200) {
        al_task_done(w, r->status, -1);
        return;
    }
    if (!w->body || !al_jscan_has(w->body, w->blen, "\"type\":\"success\"")) {
        al_task_done(w, r->status, AL_E_BODY);
        return;
    }
    w->phase |= P_COMMAND;
    maybe_finish(w);
}

const struct al_op al_op_v2_session = {
    .name = "v2.session", .start = v2_start, .on_head = v2_head, .on_body = v2_body, .on_done = v2_done};

void al_v2_report(struct al_run *r)
{
    double span_s = (t_last_ms - t_first_ms) / 1e3;
    al_run_extra(r, "deliveries", (double)deliveries, 0);
    al_run_extra(r, "deliveries_per_s", span_s > 0 ? (double)deliveries / span_s : 0, 0);
    if (lag_n) {
        al_run_extra(r, "server_lag_p50_ms", (double)al_hist_percentile(&lag, 50) / 1e6, 2);
        al_run_extra(r, "server_lag_p99_ms", (double)al_hist_percentile(&lag, 99) / 1e6, 2);
        al_run_extra(r, "server_lag_max_ms", (double)lag.max / 1e6, 2);
    }
}
