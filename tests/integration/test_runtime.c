/* The agent runtime (runtime/run.h) through its seams, against a real Postgres (DATABASE_URL) and
 * without HTTP or Node: a fake engine (runtime/engine.h) whose runs the test drives, a recording sink and
 * a recording codec. The fake engine's start only records what it was given; the test then reports
 * steps and ends from timers and deferred tasks on the shard, as a worker process would, and a cancel
 * completes later, not inside the call. The fakes, the recording sink and the assertions are the
 * harness in rtest.c (rtest.h); the cases, their driver and the set-up are here.
 *
 * One shard of the real shard runtime, with persist/pg and the run lifecycle, on a database of its own
 * (created here, dropped at the end) so that nothing else touches its rows. The cases run one after the
 * other from a timer on that shard; each is written as a straight line that waits (WAIT) until a
 * condition holds, with a deadline that fails the test and prints what the case saw. What is stored is
 * read back on a blocking connection of the test's own.
 *
 * Cases: admission with each multitask strategy (reject, enqueue and its order, interrupt, rollback),
 * runs.queue_max, an unknown assistant, an unknown thread, a thread busy on another process, cancel,
 * timeout, interrupt then resume, an engine that refuses a run, an engine that dies, a run written once
 * at its end, and lease recovery (at start-up and by the lease sweeper). Two more cases reproduce known
 * bugs of the runtime and run only with RTEST_KNOWN_BUGS=1 (see "KNOWN BUG" below).
 * Exit 77 without DATABASE_URL. */
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../unit/check.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "core/uuid.h"
#include "persist/migrate.h"
#include "persist/pg.h"
#include "runtime/engine.h"
#include "runtime/run.h"
#include "runtime/tlog.h"
#include "rtest.h"
#include "testdb.h"

/* How long one WAIT may take before the test fails, and how often the cases are looked at. */
#define WAIT_NS (15ull * 1000000000ull)
#define TICK_NS 1000000ull
/* How long the whole test may take before main stops the shard. */
#define TEST_DEADLINE_S 100

/* Each layer's settings, as a server would pass them (their defaults, but for what main sets). */
static struct ag_pg_config pg_cfg = AG_PG_CONFIG_DEFAULT;
static struct ag_run_limits run_lim = AG_RUN_LIMITS_DEFAULT;
static const struct ag_tlog_limits tlog_lim = AG_TLOG_LIMITS_DEFAULT;
/* The cases block the shard on their own connection: no stall report. */
static const struct ag_loop_config loop_cfg = {.stall_report_ms = 0, .work_per_turn = 256};
static char db_name[64];
static sem_t finished;

/* --- cases: straight lines that wait --- */

#define NRUNS 6

struct tcase {
    const char *name;
    bool (*fn)(struct tcase *c); /* true once the case is done */
    bool known_bug;              /* fails today: run only with RTEST_KNOWN_BUGS=1 */
    int at;                      /* the line of the WAIT the case resumes at (0: its start) */
    const char *waiting;         /* that WAIT's condition */
    uint64_t since_ns;           /* when the wait began */
    int i, n0;
    char tid[3][37];
    char keep[3][64]; /* ids and values the case needs after a WAIT */
    struct trun r[NRUNS];
    struct rec_sink ts; /* a thread sink */
};

/* A case function is called again on every tick and jumps back to the WAIT it stopped at (locals do
 * not survive a WAIT: what a case keeps lives in struct tcase). */
#define CASE_BEGIN(c)                                                                                                  \
    switch ((c)->at) {                                                                                                 \
    case 0:
#define CASE_END                                                                                                       \
    }                                                                                                                  \
    return true
#define WAIT(c, cond)                                                                                                  \
    do {                                                                                                               \
        (c)->at = __LINE__;                                                                                            \
        (c)->waiting = #cond;                                                                                          \
        (c)->since_ns = ag_shard_self()->now_ns;                                                                       \
        __attribute__((fallthrough));                                                                                  \
    case __LINE__:                                                                                                     \
        if (!(cond))                                                                                                   \
            return false;                                                                                              \
    } while (0)

/* Runs left "running" by dead agentd processes of this host, inserted by seed() below before the
 * start-up settlement (ag_run_settle_dead) ran: dead_gone's pid is a child of this test that exited
 * (reaped); dead_reused's pid is this process's, with another start time (the pid was reused). */
struct dead_proc {
    char boot[37], thread[37], run[37];
    long pid;
    const char *start; /* its start time as /proc/<pid>/stat field 22 would say */
};
static struct dead_proc dead_gone = {.start = "0"}, dead_reused = {.start = "1"};
static bool settle_possible;
/* This process's start time, /proc/self/stat field 22 (clock ticks after boot). */
static char self_start[24];

static void read_self_start(void)
{
    char buf[1024] = "";
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* comm may hold spaces: fields 3.. follow the last ')' */
    for (int field = 3; p && field <= 22; field++)
        p = strchr(p + 1, ' ');
    snprintf(self_start, sizeof self_start, "%llu", p ? strtoull(p + 1, NULL, 10) : 0ull);
}

/* Checks that dead's run was ended at start-up, with its thread. */
static void expect_settled(const struct dead_proc *dead)
{
    EXPECT_STR("the dead process's run, stored", "error", DB("SELECT status FROM runs WHERE run_id = $1", dead->run));
    EXPECT_CONTAINS("its error", "the run was ended at start-up",
                    DB("SELECT error FROM runs WHERE run_id = $1", dead->run));
    EXPECT_STR("its thread", "error", thread_status(dead->thread));
    EXPECT_STR("the dead process's row", "0",
               DB("SELECT count(*) FROM agentd_processes WHERE boot_id = $1", dead->boot));
}

/* Start-up: the database is up, and the runs of both dead processes were settled. */
static bool case_startup(struct tcase *c)
{
    CASE_BEGIN(c);
    WAIT(c, ag_pg_up(ag_shard_self()));
    if (!settle_possible) {
        fprintf(stderr, "test_runtime: no pid scope on this host (/proc): start-up settlement not checked\n");
        return true;
    }
    expect_settled(&dead_gone);
    expect_settled(&dead_reused);
    CASE_END;
}

/* KNOWN BUG (RTEST_KNOWN_BUGS=1): ag_run_settle_dead reads field 21 of /proc/<pid>/stat (itrealvalue,
 * always 0) as a process's start time, not field 22: every process registers pid_start 0 and reads 0
 * for any live pid, so a dead agentd whose pid another process now has is taken for alive (0 == 0) and
 * its runs wait for their lease. (dead_reused above is settled only because it was seeded with 1.) */
static bool case_startup_pid_start(struct tcase *c)
{
    CASE_BEGIN(c);
    snprintf(c->keep[0], sizeof c->keep[0], "%ld", (long)getpid());
    EXPECT_STR("this process's pid_start as registered (/proc/self/stat field 22)", self_start,
               DB("SELECT pid_start FROM agentd_processes WHERE pid = $1::int AND boot_id NOT IN ($2, $3)",
                  c->keep[0], dead_gone.boot, dead_reused.boot));
    CASE_END;
}

/* reject: a second run on a busy thread is refused at once; the first runs to its end. */
static bool case_reject(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.mt = AG_MT_REJECT, .input = "{\"n\":0}"});
    WAIT(c, started(a));
    EXPECT_STR("A's outcome", "ADMITTED", admit_name(a->result));
    EXPECT_STR("A's Run object: status", "pending", a->json_status);
    EXPECT_STR("A's Run object: multitask_strategy", "reject", a->json_mt);
    run_create(b, "B", c->tid[0], &(struct run_opts){.mt = AG_MT_REJECT, .input = "{\"n\":0}"});
    EXPECT_INT("B's creator told inside ag_run_create", 1, b->told);
    EXPECT_STR("B's outcome", "REJECTED_BUSY", admit_name(b->result));
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    fake_end_later(fake_of(a->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(a));
    EXPECT_STR("A's events", "metadata,updates,values,end", sink_events(&a->sink, NULL));
    EXPECT_JSON_TEXT("A's updates", "{\"work\":{\"n\":1}}", sink_data(&a->sink, "updates"));
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"success\"}", sink_data(&a->sink, "end"));
    EXPECT_STR("A, stored", "success", stored_status(a));
    EXPECT_JSON_TEXT("A's output, stored", "{\"n\":1}", DB("SELECT output FROM runs WHERE run_id = $1", a->run_id));
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    EXPECT_JSON_TEXT("the thread's values", "{\"n\":1}", DB("SELECT agentd_thread_values($1)::jsonb", c->tid[0]));
    EXPECT_STR("A's checkpoints, stored", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    CASE_END;
}

/* The run names (in c->r) of the events k got, consecutive repeats once: "A,B,...". */
static const char *sink_runs(const struct rec_sink *k, const struct tcase *c)
{
    static char out[256];
    size_t n = 0;
    const char *last = "";
    out[0] = 0;
    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].sink != k || !strcmp(recs[i].run_id, last))
            continue;
        last = recs[i].run_id;
        const char *name = "?";
        for (int j = 0; j < NRUNS; j++)
            if (c->r[j].name && !strcmp(c->r[j].run_id, last))
                name = c->r[j].name;
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "," : "", name);
    }
    return out;
}

/* enqueue: runs wait behind the active one and start in the order they were accepted; past
 * runs.queue_max (3 here) the next is refused at once. A thread sink follows every run in turn. */
static bool case_enqueue(struct tcase *c)
{
    static const char *const names[] = {"A", "B", "C", "D", "E"};
    struct trun *a = &c->r[0];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    c->ts.k.ops = &rec_ops;
    ag_run_thread_watch(c->tid[0], &c->ts.k, NULL, 0);
    run_create(a, "A", c->tid[0], &(struct run_opts){.mt = AG_MT_ENQUEUE, .input = "{\"n\":0}"});
    WAIT(c, started(a));
    for (int i = 1; i <= 4; i++)
        run_create(&c->r[i], names[i], c->tid[0], &(struct run_opts){.mt = AG_MT_ENQUEUE, .input = "{\"n\":0}"});
    EXPECT_INT("E's creator told inside ag_run_create", 1, c->r[4].told);
    EXPECT_STR("E's outcome (3 runs queued)", "QUEUE_FULL", admit_name(c->r[4].result));
    WAIT(c, c->r[1].told && c->r[2].told && c->r[3].told);
    for (int i = 1; i <= 3; i++) {
        EXPECT_STR(names[i], "ADMITTED", admit_name(c->r[i].result));
        EXPECT_INT("started while A runs", 0, started(&c->r[i]));
    }
    /* Each run ends once the one before it has ended (its end stored): see case_thread_sink_race. */
    for (c->i = 0; c->i < 4; c->i++) {
        WAIT(c, started(&c->r[c->i]) && (c->i == 0 || ended(&c->r[c->i - 1])));
        EXPECT_INT("start order (from A's)", fake_of(a->run_id)->order + c->i, fake_of(c->r[c->i].run_id)->order);
        for (int j = c->i + 1; j < 4; j++)
            EXPECT_INT("started before the runs ahead of it ended", 0, started(&c->r[j]));
        fake_step(fake_of(c->r[c->i].run_id), "work", json_pack("{s:i}", "n", c->i + 1));
        fake_end_later(fake_of(c->r[c->i].run_id), AG_GRAPH_SUCCESS, NULL);
    }
    WAIT(c, ended(&c->r[3]));
    for (int i = 0; i < 4; i++) {
        EXPECT_STR(names[i], "metadata,updates,values,end", sink_events(&c->r[i].sink, NULL));
        EXPECT_STR(names[i], "success", stored_status(&c->r[i]));
        EXPECT_STR("the thread sink, by run", "metadata,updates,values,end",
                   sink_events(&c->ts, c->r[i].run_id));
    }
    EXPECT_STR("the runs the thread sink followed", "A,B,C,D", sink_runs(&c->ts, c));
    EXPECT_INT("the thread sink's ends", 0, c->ts.ends);
    ag_run_unwatch(&c->ts.k);
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    EXPECT_JSON_TEXT("the thread's values (D's)", "{\"n\":4}", DB("SELECT agentd_thread_values($1)::jsonb", c->tid[0]));
    CASE_END;
}

/* KNOWN BUG (RTEST_KNOWN_BUGS=1): a thread sink follows "each run that starts later" (run.h), but it
 * moves on from a run only when that run's end is stored (ag_run__ended), and then to the thread's
 * active run: a run that started and ended meanwhile (B here, which ends as soon as it starts, while A's
 * RUN_FINISH is in flight) is never followed. */
static bool case_thread_sink_race(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    c->ts.k.ops = &rec_ops;
    ag_run_thread_watch(c->tid[0], &c->ts.k, NULL, 0);
    run_create(a, "A", c->tid[0], &(struct run_opts){.mt = AG_MT_ENQUEUE, .input = "{\"n\":0}"});
    run_create(b, "B", c->tid[0], &(struct run_opts){.mt = AG_MT_ENQUEUE, .input = "{\"end_at_start\":true}"});
    WAIT(c, started(a) && b->told);
    fake_end_later(fake_of(a->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(a) && ended(b));
    EXPECT_STR("the runs the thread sink followed", "A,B", sink_runs(&c->ts, c));
    ag_run_unwatch(&c->ts.k);
    CASE_END;
}

/* interrupt: the active run ends interrupted (its checkpoints kept), then the new run starts from them. */
static bool case_interrupt(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.mt = AG_MT_INTERRUPT, .input = "{\"n\":0}"});
    WAIT(c, started(a));
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    snprintf(c->keep[0], sizeof c->keep[0], "%s", fake_of(a->run_id)->cp_id);
    run_create(b, "B", c->tid[0], &(struct run_opts){.mt = AG_MT_INTERRUPT, .input = "{\"m\":0}"});
    WAIT(c, ended(a));
    EXPECT_INT("A's cancels", 1, fake_of(a->run_id)->cancels);
    EXPECT_STR("A's events", "metadata,updates,values,end", sink_events(&a->sink, NULL));
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"interrupted\"}", sink_data(&a->sink, "end"));
    WAIT(c, started(b));
    EXPECT_STR("B's from: A's checkpoint", c->keep[0],
               json_string_value(json_object_get(fake_of(b->run_id)->from, "checkpoint_id")));
    fake_step(fake_of(b->run_id), "work", json_pack("{s:i}", "m", 1));
    fake_end_later(fake_of(b->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(b));
    EXPECT_STR("A, stored", "interrupted", stored_status(a));
    EXPECT_STR("A's checkpoints, stored", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    EXPECT_STR("B, stored", "success", stored_status(b));
    EXPECT_JSON_TEXT("the thread's values", "{\"n\":1,\"m\":1}",
                     DB("SELECT agentd_thread_values($1)::jsonb", c->tid[0]));
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    CASE_END;
}

/* rollback: the active run ends, its row and its (written) checkpoints are deleted, and the new run
 * starts from the state before it. */
static bool case_rollback(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.mt = AG_MT_ROLLBACK, .input = "{\"n\":0}"});
    WAIT(c, started(a));
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    WAIT(c, !strcmp(DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id), "1"));
    run_create(b, "B", c->tid[0], &(struct run_opts){.mt = AG_MT_ROLLBACK, .input = "{\"m\":0}"});
    WAIT(c, ended(a));
    EXPECT_INT("A's cancels", 1, fake_of(a->run_id)->cancels);
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"interrupted\"}", sink_data(&a->sink, "end"));
    WAIT(c, started(b));
    EXPECT_JSON("B's from: the state before A (none)", "null", fake_of(b->run_id)->from);
    fake_step(fake_of(b->run_id), "work", json_pack("{s:i}", "m", 1));
    fake_end_later(fake_of(b->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(b));
    EXPECT_STR("A's row", "0", DB("SELECT count(*) FROM runs WHERE run_id = $1", a->run_id));
    EXPECT_STR("A's checkpoints", "0", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    EXPECT_STR("B, stored", "success", stored_status(b));
    EXPECT_JSON_TEXT("the thread's values (without A's)", "{\"m\":1}",
                     DB("SELECT agentd_thread_values($1)::jsonb", c->tid[0]));
    CASE_END;
}

/* Creations refused by what Postgres holds: no such assistant, no such thread, a thread whose active
 * run another agentd process claims. None starts. */
static bool case_refused(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1], *f = &c->r[2];
    CASE_BEGIN(c);
    c->n0 = nfakes;
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0],
               &(struct run_opts){.input = "{\"n\":0}", .assistant = "rtest-no-such-assistant"});
    ag_uuid4(c->tid[1]);
    run_create(b, "B", c->tid[1], &(struct run_opts){.input = "{\"n\":0}"});
    thread_new(c->tid[2]);
    ag_uuid4(c->keep[0]);
    DB("INSERT INTO runs (run_id, thread_id, assistant_id, owner, status, claimed_by, lease_expires_at) "
       "VALUES ($1, $2, $3, '" OWNER "', 'running', 'rtest-elsewhere', now() + interval '1 hour')",
       c->keep[0], c->tid[2], assistant_id);
    run_create(f, "F", c->tid[2], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, a->told && b->told && f->told);
    EXPECT_STR("A's outcome", "NO_ASSISTANT", admit_name(a->result));
    EXPECT_STR("A's detail", "rtest-no-such-assistant", a->detail);
    EXPECT_STR("B's outcome", "NO_THREAD", admit_name(b->result));
    EXPECT_STR("B's detail", c->tid[1], b->detail);
    EXPECT_STR("F's outcome", "FOREIGN_BUSY", admit_name(f->result));
    EXPECT_STR("F's detail: the other process's run", c->keep[0], f->detail);
    EXPECT_INT("runs started", c->n0, nfakes);
    EXPECT_STR("runs stored on A's thread", "0", DB("SELECT count(*) FROM runs WHERE thread_id = $1", c->tid[0]));
    EXPECT_STR("B's thread", "(no row)", thread_status(c->tid[1]));
    CASE_END;
}

/* cancel: the engine is asked, the run ends once the engine says so (later), interrupted. */
static bool case_cancel(struct tcase *c)
{
    struct trun *a = &c->r[0];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(a));
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    ag_run_cancel(a->run, false, AG_RUN_CANCEL_REASON_USER);
    EXPECT_INT("A's cancels", 1, fake_of(a->run_id)->cancels);
    EXPECT_INT("A's ends before the engine confirmed", 0, a->sink.ends);
    WAIT(c, ended(a));
    EXPECT_STR("A's events", "metadata,updates,values,end", sink_events(&a->sink, NULL));
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"interrupted\"}", sink_data(&a->sink, "end"));
    EXPECT_STR("A, stored", "interrupted", stored_status(a));
    EXPECT_STR("A's checkpoints, stored", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    CASE_END;
}

/* timeout: a run still active after runs.timeout_ms (30 ms for this run) is cancelled and stored as
 * timeout. The limit is read when a run starts; the shard is the only reader of run_lim once started. */
static bool case_timeout(struct tcase *c)
{
    struct trun *a = &c->r[0];
    CASE_BEGIN(c);
    c->i = (int)run_lim.timeout_ms;
    run_lim.timeout_ms = 30;
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(a));
    run_lim.timeout_ms = (uint32_t)c->i;
    WAIT(c, ended(a));
    EXPECT_INT("A's cancels", 1, fake_of(a->run_id)->cancels);
    EXPECT_STR("A's events", "metadata,error,end", sink_events(&a->sink, NULL));
    EXPECT_JSON_TEXT("A's error", "{\"error\":\"TimeoutError\",\"message\":\"run exceeded its time limit\"}",
                     sink_data(&a->sink, "error"));
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"error\"}", sink_data(&a->sink, "end"));
    EXPECT_STR("A, stored", "timeout", stored_status(a));
    EXPECT_STR("A's error, stored", "run exceeded its time limit",
               DB("SELECT error FROM runs WHERE run_id = $1", a->run_id));
    EXPECT_STR("the thread", "error", thread_status(c->tid[0]));
    CASE_END;
}

/* interrupt then resume: a run that ends interrupted leaves the thread interrupted; a run with a command
 * continues from the interrupted checkpoint (read back from Postgres) with that command. */
static bool case_resume(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(a));
    fake_interrupt(fake_of(a->run_id), "approve?");
    snprintf(c->keep[0], sizeof c->keep[0], "%s", fake_of(a->run_id)->cp_id);
    snprintf(c->keep[1], sizeof c->keep[1], "%s", fake_of(a->run_id)->interrupt_id);
    snprintf(c->keep[2], sizeof c->keep[2], "%s", fake_of(a->run_id)->task_id);
    WAIT(c, ended(a));
    EXPECT_STR("A's events", "metadata,updates,end", sink_events(&a->sink, NULL));
    EXPECT_JSON_TEXT("A's end", "{\"status\":\"interrupted\"}", sink_data(&a->sink, "end"));
    EXPECT_STR("A, stored", "interrupted", stored_status(a));
    EXPECT_STR("the thread", "interrupted", thread_status(c->tid[0]));
    EXPECT_STR("the thread's interrupt, by task", c->keep[1],
               DB("SELECT interrupts->($2::text)->0->>'id' FROM threads WHERE thread_id = $1", c->tid[0], c->keep[2]));
    run_create(b, "B", c->tid[0], &(struct run_opts){.command = "{\"resume\":\"yes\"}"});
    WAIT(c, started(b));
    {
        const struct fake_run *fb = fake_of(b->run_id);
        EXPECT_STR("B's from: A's interrupted checkpoint", c->keep[0],
                   json_string_value(json_object_get(fb->from, "checkpoint_id")));
        json_t *task = json_array_get(json_object_get(fb->from, "tasks"), 0);
        EXPECT_STR("B's from: the interrupt", c->keep[1],
                   json_string_value(json_object_get(json_array_get(json_object_get(task, "interrupts"), 0), "id")));
        EXPECT_JSON("B's command", "{\"resume\":\"yes\"}", fb->command);
        EXPECT_JSON("B's input", "null", fb->input);
    }
    fake_step(fake_of(b->run_id), "ask", json_pack("{s:s}", "answer", "yes"));
    fake_end_later(fake_of(b->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(b));
    EXPECT_STR("B, stored", "success", stored_status(b));
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    EXPECT_JSON_TEXT("the thread's values", "{\"answer\":\"yes\"}",
                     DB("SELECT agentd_thread_values($1)::jsonb", c->tid[0]));
    CASE_END;
}

/* The engine fails: a start it refuses ends the run as error at once; a dead worker ends every run of it
 * as error. */
static bool case_engine_fails(struct tcase *c)
{
    struct trun *a = &c->r[0], *b = &c->r[1], *x = &c->r[2];
    CASE_BEGIN(c);
    c->n0 = fake_refusals;
    thread_new(c->tid[2]);
    run_create(x, "X", c->tid[2], &(struct run_opts){.input = "{\"refuse\":true}"});
    WAIT(c, x->told && ended(x));
    EXPECT_INT("refused starts", c->n0 + 1, fake_refusals);
    EXPECT_STR("X's events", "metadata,error,end", sink_events(&x->sink, NULL));
    EXPECT_STR("X, stored", "error", stored_status(x));
    EXPECT_STR("X's error, stored", "the fake engine refuses this input",
               DB("SELECT error FROM runs WHERE run_id = $1", x->run_id));

    thread_new(c->tid[0]);
    thread_new(c->tid[1]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.input = "{\"n\":0}"});
    run_create(b, "B", c->tid[1], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(a) && started(b));
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    fake_fail_all("worker died");
    WAIT(c, ended(a) && ended(b));
    EXPECT_STR("A's events", "metadata,updates,values,error,end", sink_events(&a->sink, NULL));
    EXPECT_STR("B's events", "metadata,error,end", sink_events(&b->sink, NULL));
    for (int i = 0; i < 2; i++) {
        EXPECT_JSON_TEXT(c->r[i].name, "{\"error\":\"GraphError\",\"message\":\"worker died\"}",
                         sink_data(&c->r[i].sink, "error"));
        EXPECT_JSON_TEXT(c->r[i].name, "{\"status\":\"error\"}", sink_data(&c->r[i].sink, "end"));
        EXPECT_STR(c->r[i].name, "error", stored_status(&c->r[i]));
        EXPECT_STR(c->r[i].name, "worker died", DB("SELECT error FROM runs WHERE run_id = $1", c->r[i].run_id));
        EXPECT_STR("its thread", "error", thread_status(c->tid[i]));
    }
    CASE_END;
}

/* A run watched to its end on an idle thread (AG_RUN_REPLY_STREAM) is prepared, not created: it still
 * runs runs.direct_ms (5) after its start, so it is created then, and its creator is told once that is
 * stored. */
static bool case_direct(struct tcase *c)
{
    struct trun *a = &c->r[0];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.how = AG_RUN_REPLY_STREAM, .input = "{\"n\":0}"});
    WAIT(c, started(a));
    EXPECT_STR("A's outcome", "ADMITTED", admit_name(a->result));
    EXPECT_STR("A's Run object (none for a run stored late)", "", a->json_status);
    fake_step(fake_of(a->run_id), "work", json_pack("{s:i}", "n", 1));
    fake_end_later(fake_of(a->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(a));
    EXPECT_STR("A's events", "metadata,updates,values,end", sink_events(&a->sink, NULL));
    EXPECT_STR("A, stored", "success", stored_status(a));
    EXPECT_STR("A's checkpoints, stored", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    CASE_END;
}

/* A direct run that outlives its start turn but ends within runs.direct_ms (a minute here) is still
 * written once, at its end: nothing of it is stored and its creator is not told while it runs, and its
 * row, its checkpoint and the thread's v2 events commit in one statement (the v2 log does not write
 * the events itself meanwhile). The limit is read when the run starts. */
static bool case_direct_late(struct tcase *c)
{
    struct trun *a = &c->r[0];
    CASE_BEGIN(c);
    c->i = (int)run_lim.direct_ms;
    run_lim.direct_ms = 60000;
    c->n0 = nfakes;
    thread_new(c->tid[0]);
    run_create(a, "A", c->tid[0], &(struct run_opts){.how = AG_RUN_REPLY_WAIT, .input = "{\"n\":0}"});
    WAIT(c, nfakes == c->n0 + 1);
    run_lim.direct_ms = (uint32_t)c->i;
    c->i = 0;
    WAIT(c, ++c->i > 20); /* 20 ticks later: many turns past its first */
    EXPECT_STR("A's creator, while it runs", "f", a->told ? "t" : "f");
    EXPECT_STR("runs stored on its thread, while it runs", "0",
               DB("SELECT count(*) FROM runs WHERE thread_id = $1", c->tid[0]));
    EXPECT_STR("v2 events stored, while it runs", "0",
               DB("SELECT count(*) FROM thread_events WHERE thread_id = $1", c->tid[0]));
    fake_step(fakes[c->n0], "work", json_pack("{s:i}", "n", 1));
    fake_end_later(fakes[c->n0], AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(a));
    EXPECT_STR("A's outcome", "ADMITTED", admit_name(a->result));
    EXPECT_STR("A, stored", "success", stored_status(a));
    EXPECT_STR("A's checkpoints, stored", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", a->run_id));
    EXPECT_STR("its row, its checkpoint and its v2 events: one transaction", "1",
               DB("SELECT count(DISTINCT x::text) FROM (SELECT xmin AS x FROM runs WHERE thread_id = $1 UNION ALL "
                  "SELECT xmin FROM checkpoints WHERE thread_id = $1 UNION ALL SELECT xmin FROM thread_events "
                  "WHERE thread_id = $1) t",
                  c->tid[0]));
    EXPECT_STR("its v2 events, stored", "t",
               DB("SELECT count(*) > 0 FROM thread_events WHERE thread_id = $1", c->tid[0]));
    EXPECT_STR("the thread", "idle", thread_status(c->tid[0]));
    CASE_END;
}

/* Durability "sync": after each checkpoint the engine is held until that checkpoint is in Postgres, then
 * told to proceed; "exit": of its three checkpoints only the last is written, at its end, its parent is the thread's checkpoint from before the run. */
static bool case_durability(struct tcase *c)
{
    struct trun *s = &c->r[0], *x = &c->r[1], *a = &c->r[2];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    run_create(s, "S", c->tid[0],
               &(struct run_opts){.how = AG_RUN_REPLY_STREAM, .input = "{\"n\":0}", .durability = AG_DURABILITY_SYNC});
    WAIT(c, started(s));
    EXPECT_STR("S, not held before its first checkpoint", "f", fake_held(fake_of(s->run_id)) ? "t" : "f");
    fake_step(fake_of(s->run_id), "one", json_pack("{s:i}", "n", 1));
    EXPECT_STR("S, held while its checkpoint is not written", "t", fake_held(fake_of(s->run_id)) ? "t" : "f");
    WAIT(c, fake_of(s->run_id)->proceeds == 1);
    EXPECT_STR("S's first checkpoint, stored before it may go on", "1",
               DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", s->run_id));
    EXPECT_STR("S, let go", "f", fake_held(fake_of(s->run_id)) ? "t" : "f");
    fake_step(fake_of(s->run_id), "two", json_pack("{s:i}", "n", 2));
    WAIT(c, fake_of(s->run_id)->proceeds == 2);
    EXPECT_STR("S's second checkpoint, stored", "2", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", s->run_id));
    fake_end_later(fake_of(s->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(s));
    EXPECT_STR("S, stored", "success", stored_status(s));

    snprintf(c->keep[0], sizeof c->keep[0], "%s",
             DB("SELECT checkpoint_id FROM checkpoints WHERE run_id = $1 ORDER BY checkpoint_id DESC LIMIT 1",
                s->run_id));
    run_create(x, "X", c->tid[0], &(struct run_opts){.input = "{\"n\":0}", .durability = AG_DURABILITY_EXIT});
    WAIT(c, started(x));
    EXPECT_STR("X, never held", "f", fake_held(fake_of(x->run_id)) ? "t" : "f");
    fake_step(fake_of(x->run_id), "one", json_pack("{s:i}", "n", 3));
    fake_step(fake_of(x->run_id), "two", json_pack("{s:i}", "n", 4));
    fake_step(fake_of(x->run_id), "three", json_pack("{s:i}", "n", 5));
    fake_end_later(fake_of(x->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(x));
    EXPECT_STR("X, stored", "success", stored_status(x));
    EXPECT_STR("X's checkpoints, stored: its last", "1", DB("SELECT count(*) FROM checkpoints WHERE run_id = $1", x->run_id));
    EXPECT_STR("its parent: S's last", c->keep[0],
               DB("SELECT parent_checkpoint_id FROM checkpoints WHERE run_id = $1", x->run_id));
    EXPECT_STR("its values", "5",
               DB("SELECT agentd_checkpoint_values(thread_id, checkpoint_ns, channel_versions)->>'n' FROM checkpoints "
                  "WHERE run_id = $1",
                  x->run_id));

    run_create(a, "A", c->tid[0], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(a));
    fake_step(fake_of(a->run_id), "one", json_pack("{s:i}", "n", 6));
    EXPECT_STR("A (async), never held", "f", fake_held(fake_of(a->run_id)) ? "t" : "f");
    fake_end_later(fake_of(a->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(a));
    EXPECT_INT("proceed calls for A", 0, fake_of(a->run_id)->proceeds);
    CASE_END;
}

/* Lease recovery while running: a run left "running" by a claimant that no longer renews its lease is
 * ended as error by this process's lease sweeper (runs.lease_ms 300: every 100 ms), with its thread;
 * the lease of this process's own active run is renewed meanwhile, and that run is left alone. */
static bool case_lease(struct tcase *c)
{
    struct trun *l = &c->r[0];
    CASE_BEGIN(c);
    thread_new(c->tid[0]);
    ag_uuid4(c->keep[0]);
    DB("INSERT INTO runs (run_id, thread_id, assistant_id, owner, status, claimed_by, lease_expires_at) "
       "VALUES ($1, $2, $3, '" OWNER "', 'running', 'rtest-gone', now() - interval '1 second')",
       c->keep[0], c->tid[0], assistant_id);
    DB("UPDATE threads SET status = 'busy' WHERE thread_id = $1", c->tid[0]);
    thread_new(c->tid[1]);
    run_create(l, "L", c->tid[1], &(struct run_opts){.input = "{\"n\":0}"});
    WAIT(c, started(l));
    snprintf(c->keep[1], sizeof c->keep[1], "%s",
             DB("SELECT lease_expires_at::text FROM runs WHERE run_id = $1", l->run_id));
    WAIT(c, !strcmp(DB("SELECT status FROM runs WHERE run_id = $1", c->keep[0]), "error"));
    EXPECT_CONTAINS("the abandoned run's error", "stopped renewing its lease",
                    DB("SELECT error FROM runs WHERE run_id = $1", c->keep[0]));
    EXPECT_STR("its thread", "error", thread_status(c->tid[0]));
    WAIT(c, !strcmp(DB("SELECT lease_expires_at > $2::timestamptz FROM runs WHERE run_id = $1", l->run_id,
                       c->keep[1]),
                    "t"));
    EXPECT_STR("L, stored, while it runs", "t",
               DB("SELECT status IN ('pending', 'running') FROM runs WHERE run_id = $1", l->run_id));
    fake_end_later(fake_of(l->run_id), AG_GRAPH_SUCCESS, NULL);
    WAIT(c, ended(l));
    EXPECT_STR("L, stored", "success", stored_status(l));
    CASE_END;
}

static struct tcase cases[] = {
    {.name = "start-up: database up, runs of dead processes settled", .fn = case_startup},
    {.name = "KNOWN BUG: start-up: the start time a process registers",
     .fn = case_startup_pid_start,
     .known_bug = true},
    {.name = "multitask reject", .fn = case_reject},
    {.name = "multitask enqueue: order, queue_max, a thread sink", .fn = case_enqueue},
    {.name = "KNOWN BUG: a thread sink skips a run that started and ended meanwhile",
     .fn = case_thread_sink_race,
     .known_bug = true},
    {.name = "multitask interrupt", .fn = case_interrupt},
    {.name = "multitask rollback", .fn = case_rollback},
    {.name = "creation refused: assistant, thread, foreign run", .fn = case_refused},
    {.name = "cancel", .fn = case_cancel},
    {.name = "timeout", .fn = case_timeout},
    {.name = "interrupt then resume", .fn = case_resume},
    {.name = "engine refuses a start; engine dies", .fn = case_engine_fails},
    {.name = "a run written once at its end (promoted)", .fn = case_direct},
    {.name = "a run written once at its end, turns after it started", .fn = case_direct_late},
    {.name = "lease recovery by the sweeper", .fn = case_lease},
    {.name = "durability sync and exit", .fn = case_durability},
};

/* What a case that waited too long saw. */
static void dump_case(const struct tcase *c)
{
    for (int i = 0; i < NRUNS; i++) {
        const struct trun *r = &c->r[i];
        if (!r->name)
            continue;
        const struct fake_run *f = r->run_id[0] ? fake_of(r->run_id) : NULL;
        fprintf(stderr, "  run %s: told=%d outcome=%s id=%s engine: %s (cancels %d, ended %d) events: %s ends=%d\n",
                r->name, r->told, r->told ? admit_name(r->result) : "-", r->run_id[0] ? r->run_id : "-",
                f ? "started" : "not started", f ? f->cancels : 0, f ? f->ended : 0, sink_events(&r->sink, NULL),
                r->sink.ends);
    }
}

/* Checks that hold across the cases: every run the engine started was freed once, after its end; every
 * admitted run's sink heard of its end once; each sink saw each run's events with ids 0, 1, 2, ... */
static void final_checks(void)
{
    case_name = "every case";
    for (int i = 0; i < nfakes; i++) {
        CHECKF(fakes[i]->ended && fakes[i]->frees == 1, "engine run %s: ended=%d frees=%d", fakes[i]->run_id,
               fakes[i]->ended, fakes[i]->frees);
    }
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++)
        for (int j = 0; j < NRUNS; j++) {
            const struct trun *r = &cases[i].r[j];
            if (r->name && r->told && r->result == AG_RUN_ADMITTED) {
                EXPECT_INT("a run sink's ends", 1, r->sink.ends);
                EXPECT_STR("the run its on_end named", r->run_id, r->sink.end_run);
            }
        }
    for (size_t i = 0; i < nrecs; i++) {
        uint64_t want = 0;
        for (size_t j = i; j-- > 0;)
            if (recs[j].sink == recs[i].sink && !strcmp(recs[j].run_id, recs[i].run_id)) {
                want = recs[j].id + 1;
                break;
            }
        char what[128];
        snprintf(what, sizeof what, "event id of run %s in its sink's order", recs[i].run_id);
        EXPECT_INT(what, (long long)want, (long long)recs[i].id);
        char tail[24];
        snprintf(tail, sizeof tail, "\n%" PRIu64, recs[i].id);
        EXPECT_STR("the frame's id as the codec wrote it", tail, strrchr(recs[i].frame, '\n'));
    }
}

/* --- the driver: a timer on the shard --- */

static struct ag_timer drive_timer;
static size_t cur;
static bool done;
static bool with_known_bugs; /* RTEST_KNOWN_BUGS=1 */

static void finish(void)
{
    done = true;
    sem_post(&finished);
}

static void drive(struct ag_timer *t)
{
    struct ag_shard *s = ag_shard_self();
    while (cur < AG_ARRAY_LEN(cases)) {
        struct tcase *c = &cases[cur];
        case_name = c->name;
        if (c->known_bug && !with_known_bugs) {
            cur++;
            continue;
        }
        if (!c->fn(c)) {
            if (s->now_ns - c->since_ns > WAIT_NS) {
                check_failures++;
                fprintf(stderr, "test_runtime.c:%d: [%s] waited %llu s for: %s\n  seen:\n", c->at, c->name,
                        WAIT_NS / 1000000000ull, c->waiting);
                dump_case(c);
                finish();
                return;
            }
            break;
        }
        cur++;
    }
    if (cur == AG_ARRAY_LEN(cases)) {
        final_checks();
        finish();
        return;
    }
    ag_timer_arm(&s->timers, &drive_timer, s->now_ns + TICK_NS);
}

/* --- the shard --- */

static int on_start(struct ag_shard *s)
{
    ag_pg_start(s, &pg_cfg);
    ag_tlog_shard_init(s, &tlog_lim, &rec_tlog_codec);
    ag_run_shard_init(s, &run_lim, &rec_codec);
    ag_timer_init(&drive_timer, drive);
    ag_timer_arm(&s->timers, &drive_timer, s->now_ns);
    return 0;
}

/* Once the cases are over: every run cancelled (none is left unless a case failed), the v2 log written. */
static bool is_idle(struct ag_shard *s)
{
    if (!done)
        return false;
    bool idle = ag_run_shard_idle(s);
    return ag_tlog_shard_idle(s) && idle;
}

static void on_exit_shard(struct ag_shard *s)
{
    ag_run_shard_exit(s);
    ag_tlog_shard_exit(s);
    ag_pg_exit(s);
    ag_obuf_pool_free();
}

/* --- set-up --- */

/* In the migration transaction (the bootstrap thread, before the shard takes work): dead's thread and
 * a run it left "running", claimed by a process of this host (its host and pid scope are this
 * process's, as ag_run_settle_dead registered it) that is no longer there. */
static int seed_dead(PGconn *pg, const struct dead_proc *dead, char *err, size_t errlen)
{
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", dead->pid);
    const char *dp[7] = {dead->boot, pid, dead->start, dead->thread, dead->run, assistant_id, NULL};
    char self[24];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    dp[6] = self;
    PGresult *res = PQexecParams(
        pg,
        "WITH me AS (SELECT host, pid_scope FROM agentd_processes WHERE pid = $7::int AND pid_scope <> '' "
        "ORDER BY started_at DESC LIMIT 1), "
        "p AS (INSERT INTO agentd_processes (boot_id, host, pid, pid_start, pid_scope) "
        "SELECT $1, host, $2::int, $3::bigint, pid_scope FROM me RETURNING 1), "
        "t AS (INSERT INTO threads (thread_id, owner, status) SELECT $4, '" OWNER "', 'busy' FROM p), "
        "r AS (INSERT INTO runs (run_id, thread_id, assistant_id, owner, status, claimed_by, lease_expires_at) "
        "SELECT $5, $4, $6, '" OWNER "', 'running', $1, now() + interval '1 hour' FROM p) "
        "SELECT count(*) FROM p",
        7, NULL, dp, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "seeding a dead process's run: %s", PQresultErrorMessage(res));
    else
        settle_possible = !strcmp(PQgetvalue(res, 0, 0), "1");
    PQclear(res);
    return ok ? 0 : -1;
}

/* The migration's seed: the test's assistant, then the runs of two dead processes of this host, then
 * the start-up settlement. This process registers first (ag_run_settle_dead), so that the dead ones can
 * share its host and pid scope. */
static int seed(PGconn *pg, char *err, size_t errlen)
{
    const char *ap[2] = {assistant_id, GRAPH_ID};
    PGresult *res = PQexecParams(pg,
                                 "INSERT INTO assistants (assistant_id, owner, graph_id, name) "
                                 "VALUES ($1, '" OWNER "', $2, 'rtest')",
                                 2, NULL, ap, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "seeding the test's assistant: %s", PQresultErrorMessage(res));
    PQclear(res);
    if (!ok || ag_run_settle_dead(pg, err, errlen) || seed_dead(pg, &dead_gone, err, errlen) ||
        seed_dead(pg, &dead_reused, err, errlen))
        return -1;
    return ag_run_settle_dead(pg, err, errlen);
}

int main(void)
{
    const char *base = getenv("DATABASE_URL");
    if (!base || !*base) {
        fprintf(stderr, "test_runtime: DATABASE_URL is not set (tools/test.sh starts a cluster): skipped\n");
        return 77;
    }
    ag_log_level = AG_LOG_WARN;
    run_lim.queue_max = 3;
    run_lim.lease_ms = 300;
    run_lim.recent_ms = 600000; /* every run stays in memory: the cases keep pointers to them */

    with_known_bugs = getenv("RTEST_KNOWN_BUGS") && !strcmp(getenv("RTEST_KNOWN_BUGS"), "1");
    read_self_start();
    /* A pid that surely names no process now: a child that exited and was reaped. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CHECK(child > 0 && waitpid(child, NULL, 0) == child);
    dead_gone.pid = child;
    dead_reused.pid = (long)getpid();
    char rnd[37];
    ag_uuid4(rnd);
    snprintf(db_name, sizeof db_name, "agentd_rtest_%ld_%.8s", (long)getpid(), rnd);
    snprintf(assistant_id, sizeof assistant_id, "rtest-assistant-%.8s", rnd);
    struct dead_proc *dead[] = {&dead_gone, &dead_reused};
    for (size_t i = 0; i < AG_ARRAY_LEN(dead); i++) {
        ag_uuid4(dead[i]->boot);
        ag_uuid4(dead[i]->thread);
        ag_uuid4(dead[i]->run);
    }
    char *url = testdb_create(base, db_name);
    if (!url) return 1;
    pg_cfg.url = url;
    db = PQconnectdb(url);
    CHECK(PQstatus(db) == CONNECTION_OK);

    sem_init(&finished, 0, 0);
    ag_engine_add(&fake_engine);
    ag_pg_register();
    ag_migrate_set_seed(seed);
    ag_migrate_start(pg_cfg.url);
    int cpus[1] = {0};
    struct ag_shard_hooks hooks = {.on_start = on_start, .on_flush = ag_pg_flush, .is_idle = is_idle,
                                   .on_exit = on_exit_shard};
    struct ag_runtime rt;
    /* The shard keeps the check counters while it runs: main counts only after the join. */
    int started_rc = ag_runtime_start(&rt, &loop_cfg, 1, cpus, 0, &hooks, NULL);
    bool timed_out = false;
    if (started_rc == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += TEST_DEADLINE_S;
        int rc;
        while ((rc = sem_timedwait(&finished, &until)) != 0 && errno == EINTR) {
        }
        if (rc != 0) {
            fprintf(stderr, "test_runtime: not finished after %d s: stopping\n", TEST_DEADLINE_S);
            timed_out = true;
            ag_runtime_stop(&rt);
        } else {
            ag_runtime_drain(&rt);
        }
        ag_runtime_join(&rt);
    }
    ag_migrate_stop();
    sem_destroy(&finished);
    CHECK(started_rc == 0);
    CHECK(!timed_out);

    for (int i = 0; i < nfakes; i++) {
        struct fake_run *f = fakes[i];
        json_decref(f->input);
        json_decref(f->command);
        json_decref(f->from);
        json_decref(f->metadata);
        json_decref(f->values);
        ag_free(f);
    }
    for (size_t i = 0; i < nrecs; i++)
        ag_free(recs[i].frame);
    ag_free(recs);
    PQfinish(db);
    if (testdb_drop(base, db_name)) check_failures++;
    ag_free(pg_cfg.url);
    int harness_checks, harness_failures;
    rtest_tally(&harness_checks, &harness_failures);
    check_count += harness_checks;
    check_failures += harness_failures;
    return CHECK_DONE();
}
