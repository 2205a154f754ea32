/* The rows under a thread (runs, checkpoints, checkpoint_blobs, thread_events) go with it, and no
 * statement that writes them leaves any behind a delete of the thread that races with it. These tables
 * have no foreign key to threads (migration 011): a trigger deletes them, and each writer gates its
 * inserts on the thread row it updated or locked. A writer gated on a plain read of the thread would
 * leave orphans here.
 *
 * Each writer (the statements of persist/statements.def, as agentd prepares them, with the parameters
 * of a small run) meets a DELETE of its thread in both orders, on two connections of a new database
 * (created here, dropped at the end):
 * - the writer first, in a transaction not yet committed; the delete is sent, then the writer commits:
 *   the delete must wait for the writer's lock and remove what it wrote;
 * - the delete first, not yet committed; the writer is sent and waits for the delete's lock
 *   (pg_stat_activity says so, asked from a third connection), then the delete commits: the writer
 *   must write nothing.
 * Either way no row of the thread is left. Exit 77 without DATABASE_URL. */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../unit/check.h"
#include "core/alloc.h"
#include "core/log.h"
#include "persist/migrate.h"
#include "testdb.h"

enum stmt {
#define AG_SQL(id, text) S_##id,
#include "persist/statements.def"
#undef AG_SQL
};
static const char *const statement_text[] = {
#define AG_SQL(id, text) text,
#include "persist/statements.def"
#undef AG_SQL
};

/* One checkpoint with one channel value, and one v2 batch, as agentd writes them. */
#define CP                                                                                                             \
    "[{\"checkpoint_id\":\"cp1\",\"parent_checkpoint_id\":null,\"step\":0,\"source\":\"input\","                       \
    "\"channel_versions\":{\"messages\":\"cp1\"},\"next\":[],\"tasks\":[],\"metadata\":{},"                            \
    "\"blobs\":[[\"messages\",null,[{\"type\":\"human\",\"content\":\"hi\"}]]]}]"
#define EVENTS "[[1,\"r1\",\"lifecycle\",[],{\"event\":\"running\"},0]]"

struct writer {
    const char *name;
    enum stmt stmt;
    int nparams;
    const char *params[25]; /* "$T": the thread id */
};

static const struct writer writers[] = {
    {"RUN_RECORD", S_RUN_RECORD, 25, {"r1", "$T", "o",  "a1",   "g",  "{}",   "{}", "reject", "success",
                                      NULL, NULL, CP,   "idle", NULL, "p",    NULL, "0",      "0",
                                      "0",  NULL, NULL, "1",    "1",  EVENTS, NULL}},
    {"RUN_PROGRESS", S_RUN_PROGRESS, 4, {"r1", "$T", CP, "0"}},
    {"RUN_FINISH",
     S_RUN_FINISH,
     15,
     {"r1", "$T", "success", NULL, NULL, CP, "idle", NULL, "false", "false", NULL, "0", NULL, NULL, "true"}},
    {"TEV_APPEND1", S_TEV_APPEND1, 6, {"$T", "1", "1", EVENTS, "1", NULL}},
};

static PGconn *connect_to(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test_thread_rows: connect: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

/* Runs sql (no parameters or $1 = arg); true when it succeeded. */
static bool exec1(PGconn *c, const char *sql, const char *arg)
{
    PGresult *r = PQexecParams(c, sql, arg ? 1 : 0, NULL, arg ? &arg : NULL, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "test_thread_rows: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* The first column of sql's first row as a number (-1: failed). */
static long query_long(PGconn *c, const char *sql, const char *arg)
{
    PGresult *r = PQexecParams(c, sql, arg ? 1 : 0, NULL, arg ? &arg : NULL, NULL, NULL, 0);
    long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : -1;
    if (v < 0) fprintf(stderr, "test_thread_rows: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

/* Rows left under thread tid in the four tables. */
static long rows_of(PGconn *c, const char *tid)
{
    return query_long(c,
                      "SELECT (SELECT count(*) FROM runs WHERE thread_id = $1) + (SELECT count(*) FROM checkpoints "
                      "WHERE thread_id = $1) + (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = $1) + "
                      "(SELECT count(*) FROM thread_events WHERE thread_id = $1)",
                      tid);
}

/* Sends w's statement for thread tid on c without waiting for it. */
static bool send_writer(PGconn *c, const struct writer *w, const char *tid)
{
    const char *p[25];
    for (int i = 0; i < w->nparams; i++)
        p[i] = w->params[i] && !strcmp(w->params[i], "$T") ? tid : w->params[i];
    return PQsendQueryParams(c, statement_text[w->stmt], w->nparams, NULL, p, NULL, NULL, 0) == 1;
}

/* Waits for the result of what was sent on c; true when every result succeeded. */
static bool finish(PGconn *c, const char *what)
{
    bool ok = true;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "test_thread_rows: %s: %s", what, PQresultErrorMessage(r));
            ok = false;
        }
        PQclear(r);
    }
    return ok;
}

/* True once backend pid waits for a lock; false when it ended its statement first or 10 s passed. */
static bool waits_for_lock(PGconn *watch, PGconn *waiter, int pid)
{
    char spid[16];
    snprintf(spid, sizeof spid, "%d", pid);
    for (int i = 0; i < 10000; i++) {
        if (query_long(watch, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND wait_event_type = 'Lock'",
                       spid) == 1)
            return true;
        PQconsumeInput(waiter);
        if (!PQisBusy(waiter)) return false;
        struct pollfd pfd = {.fd = PQsocket(waiter), .events = POLLIN};
        poll(&pfd, 1, 1); /* the writer's answer ends the wait early */
    }
    return false;
}

static void new_thread(PGconn *c, const char *tid)
{
    CHECK(exec1(c, "INSERT INTO threads (thread_id, owner) VALUES ($1, 'o')", tid));
}

int main(void)
{
    const char *base = getenv("DATABASE_URL");
    if (!base || !*base) {
        fprintf(stderr, "test_thread_rows: DATABASE_URL is not set (tools/test.sh starts a cluster): skipped\n");
        return 77;
    }
    ag_log_level = AG_LOG_WARN;
    char db_name[64];
    snprintf(db_name, sizeof db_name, "agentd_thread_rows_%ld", (long)getpid());
    char *url = testdb_create(base, db_name);
    if (!url) return 1;
    char err[512];
    CHECKF(ag_migrate_run(url, err, sizeof err) == 0, "migrate: %s", err);
    PGconn *a = connect_to(url), *w = connect_to(url), *watch = connect_to(url);
    CHECK(exec1(a, "INSERT INTO assistants (assistant_id, owner, graph_id, name) VALUES ('a1', 'o', 'g', 'a1')", NULL));
    const char *del = statement_text[S_THREAD_DELETE], *owner = "o";

    /* A thread deleted on its own takes its rows with it. */
    new_thread(a, "t-plain");
    CHECK(send_writer(w, &writers[0], "t-plain") && finish(w, "RUN_RECORD"));
    CHECKF(rows_of(a, "t-plain") == 4, "RUN_RECORD wrote %ld rows (a run, a checkpoint, a blob, a batch)",
           rows_of(a, "t-plain"));
    CHECK(exec1(a, "DELETE FROM threads WHERE thread_id = 't-plain'", NULL));
    CHECK(rows_of(a, "t-plain") == 0);

    for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++) {
        const struct writer *wr = &writers[i];
        char tid[64];

        /* The writer first: the delete waits for its commit, then takes what it wrote. */
        snprintf(tid, sizeof tid, "t-%s-first", wr->name);
        new_thread(a, tid);
        CHECK(exec1(w, "BEGIN", NULL));
        CHECK(send_writer(w, wr, tid) && finish(w, wr->name));
        CHECKF(rows_of(w, tid) > 0, "%s wrote nothing under a live thread", wr->name);
        const char *dp[2] = {tid, owner};
        CHECK(PQsendQueryParams(a, del, 2, NULL, dp, NULL, NULL, 0) == 1);
        CHECK(exec1(w, "COMMIT", NULL));
        CHECK(finish(a, "THREAD_DELETE"));
        CHECKF(rows_of(a, tid) == 0, "%s first: %ld rows left after the delete", wr->name, rows_of(a, tid));

        /* The delete first: the writer waits for it and then writes nothing. */
        snprintf(tid, sizeof tid, "t-%s-second", wr->name);
        new_thread(a, tid);
        CHECK(exec1(a, "BEGIN", NULL));
        CHECK(exec1(a, "DELETE FROM threads WHERE thread_id = $1", tid));
        CHECK(send_writer(w, wr, tid));
        bool waited = waits_for_lock(watch, w, PQbackendPID(w));
        CHECK(exec1(a, "COMMIT", NULL));
        CHECK(finish(w, wr->name));
        CHECKF(waited, "%s did not wait for the thread's delete", wr->name);
        CHECKF(rows_of(a, tid) == 0, "%s after a delete: %ld rows left", wr->name, rows_of(a, tid));
    }

    PQfinish(a);
    PQfinish(w);
    PQfinish(watch);
    ag_free(url);
    CHECK(testdb_drop(base, db_name) == 0);
    return CHECK_DONE();
}
