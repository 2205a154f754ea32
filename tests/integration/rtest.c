/* The runtime test's harness (rtest.h): the test's connection, assertions, the recording codec and sink,
 * the fake engine and the runs the test creates. */
#include "rtest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../unit/check.h"
#include "core/alloc.h"
#include "core/common.h"
#include "core/obuf.h"
#include "core/uuid.h"

PGconn *db;
char assistant_id[64];

/* check.h's counters are per file: main adds this file's to its own. */
void rtest_tally(int *checks, int *failures)
{
    *checks = check_count;
    *failures = check_failures;
}

/* --- the test's connection --- */

/* The first value of the first row of sql with params (NULL-terminated), as text in one of a few
 * rotating buffers: "(no row)" or "(null)" when there is none. A failed statement fails the test. */
const char *db_val_(int line, const char *sql, const char *const *params)
{
    static char bufs[4][1024];
    static unsigned next;
    char *out = bufs[next++ % 4];
    int n = 0;
    while (params[n])
        n++;
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        check_failures++;
        fprintf(stderr, "test_runtime.c:%d: SQL failed: %s\n  %s\n", line, PQresultErrorMessage(res), sql);
        snprintf(out, 1024, "(failed)");
    } else if (st == PGRES_COMMAND_OK || PQntuples(res) == 0) {
        snprintf(out, 1024, "(no row)");
    } else if (PQgetisnull(res, 0, 0)) {
        snprintf(out, 1024, "(null)");
    } else {
        snprintf(out, 1024, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return out;
}

/* A thread of the test's owner, stored. */
void thread_new(char out[37])
{
    ag_uuid4(out);
    DB("INSERT INTO threads (thread_id, owner) VALUES ($1, '" OWNER "')", out);
}

/* --- assertions: the case, what was expected and what was seen --- */

const char *case_name = "set-up";

void expect_str_(int line, const char *what, const char *want, const char *seen)
{
    check_count++;
    if (want && seen && !strcmp(want, seen))
        return;
    check_failures++;
    fprintf(stderr, "test_runtime.c:%d: [%s] %s:\n  expected: %s\n  seen:     %s\n", line, case_name, what,
            want ? want : "(null)", seen ? seen : "(null)");
}

void expect_int_(int line, const char *what, long long want, long long seen)
{
    char w[32], s[32];
    snprintf(w, sizeof w, "%lld", want);
    snprintf(s, sizeof s, "%lld", seen);
    expect_str_(line, what, w, s);
}

void expect_contains_(int line, const char *what, const char *part, const char *seen)
{
    char w[300];
    snprintf(w, sizeof w, "a text containing \"%s\"", part);
    expect_str_(line, what, w, seen && strstr(seen, part) ? w : seen);
}

/* What was seen (JSON text, NULL: nothing; or with by_value a value, NULL: JSON null) equals the JSON
 * text want. */
void expect_json_(int line, const char *what, const char *want, const char *seen_text, const json_t *seen,
                         bool by_value)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    json_t *s = by_value ? (seen ? json_incref((json_t *)seen) : json_null())
                         : seen_text ? json_loads(seen_text, JSON_DECODE_ANY, NULL) : NULL;
    char *ws = w ? json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *ss = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    expect_str_(line, what, ws ? ws : want, ss ? ss : seen_text ? seen_text : "(none)");
    ag_free(ws);
    ag_free(ss);
    json_decref(w);
    json_decref(s);
}

const char *admit_name(enum ag_run_admit a)
{
    static const char *const names[] = {
        [AG_RUN_ADMITTED] = "ADMITTED",         [AG_RUN_REJECTED_BUSY] = "REJECTED_BUSY",
        [AG_RUN_QUEUE_FULL] = "QUEUE_FULL",     [AG_RUN_NOT_SUBMITTED] = "NOT_SUBMITTED",
        [AG_RUN_NOT_STORED] = "NOT_STORED",     [AG_RUN_DB_FAILED] = "DB_FAILED",
        [AG_RUN_NO_ASSISTANT] = "NO_ASSISTANT", [AG_RUN_NO_THREAD] = "NO_THREAD",
        [AG_RUN_NO_CHECKPOINT] = "NO_CHECKPOINT", [AG_RUN_FOREIGN_BUSY] = "FOREIGN_BUSY",
    };
    return names[a];
}

/* --- the recording codec and sink --- */

/* An event as "event\nDATA\nid". */
static struct ag_obuf *rec_encode(const char *event, const char *data, size_t len, uint64_t id)
{
    char tail[24];
    size_t el = strlen(event), tl = (size_t)snprintf(tail, sizeof tail, "\n%" PRIu64, id);
    struct ag_obuf *b = ag_obuf_new((uint32_t)(el + 1 + len + tl));
    memcpy(b->data, event, el);
    b->data[el] = '\n';
    memcpy(b->data + el + 1, data, len);
    memcpy(b->data + el + 1 + len, tail, tl);
    b->len = (uint32_t)(el + 1 + len + tl);
    return b;
}

const struct ag_run_codec rec_codec = {.encode = rec_encode};

/* v2 log events as "method\nDATA\nseq" (this test reads them from Postgres, not from these). */
static struct ag_obuf *rec_tlog_event(uint64_t seq, const char *method, const char *ns, const char *data, size_t dlen,
                                      uint64_t ts_ms)
{
    (void)ns;
    (void)ts_ms;
    return rec_encode(method, data, dlen, seq);
}

const struct ag_tlog_codec rec_tlog_codec = {.event = rec_tlog_event};


struct rec *recs;
size_t nrecs;
static size_t reccap;

static void rec_event(struct ag_run_sink *k, const struct ag_run *run, uint64_t id, struct ag_obuf *frame)
{
    if (nrecs == reccap) {
        reccap = reccap ? reccap * 2 : 256;
        recs = ag_realloc(recs, reccap * sizeof *recs);
    }
    struct rec *r = &recs[nrecs++];
    r->sink = (const struct rec_sink *)k;
    snprintf(r->run_id, sizeof r->run_id, "%s", ag_run_id(run));
    r->id = id;
    r->frame = ag_strndup(frame->data, frame->len);
}

static void rec_end(struct ag_run_sink *k, struct ag_run *run)
{
    struct rec_sink *x = (struct rec_sink *)k;
    x->ends++;
    snprintf(x->end_run, sizeof x->end_run, "%s", run ? ag_run_id(run) : "");
}

const struct ag_run_sink_ops rec_ops = {.on_event = rec_event, .on_end = rec_end};

/* The event name of a frame, into out. */
static void frame_event(const char *frame, char *out, size_t n)
{
    size_t l = strcspn(frame, "\n");
    snprintf(out, n, "%.*s", (int)l, frame);
}

/* The names of the events k got (of run_id only, unless NULL), comma-separated. */
const char *sink_events(const struct rec_sink *k, const char *run_id)
{
    static char out[1024];
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < nrecs && n < sizeof out; i++) {
        if (recs[i].sink != k || (run_id && strcmp(recs[i].run_id, run_id)))
            continue;
        char ev[64];
        frame_event(recs[i].frame, ev, sizeof ev);
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "," : "", ev);
    }
    return out;
}

/* The data of the last event named event that k got, or NULL. */
const char *sink_data(const struct rec_sink *k, const char *event)
{
    static char out[2048];
    const char *found = NULL;
    for (size_t i = 0; i < nrecs; i++) {
        char ev[64];
        frame_event(recs[i].frame, ev, sizeof ev);
        if (recs[i].sink == k && !strcmp(ev, event))
            found = recs[i].frame;
    }
    if (!found)
        return NULL;
    const char *data = strchr(found, '\n') + 1, *end = strrchr(found, '\n');
    snprintf(out, sizeof out, "%.*s", (int)(end - data), data);
    return out;
}

/* --- the fake engine --- */

struct fake_run *fakes[FAKES_MAX];
int nfakes, fake_refusals;

static bool fake_find(const struct ag_engine *self, const char *graph_id, struct ag_engine_graph *out)
{
    if (strcmp(graph_id, GRAPH_ID))
        return false;
    *out = (struct ag_engine_graph){.engine = self, .impl = NULL};
    return true;
}

static json_t *copy_or_null(const json_t *v)
{
    return v ? json_deep_copy(v) : NULL;
}


/* Records the run and returns: its steps and its end come when the test says. An input with
 * "refuse": true is invalid for this graph (start fails, as for bad params); one with "end_at_start":
 * true ends (success) in a task queued by start. */
static struct ag_engine_run *fake_start(const struct ag_engine_graph *g, const struct ag_engine_host *h,
                                        const struct ag_engine_params *p, char *err, size_t errlen)
{
    if (json_is_true(json_object_get(p->input, "refuse"))) {
        fake_refusals++;
        snprintf(err, errlen, "the fake engine refuses this input");
        return NULL;
    }
    AG_BUG_ON(nfakes == FAKES_MAX);
    struct fake_run *f = ag_calloc(1, sizeof *f);
    f->h = *h;
    snprintf(f->run_id, sizeof f->run_id, "%s", p->run_id);
    snprintf(f->thread_id, sizeof f->thread_id, "%s", p->thread_id);
    f->input = copy_or_null(p->input);
    f->command = copy_or_null(p->command);
    f->from = copy_or_null(p->from);
    f->metadata = copy_or_null(p->metadata);
    const json_t *v = json_object_get(p->from, "values");
    f->values = json_is_object(v) ? json_deep_copy(v) : json_object();
    f->step = p->from ? (int)json_integer_value(json_object_get(p->from, "step")) : -1;
    f->order = nfakes;
    fakes[nfakes++] = f;
    if (json_is_true(json_object_get(p->input, "end_at_start")))
        fake_end_later(f, AG_GRAPH_SUCCESS, NULL);
    return (struct ag_engine_run *)f;
}

static void fake_done_task(struct ag_task *t)
{
    struct fake_run *f = AG_CONTAINER_OF(t, struct fake_run, done_task);
    f->done_queued = false;
    if (f->frees) /* freed meanwhile: the lifecycle no longer listens (the free is checked at the end) */
        return;
    f->ended = true;
    f->h.on_done(f->h.ud, f->outcome, f->outcome == AG_GRAPH_ERROR ? f->error : NULL);
}

/* The run ends with outcome in a later task (as a worker's answer arrives), unless it has ended. */
void fake_end_later(struct fake_run *f, enum ag_graph_outcome outcome, const char *error)
{
    if (f->ended || f->done_queued)
        return;
    f->outcome = outcome;
    snprintf(f->error, sizeof f->error, "%s", error ? error : "");
    f->done_queued = true;
    f->done_task.fn = fake_done_task;
    ag_shard_defer(f->h.shard, &f->done_task);
}

static void fake_cancel(struct ag_engine_run *r)
{
    struct fake_run *f = (struct fake_run *)r;
    f->cancels++;
    fake_end_later(f, AG_GRAPH_CANCELLED, NULL);
}

/* Kept for the checks (freed by main at the end): a run freed twice or before its end is a lifecycle bug. */
static void fake_free(struct ag_engine_run *r)
{
    ((struct fake_run *)r)->frees++;
}

static void fake_proceed(struct ag_engine_run *r)
{
    ((struct fake_run *)r)->proceeds++;
}

bool fake_held(const struct fake_run *f)
{
    return f->h.hold && f->h.hold(f->h.ud);
}

const struct ag_engine fake_engine = {.name = "fake",
                                      .find = fake_find,
                                      .start = fake_start,
                                      .cancel = fake_cancel,
                                      .proceed = fake_proceed,
                                      .free = fake_free};

static void fake_emit(struct fake_run *f, enum ag_graph_ev_kind kind, const char *node, json_t *data)
{
    struct ag_graph_event ev = {.kind = kind, .step = f->step, .node = node, .task_id = node ? f->task_id : NULL,
                                .data = data};
    f->h.on_event(f->h.ud, &ev);
    json_decref(data);
}

/* A checkpoint of the run's state (graph/engine.h's AG_GEV_CHECKPOINT shape). */
static json_t *fake_checkpoint(struct fake_run *f, json_t *next, json_t *tasks)
{
    const char *parent = f->cp_id[0] ? f->cp_id : json_string_value(json_object_get(f->from, "checkpoint_id"));
    ag_uuid7(f->cp_id); /* sorts in creation order: the lifecycle reads a thread's latest by id */
    json_t *md = f->metadata ? json_deep_copy(f->metadata) : json_object();
    json_object_set_new(md, "source", json_string("loop"));
    json_object_set_new(md, "step", json_integer(f->step));
    json_object_set_new(md, "parents", json_object());
    return json_pack("{s:s,s:s?,s:i,s:s,s:o,s:o,s:o,s:o}", "checkpoint_id", f->cp_id, "parent_checkpoint_id", parent,
                     "step", f->step, "source", "loop", "values", json_deep_copy(f->values), "next", next, "tasks",
                     tasks, "metadata", md);
}

/* One step of node: its update, the state after it, its checkpoint. */
void fake_step(struct fake_run *f, const char *node, json_t *update)
{
    f->step++;
    ag_uuid4(f->task_id);
    json_object_update(f->values, update);
    fake_emit(f, AG_GEV_UPDATES, node, json_pack("{s:o}", node, update));
    fake_emit(f, AG_GEV_VALUES, NULL, json_deep_copy(f->values));
    fake_emit(f, AG_GEV_CHECKPOINT, NULL, fake_checkpoint(f, json_array(), json_array()));
}

/* Node "ask" interrupts with question: the interrupt, the checkpoint that holds it, then the end
 * (interrupted) in a later task. */
void fake_interrupt(struct fake_run *f, const char *question)
{
    f->step++;
    ag_uuid4(f->task_id);
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != sizeof b)
        abort();
    for (int i = 0; i < 16; i++)
        snprintf(f->interrupt_id + 2 * i, 3, "%02x", b[i]);
    json_t *ints = json_pack("[{s:s,s:s}]", "value", question, "id", f->interrupt_id);
    fake_emit(f, AG_GEV_UPDATES, "ask", json_pack("{s:O}", "__interrupt__", ints));
    json_t *tasks = json_pack("[{s:s,s:s,s:n,s:O,s:[s,s],s:n,s:n,s:n}]", "id", f->task_id, "name", "ask", "error",
                              "interrupts", ints, "path", "__pregel_pull", "ask", "checkpoint", "state", "result");
    fake_emit(f, AG_GEV_CHECKPOINT, NULL, fake_checkpoint(f, json_pack("[s]", "ask"), tasks));
    json_decref(ints);
    fake_end_later(f, AG_GRAPH_INTERRUPTED, NULL);
}

/* The whole engine fails (its worker died): every run of it not ended ends with error. */
void fake_fail_all(const char *error)
{
    for (int i = 0; i < nfakes; i++)
        fake_end_later(fakes[i], AG_GRAPH_ERROR, error);
}

struct fake_run *fake_of(const char *run_id)
{
    for (int i = 0; i < nfakes; i++)
        if (!strcmp(fakes[i]->run_id, run_id))
            return fakes[i];
    return NULL;
}

/* --- runs the test creates --- */


static void on_created(void *ud, const struct ag_run_created *res)
{
    struct trun *r = ud;
    CHECKF(!r->told, "run %s: its creator was told twice", r->name);
    r->told = true;
    r->result = res->result;
    snprintf(r->detail, sizeof r->detail, "%s", res->detail ? res->detail : "");
    if (res->result != AG_RUN_ADMITTED)
        return;
    snprintf(r->run_id, sizeof r->run_id, "%s", ag_run_id(res->run));
    r->run = res->run;
    if (res->run_json) {
        json_t *j = json_loadb(res->run_json, res->run_json_len, 0, NULL);
        snprintf(r->json_status, sizeof r->json_status, "%s", json_string_value(json_object_get(j, "status")));
        snprintf(r->json_mt, sizeof r->json_mt, "%s", json_string_value(json_object_get(j, "multitask_strategy")));
        json_decref(j);
    }
    ag_run_replay(res->run, &r->sink.k, ag_run_first_event(res->run));
    CHECKF(!ag_run_done(res->run), "run %s: already ended when its creator was told", r->name);
    if (!ag_run_done(res->run))
        ag_run_watch(res->run, &r->sink.k, false);
}


/* Asks the runtime for run r on thread thread_id, the way protocol/agent/run_sinks.c does. */
void run_create(struct trun *r, const char *name, const char *thread_id, const struct run_opts *o)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->sink.k.ops = &rec_ops;
    struct ag_run_spec spec = {0};
    snprintf(spec.thread_id, sizeof spec.thread_id, "%s", thread_id);
    snprintf(spec.owner, sizeof spec.owner, "%s", OWNER);
    snprintf(spec.assistant_id, sizeof spec.assistant_id, "%s", o->assistant ? o->assistant : assistant_id);
    spec.input = o->input ? json_loads(o->input, 0, NULL) : NULL;
    spec.command = o->command ? json_loads(o->command, 0, NULL) : NULL;
    spec.stream_mode = json_pack("[s,s]", "values", "updates");
    spec.modes = AG_SM_VALUES | AG_SM_UPDATES;
    spec.durability = o->durability;
    spec.mt = o->mt; /* create_thread stays false: a thread that is not stored is refused */
    ag_run_create(&spec, o->how, on_created, r);
}

bool started(const struct trun *r)
{
    return r->told && r->run_id[0] && fake_of(r->run_id);
}

bool ended(const struct trun *r)
{
    return r->sink.ends > 0;
}

/* The run's stored status. */
const char *stored_status(const struct trun *r)
{
    return DB("SELECT status FROM runs WHERE run_id = $1", r->run_id);
}

const char *thread_status(const char *thread_id)
{
    return DB("SELECT status FROM threads WHERE thread_id = $1", thread_id);
}
