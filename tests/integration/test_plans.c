/* The plans Postgres picks for agentd's statements on a database that has no statistics yet: a new
 * database (created here, dropped at the end), migrated, with 400 threads of one owner and never
 * analyzed, as a fresh deployment or a benchmark right after TRUNCATE has it (autovacuum first
 * analyzes a table a minute or more later).
 *
 * Every statement that finds a thread by its id and checks its owner (AG_SQL_OWNED in
 * persist/statements.def) must read it through the primary key, never through an owner-leading index
 * (one such lookup would read every thread of the owner). Each is prepared as agentd prepares it and
 * explained as a generic plan (the plan for any parameter values). The same
 * statements with the owner compared plainly are explained too: on this Postgres at least one of them
 * then takes an owner index, which shows that the set-up reproduces what AG_SQL_OWNED prevents.
 *
 * Exit 77 without DATABASE_URL. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../unit/check.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "persist/migrate.h"
#include "testdb.h"

static const struct {
    const char *name, *text;
} statements[] = {
#define AG_SQL(id, text) {#id, text},
#include "persist/statements.def"
#undef AG_SQL
};

static bool exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "test_plans: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* sql with every "(<col> = $n) IS TRUE" written back as "<col> = $n" (a copy to free). */
static char *owner_plain(const char *sql)
{
    char *out = ag_strdup(sql), *p;
    while ((p = strstr(out, ") IS TRUE"))) {
        char *open = p;
        while (open > out && *open != '(')
            open--;
        memmove(p, p + strlen(") IS TRUE"), strlen(p + strlen(") IS TRUE")) + 1);
        memmove(open, open + 1, strlen(open + 1) + 1);
    }
    return out;
}

/* The plan of statement sql (prepared as name) executed with every parameter NULL, in the session's
 * plan_cache_mode (generic here: the plan for any values). Returns the plan's text (to free) or NULL. */
static char *explain(PGconn *c, const char *name, const char *sql)
{
    PGresult *r = PQprepare(c, name, sql, 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "test_plans: PREPARE %s: %s", name, PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) return NULL;
    r = PQdescribePrepared(c, name);
    int np = PQnparams(r);
    PQclear(r);
    char q[2048];
    size_t n = (size_t)snprintf(q, sizeof q, "EXPLAIN EXECUTE %s(", name);
    for (int i = 0; i < np && n < sizeof q; i++)
        n += (size_t)snprintf(q + n, sizeof q - n, "%s%s", i ? ", " : "", "NULL");
    snprintf(q + n, n < sizeof q ? sizeof q - n : 0, ")");
    r = PQexec(c, q);
    char *plan = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        struct ag_buf text = {0};
        for (int i = 0; i < PQntuples(r); i++)
            ag_buf_printf(&text, "%s\n", PQgetvalue(r, i, 0));
        ag_buf_append(&text, "", 1);
        plan = text.base;
    } else {
        fprintf(stderr, "test_plans: %s: %s", q, PQresultErrorMessage(r));
    }
    PQclear(r);
    snprintf(q, sizeof q, "DEALLOCATE %s", name);
    exec_ok(c, q);
    return plan;
}

int main(void)
{
    const char *base = getenv("DATABASE_URL");
    if (!base || !*base) {
        fprintf(stderr, "test_plans: DATABASE_URL is not set (tools/test.sh starts a cluster): skipped\n");
        return 77;
    }
    ag_log_level = AG_LOG_WARN;
    char db_name[64];
    snprintf(db_name, sizeof db_name, "agentd_plans_%ld", (long)getpid());
    char *url = testdb_create(base, db_name);
    if (!url) return 1;
    char err[512];
    CHECKF(ag_migrate_run(url, err, sizeof err) == 0, "migrate: %s", err);
    PGconn *c = PQconnectdb(url);
    CHECK(PQstatus(c) == CONNECTION_OK);
    CHECK(exec_ok(c, "INSERT INTO threads (thread_id, owner) SELECT gen_random_uuid()::text, 'anonymous' "
                     "FROM generate_series(1, 400)"));
    PGresult *r = PQexec(c, "SELECT reltuples < 0 FROM pg_class WHERE relname = 'threads'");
    CHECKF(PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t"), "threads has no statistics yet");
    PQclear(r);

    int owned = 0, plain_owner_index = 0;
    exec_ok(c, "SET plan_cache_mode = force_generic_plan");
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        if (!strstr(statements[i].text, ") IS TRUE")) continue;
        owned++;
        char *plan = explain(c, "s_owned", statements[i].text);
        CHECKF(plan && !strstr(plan, "threads_owner_"), "%s reads an owner index:\n%s", statements[i].name,
               plan ? plan : "(no plan)");
        ag_free(plan);
        char *plain = owner_plain(statements[i].text);
        plan = explain(c, "s_plain", plain);
        if (plan && strstr(plan, "threads_owner_")) plain_owner_index++;
        ag_free(plan);
        ag_free(plain);
    }
    CHECKF(owned >= 10, "statements with AG_SQL_OWNED: %d", owned);
    CHECKF(plain_owner_index > 0, "the owner compared plainly: no plan read an owner index (%d statements)", owned);
    fprintf(stderr, "test_plans: %d statements; with the owner compared plainly, %d plans read an owner index\n", owned,
            plain_owner_index);

    PQfinish(c);
    ag_free(url);
    CHECK(testdb_drop(base, db_name) == 0);
    return CHECK_DONE();
}
