#include <stdio.h>
#include <string.h>

#include "jscan.h"
#include "ops.h"

#define REQ_MAX (256 * 1024)

bool al_ops_capture_threads;

static char req[REQ_MAX];
static char body[REQ_MAX - 4096];

static void send_req(struct al_worker *w, const char *method, const char *path, const char *b)
{
    size_t n = al_run_request(w->run, req, sizeof req, method, path, b, NULL);
    al_worker_send(w, false, req, n);
}

static bool is_2xx(int s)
{
    return s >= 200 && s < 300;
}

/* Ends the task from a plain request/response: its status, and err -1 or `bad` when the kept body
 * fails the check. */
static void finish(struct al_worker *w, struct al_resp *r, bool body_ok)
{
    if (!is_2xx(r->status))
        al_task_done(w, r->status, -1);
    else
        al_task_done(w, r->status, body_ok ? -1 : AL_E_BODY);
}

/* --- ok --- */

static void ok_start(struct al_worker *w)
{
    send_req(w, "GET", "/ok", NULL);
}

static void ok_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    finish(w, r, true);
}

const struct al_op al_op_ok = {.name = "ok", .start = ok_start, .on_done = ok_done};

/* --- threads.create --- */

static void tc_start(struct al_worker *w)
{
    send_req(w, "POST", "/threads", "{}");
}

static void tc_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    char id[40];
    bool ok = w->body && al_jscan_str(w->body, w->blen, "thread_id", id, sizeof id);
    if (ok && is_2xx(r->status) && al_ops_capture_threads) al_pool_add(w->run, id);
    finish(w, r, ok);
}

const struct al_op al_op_threads_create = {.name = "threads.create", .start = tc_start, .on_done = tc_done};

/* --- threads.search --- */

static void ts_start(struct al_worker *w)
{
    send_req(w, "POST", "/threads/search", "{\"limit\":10}");
}

static void ts_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    finish(w, r, w->blen && w->body[0] == '[');
}

const struct al_op al_op_threads_search = {.name = "threads.search", .start = ts_start, .on_done = ts_done};

/* --- runs.wait / runs.stream --- */

static const char *run_body(struct al_worker *w, bool stream)
{
    const struct al_opts *o = &w->run->o;
    int n = snprintf(body, sizeof body, "{\"assistant_id\":\"%s\",\"input\":%s%s%s%s%s}", w->run->assistant, o->input,
                     o->config ? ",\"config\":" : "", o->config ? o->config : "", stream ? ",\"stream_mode\":" : "",
                     stream ? o->stream_mode : "");
    return (n > 0 && (size_t)n < sizeof body) ? body : "{}";
}

static void rw_start(struct al_worker *w)
{
    char path[128];
    snprintf(path, sizeof path, "/threads/%s/runs/wait", w->thread_id);
    send_req(w, "POST", path, run_body(w, false));
}

static void rw_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    finish(w, r, w->blen > 1 && !al_jscan_has(w->body, w->blen, "\"__error__\""));
}

const struct al_op al_op_runs_wait = {.name = "runs.wait", .start = rw_start, .on_done = rw_done, .uses_pool = true};

/* runs.stream: flag_a = an `error` event or an `end` that is not success; phase = frames seen. */
static void rs_frame(void *ud, const struct al_sse_frame *f)
{
    struct al_worker *w = ud;
    w->phase++;
    if (f->event_len == 5 && !memcmp(f->event, "error", 5))
        w->flag_a = true;
    else if (f->event_len == 3 && !memcmp(f->event, "end", 3) && !al_jscan_has(f->data, f->data_len, "success"))
        w->flag_a = true;
}

static void rs_start(struct al_worker *w)
{
    char path[128];
    snprintf(path, sizeof path, "/threads/%s/runs/stream", w->thread_id);
    al_sse_free(&w->sse);
    send_req(w, "POST", path, run_body(w, true));
}

static void rs_body(struct al_worker *w, bool aux, const char *p, size_t n)
{
    if (w->status != 200)
        al_worker_keep_body(w, p, n);
    else if (al_sse_feed(&w->sse, p, n, rs_frame, w) < 0)
        w->flag_b = true;
}

static void rs_done(struct al_worker *w, bool aux, struct al_resp *r)
{
    if (w->flag_b)
        al_task_done(w, r->status, AL_E_PARSE);
    else
        finish(w, r, w->phase > 0 && !w->flag_a);
}

const struct al_op al_op_runs_stream = {
    .name = "runs.stream", .start = rs_start, .on_body = rs_body, .on_done = rs_done, .uses_pool = true};

/* --- lookup, pool --- */

const struct al_op *al_op_find(const char *name)
{
    static const struct al_op *const all[] = {&al_op_ok,        &al_op_threads_create, &al_op_threads_search,
                                              &al_op_runs_wait, &al_op_runs_stream,    &al_op_v2_session};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

int al_ops_fill_pool(struct al_run *r, unsigned n)
{
    if (r->pool_n >= n) return 0;
    struct al_phase ph = {
        .ops = {&al_op_threads_create},
        .weight = {1},
        .stat = {al_run_op(r, "setup.threads")},
        .nops = 1,
        .conns = 32,
        .count = n - r->pool_n,
        .timeout = 60,
        .max_seconds = 600,
        .quiet = r->o.quiet,
    };
    al_ops_capture_threads = true;
    int rc = al_drive(r, &ph);
    al_ops_capture_threads = false;
    /* The setup op is not part of the report. */
    r->nops--;
    if (rc < 0 || r->pool_n < n) {
        fprintf(stderr, "agentload: created %u of %u pool threads\n", r->pool_n, n);
        return -1;
    }
    return 0;
}
