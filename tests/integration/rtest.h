/* The harness of the runtime test (test_runtime.c), in rtest.c: the test's own Postgres connection, its
 * assertions (each prints the case, what was expected and what was seen), a recording codec and sink,
 * a fake engine (runtime/engine.h) whose runs the test drives, and the runs the test creates. Everything
 * here runs on the one shard of the test, except db_val_ (any thread, one at a time). */
#ifndef RTEST_H
#define RTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "core/shard.h"
#include "runtime/engine.h"
#include "runtime/run.h"
#include "runtime/tlog.h"

/* Whose rows the test writes (no other owner sees them), and the graph only the fake engine has. */
#define OWNER "rtest"
#define GRAPH_ID "rtest-fake"

/* --- the test's connection (set by main) --- */

/* The test's own blocking connection: set-up, and the checks of what is stored (the shard blocks on it:
 * acceptable in a test, never in the server). */
extern PGconn *db;
/* The assistant of the fake engine's graph that main stores. */
extern char assistant_id[64];

/* The first value of the first row of sql with params (NULL-terminated), as text in one of a few
 * rotating buffers: "(no row)" or "(null)" when there is none. A failed statement fails the test. */
const char *db_val_(int line, const char *sql, const char *const *params);
#define DB(sql, ...) db_val_(__LINE__, sql, (const char *const[]){__VA_ARGS__, NULL})
/* A thread of the test's owner, stored. */
void thread_new(char out[37]);

/* --- assertions: the case, what was expected and what was seen --- */

/* The checks and failures counted in rtest.c (its assertions and DB): tests/unit/check.h's counters are
 * static, one pair per file, so main adds these to its own tally. */
void rtest_tally(int *checks, int *failures);
/* The case that runs (in every failure message). */
extern const char *case_name;
void expect_str_(int line, const char *what, const char *want, const char *seen);
void expect_int_(int line, const char *what, long long want, long long seen);
void expect_contains_(int line, const char *what, const char *part, const char *seen);
/* What was seen (JSON text, NULL: nothing; or with by_value a value, NULL: JSON null) equals the JSON
 * text want. */
void expect_json_(int line, const char *what, const char *want, const char *seen_text, const json_t *seen,
                  bool by_value);
#define EXPECT_STR(what, want, seen) expect_str_(__LINE__, what, want, seen)
#define EXPECT_INT(what, want, seen) expect_int_(__LINE__, what, want, seen)
#define EXPECT_CONTAINS(what, part, seen) expect_contains_(__LINE__, what, part, seen)
#define EXPECT_JSON_TEXT(what, want, text) expect_json_(__LINE__, what, want, text, NULL, false)
#define EXPECT_JSON(what, want, value) expect_json_(__LINE__, what, want, NULL, value, true)

/* The name of an admission outcome ("ADMITTED", ...). */
const char *admit_name(enum ag_run_admit a);

/* --- the recording codec and sink --- */

/* v1 events as "event\nDATA\nid"; v2 log events as "method\nDATA\nseq". */
extern const struct ag_run_codec rec_codec;
extern const struct ag_tlog_codec rec_tlog_codec;

struct rec_sink {
    struct ag_run_sink k;
    int ends;         /* on_end calls */
    char end_run[37]; /* the run on_end named ("" for NULL: a thread sink's stream is over) */
};
/* A rec_sink's ops: every event goes to recs, every end is counted. */
extern const struct ag_run_sink_ops rec_ops;

/* Every event any sink got, in the order they came. */
struct rec {
    const struct rec_sink *sink;
    char run_id[37];
    uint64_t id;
    char *frame; /* as the codec made it */
};
extern struct rec *recs;
extern size_t nrecs;

/* The names of the events k got (of run_id only, unless NULL), comma-separated. */
const char *sink_events(const struct rec_sink *k, const char *run_id);
/* The data of the last event named event that k got, or NULL. */
const char *sink_data(const struct rec_sink *k, const char *event);

/* --- the fake engine --- */

/* A run of the fake engine: what start was given, and what the test made it report. */
struct fake_run {
    struct ag_engine_host h;
    char run_id[37], thread_id[37];
    json_t *input, *command, *from, *metadata; /* copies of start's params (NULL: none) */
    int order;                                 /* 0, 1, ...: its place among every start of the fake engine */
    int step;                                  /* the last step it reported */
    char cp_id[37];                            /* its last checkpoint ("": none yet) */
    json_t *values;                            /* its state */
    int cancels;                               /* cancel calls */
    int frees;                                 /* free calls */
    int proceeds;                              /* proceed calls (the host lifted its hold) */
    bool done_queued;                          /* its on_done waits in done_task */
    bool ended;                                /* on_done was called */
    enum ag_graph_outcome outcome;
    char error[64];
    char interrupt_id[33], task_id[37];
    struct ag_task done_task;
};
#define FAKES_MAX 64
extern struct fake_run *fakes[FAKES_MAX]; /* every run it started, in order */
extern int nfakes, fake_refusals;         /* runs started; starts refused */
extern const struct ag_engine fake_engine;

/* The run ends with outcome in a later task (as a worker's answer arrives), unless it has ended. */
void fake_end_later(struct fake_run *f, enum ag_graph_outcome outcome, const char *error);
/* One step of node: its update, the state after it, its checkpoint. */
void fake_step(struct fake_run *f, const char *node, json_t *update);
/* Node "ask" interrupts with question: the interrupt, the checkpoint that holds it, then the end. */
void fake_interrupt(struct fake_run *f, const char *question);
/* The whole engine fails (its worker died): every run of it not ended ends with error. */
void fake_fail_all(const char *error);
/* The host holds f's next step back (durability "sync": a checkpoint not written yet). */
bool fake_held(const struct fake_run *f);
/* The fake run of run_id, or NULL. */
struct fake_run *fake_of(const char *run_id);

/* --- runs the test creates --- */

struct trun {
    const char *name; /* "A", "B", ... in messages */
    bool told;        /* the creator was told */
    enum ag_run_admit result;
    char detail[160];
    char run_id[37];
    struct ag_run *run;   /* admitted: the run (valid while it is in memory: the whole test) */
    char json_status[16]; /* the Run object it was told ("" when none) */
    char json_mt[16];
    struct rec_sink sink; /* follows the run from its creation */
};

struct run_opts {
    enum ag_mt mt;
    enum ag_run_reply how;
    const char *input;     /* JSON text (NULL: none) */
    const char *command;   /* JSON text (NULL: none) */
    const char *assistant; /* NULL: the test's assistant */
    enum ag_durability durability;
};

/* Asks the runtime for run r on thread thread_id, the way protocol/agent/run_sinks.c does. */
void run_create(struct trun *r, const char *name, const char *thread_id, const struct run_opts *o);
/* The engine started r. */
bool started(const struct trun *r);
/* r's sink saw its end. */
bool ended(const struct trun *r);
/* The run's stored status. */
const char *stored_status(const struct trun *r);
/* The thread's stored status. */
const char *thread_status(const char *thread_id);

#endif
