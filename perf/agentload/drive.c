#include "drive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 10 /* the loop wakes at least this often to check deadlines */
#define QUEUE_MAX (1u << 20)
#define ERRORS_SHOWN 5

/* The phase being driven (al_drive is not reentrant: one phase at a time). */
static struct al_run *run;
static struct al_phase *ph;
static struct al_worker *workers, *idle_head;
static uint64_t *arrivals; /* open loop: ring of arrival times waiting for a worker */
static unsigned q_head, q_len;
static unsigned opening, busy_count;
static uint64_t last_done;
static unsigned errors_shown;

static struct al_worker *owner_of(struct al_conn *c, bool *aux)
{
    struct al_worker *w = c->owner;
    *aux = c == &w->aux;
    return w;
}

static void on_open(struct al_conn *c)
{
    (void)c;
    if (opening) opening--;
}

static void on_head(struct al_conn *c, struct al_resp *r)
{
    bool aux;
    struct al_worker *w = owner_of(c, &aux);
    w->status = r->status;
    const struct al_op *op = ph->ops[w->op];
    if (w->busy && op->on_head) op->on_head(w, aux, r);
}

static void on_body(struct al_conn *c, const char *p, size_t n)
{
    bool aux;
    struct al_worker *w = owner_of(c, &aux);
    const struct al_op *op = ph->ops[w->op];
    if (!w->busy) return;
    if (op->on_body)
        op->on_body(w, aux, p, n);
    else
        al_worker_keep_body(w, p, n);
}

static void on_done(struct al_conn *c, struct al_resp *r)
{
    bool aux;
    struct al_worker *w = owner_of(c, &aux);
    if (w->busy) ph->ops[w->op]->on_done(w, aux, r);
}

static void on_error(struct al_conn *c, const char *what)
{
    bool aux;
    struct al_worker *w = owner_of(c, &aux);
    bool connecting = c->resp.state == AL_RESP_HEAD && c->responses == 0 && !strncmp(what, "connect", 7);
    if (opening && !w->busy && connecting) opening--;
    if (!ph->quiet && errors_shown < ERRORS_SHOWN && (w->busy || connecting)) {
        errors_shown++;
        fprintf(stderr, "agentload: connection error: %s%s\n", what,
                errors_shown == ERRORS_SHOWN ? " (further errors not shown)" : "");
    }
    if (w->busy) al_task_done(w, 0, connecting ? AL_E_CONNECT : AL_E_CLOSED);
}

static const struct al_conn_ops conn_ops = {on_open, on_head, on_body, on_done, on_error};

void al_worker_keep_body(struct al_worker *w, const char *p, size_t n)
{
    if (w->blen >= AL_BODY_MAX) return;
    if (n > AL_BODY_MAX - w->blen) n = AL_BODY_MAX - w->blen;
    if (w->blen + n + 1 > w->bcap) {
        size_t cap = w->bcap ? w->bcap : 4096;
        while (cap < w->blen + n + 1)
            cap *= 2;
        w->body = realloc(w->body, cap);
        w->bcap = cap;
    }
    memcpy(w->body + w->blen, p, n);
    w->blen += n;
    w->body[w->blen] = 0;
}

void al_worker_send(struct al_worker *w, bool aux, const char *req, size_t len)
{
    struct al_conn *c = aux ? &w->aux : &w->conn;
    w->blen = 0;
    if (c->state == AL_CONN_CLOSED) al_conn_open(c);
    al_conn_request(c, req, len);
}

static void push_idle(struct al_worker *w)
{
    w->next_idle = idle_head;
    idle_head = w;
}

static void record(unsigned op, bool measured, int status, int err, uint64_t t_sched, uint64_t now)
{
    struct al_op_stats *s = &run->ops[ph->stat[op]];
    if (!measured) {
        s->warm++;
        return;
    }
    if (status > 0 && status < 600) s->status[status]++;
    if (err < 0 && status >= 200 && status < 300) {
        s->ok++;
        al_hist_record(&s->lat, now - t_sched);
    } else {
        s->failed++;
        if (err >= 0) s->err[err]++;
    }
    if (now > last_done) last_done = now;
}

void al_task_done(struct al_worker *w, int status, int err)
{
    if (!w->busy) return;
    uint64_t now = al_now();
    record(w->op, w->measured, status, err, w->t_sched, now);
    if (w->pool_slot >= 0) al_pool_give(run, w->pool_slot);
    w->pool_slot = -1;
    /* A connection still inside a response, or one that failed, cannot carry the next task. */
    if (err >= 0 || w->conn.awaiting) al_conn_close(&w->conn);
    if (w->aux.state != AL_CONN_CLOSED) al_conn_close(&w->aux);
    w->busy = false;
    busy_count--;
    push_idle(w);
}

static unsigned pick_op(void)
{
    if (ph->nops == 1) return 0;
    unsigned total = 0;
    for (unsigned i = 0; i < ph->nops; i++)
        total += ph->weight[i];
    unsigned x = (unsigned)(al_run_rand() % total);
    for (unsigned i = 0; i < ph->nops; i++) {
        if (x < ph->weight[i]) return i;
        x -= ph->weight[i];
    }
    return 0;
}

static void start_task(struct al_worker *w, uint64_t t_sched, uint64_t now)
{
    w->busy = true;
    busy_count++;
    w->op = pick_op();
    w->t_sched = t_sched;
    w->t_start = now;
    w->measured = t_sched >= ph->t_window;
    if (w->measured) ph->measured_started++;
    w->phase = 0;
    w->status = 0;
    w->flag_a = w->flag_b = false;
    w->blen = 0;
    w->pool_slot = -1;
    const struct al_op *op = ph->ops[w->op];
    if (op->uses_pool) {
        w->pool_slot = al_pool_take(run);
        if (w->pool_slot < 0) {
            al_task_done(w, 0, AL_E_POOL);
            return;
        }
        snprintf(w->thread_id, sizeof w->thread_id, "%s", run->pool_ids[w->pool_slot]);
    }
    op->start(w);
}

static void check_timeouts(uint64_t now)
{
    uint64_t limit = (uint64_t)(ph->timeout * 1e9);
    for (unsigned i = 0; i < ph->conns; i++) {
        struct al_worker *w = &workers[i];
        if (w->busy && now - w->t_start > limit) {
            if (!ph->quiet && errors_shown < ERRORS_SHOWN) {
                errors_shown++;
                fprintf(stderr, "agentload: %s timed out after %.1f s\n", ph->ops[w->op]->name, ph->timeout);
            }
            al_task_done(w, w->status, AL_E_TIMEOUT);
        }
    }
}

static bool measured_quota_reached(void)
{
    return ph->count && ph->measured_started >= ph->count;
}

int al_drive(struct al_run *r, struct al_phase *p)
{
    run = r;
    ph = p;
    idle_head = NULL;
    q_head = q_len = 0;
    busy_count = 0;
    last_done = 0;
    errors_shown = 0;
    ph->measured_started = 0;
    ph->aborted = false;
    workers = calloc(ph->conns, sizeof *workers);
    bool open_loop = ph->rate > 0;
    if (open_loop) arrivals = malloc(QUEUE_MAX * sizeof *arrivals);

    /* Open every connection before the clock starts. */
    uint64_t t_open = al_now();
    opening = ph->conns;
    for (unsigned i = 0; i < ph->conns; i++) {
        struct al_worker *w = &workers[i];
        w->run = run;
        w->ph = ph;
        w->idx = i;
        w->pool_slot = -1;
        al_conn_init(&w->conn, &conn_ops, w);
        al_conn_init(&w->aux, &conn_ops, w);
        al_sse_init(&w->sse);
        al_conn_open(&w->conn);
    }
    while (opening && al_now() - t_open < 30 * 1000000000ull)
        al_conn_loop_poll(TICK_MS);
    unsigned up = 0;
    for (unsigned i = 0; i < ph->conns; i++)
        up += workers[i].conn.state == AL_CONN_OPEN;
    int rc = 0;
    if (!up) {
        fprintf(stderr, "agentload: could not open any connection to %s\n", run->o.url);
        rc = -1;
        goto out;
    }
    for (unsigned i = ph->conns; i-- > 0;)
        push_idle(&workers[i]);

    uint64_t t0 = al_now();
    uint64_t warm_ns = (uint64_t)(ph->warmup * 1e9);
    ph->t_window = t0 + warm_ns;
    uint64_t t_stop = ph->count ? UINT64_MAX : ph->t_window + (uint64_t)(ph->duration * 1e9);
    uint64_t hard = t0 + (uint64_t)(ph->max_seconds * 1e9);
    uint64_t period = open_loop ? (uint64_t)(1e9 / ph->rate) : 0;
    if (open_loop && !period) period = 1;
    uint64_t next_arrival = t0, generated_measured = 0, last_check = t0, cpu0 = 0, aux0 = 0;
    bool scheduling = true, in_window = false;
    bool sample = ph->sample_server && run->have_proc;

    for (;;) {
        uint64_t now = al_now();
        if (!in_window && now >= ph->t_window) {
            in_window = true;
            if (sample) {
                al_run_allocs_begin(run);
                cpu0 = al_proc_cpu_ns(&run->proc);
            }
            if (ph->sample_server && run->have_aux) aux0 = al_proc_cpu_ns(&run->aux);
        }
        if (now >= hard) {
            ph->aborted = true;
            if (!ph->quiet)
                fprintf(stderr, "agentload: stopped by the %.0f s limit with %u tasks in flight\n", ph->max_seconds,
                        busy_count);
            break;
        }
        if (scheduling &&
            (now >= t_stop || measured_quota_reached() || (open_loop && ph->count && generated_measured >= ph->count)))
            scheduling = false;
        if (open_loop) {
            while (scheduling && next_arrival <= now && !(ph->count && generated_measured >= ph->count) &&
                   next_arrival < t_stop) {
                if (q_len < QUEUE_MAX) {
                    arrivals[(q_head + q_len) % QUEUE_MAX] = next_arrival;
                    q_len++;
                } else if (next_arrival >= ph->t_window) {
                    run->ops[ph->stat[0]].failed++;
                    run->ops[ph->stat[0]].err[AL_E_OVERLOAD]++;
                }
                if (next_arrival >= ph->t_window) generated_measured++;
                next_arrival += period;
            }
            uint64_t limit = (uint64_t)(ph->timeout * 1e9);
            while (q_len && idle_head) {
                uint64_t ts = arrivals[q_head];
                q_head = (q_head + 1) % QUEUE_MAX;
                q_len--;
                if (now - ts > limit) {
                    if (ts >= ph->t_window) {
                        run->ops[ph->stat[0]].failed++;
                        run->ops[ph->stat[0]].err[AL_E_OVERLOAD]++;
                    }
                    continue;
                }
                struct al_worker *w = idle_head;
                idle_head = w->next_idle;
                start_task(w, ts, now);
            }
        } else {
            /* At most one start per worker per turn: a task that fails at once (no pool thread) must not
             * spin here. */
            for (unsigned k = 0; k < ph->conns && scheduling && idle_head && !measured_quota_reached(); k++) {
                struct al_worker *w = idle_head;
                idle_head = w->next_idle;
                start_task(w, now, now);
            }
        }
        if (now - last_check >= TICK_MS * 1000000ull) {
            check_timeouts(now);
            last_check = now;
        }
        if (!scheduling && !busy_count && !q_len) break;
        int wait = TICK_MS;
        if (open_loop && scheduling) {
            uint64_t d = next_arrival > now ? next_arrival - now : 0;
            int ms = (int)((d + 999999) / 1000000);
            if (ms < wait) wait = ms;
        }
        if (idle_head && scheduling && !open_loop) wait = 0;
        al_conn_loop_poll(wait);
    }
    ph->t_end = last_done ? last_done : al_now();
    if (sample) {
        run->cpu_ns = al_proc_cpu_ns(&run->proc) - cpu0;
        al_run_allocs_end(run);
    }
    if (ph->sample_server && run->have_aux) run->aux_cpu_ns = al_proc_cpu_ns(&run->aux) - aux0;

out:
    for (unsigned i = 0; i < ph->conns; i++) {
        al_conn_close(&workers[i].conn);
        al_conn_close(&workers[i].aux);
        al_sse_free(&workers[i].sse);
        free(workers[i].body);
        if (workers[i].pool_slot >= 0) al_pool_give(run, workers[i].pool_slot);
    }
    free(workers);
    workers = NULL;
    if (open_loop) free(arrivals);
    arrivals = NULL;
    return rc;
}
