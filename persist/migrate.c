#include "persist/migrate.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "persist/migrations.h"

/* An arbitrary, fixed key: every agentd process serialises its migrations on it. */
#define MIGRATE_LOCK_KEY 0x61676e7464L

static _Atomic bool ready;
static _Atomic bool stop_requested;
static pthread_t thread;
static bool thread_started;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;

static void quiet_notice(void *arg, const char *msg)
{
    char line[512];
    ag_log(AG_LOG_DEBUG, "msg=\"postgres notice\" text=\"%s\"", ag_log_clean(line, sizeof line, msg));
}

int ag_migrate_latest(void)
{
    return ag_migrations_count ? ag_migrations[ag_migrations_count - 1].version : 0;
}

static ag_migrate_seed_fn seed_fn;

void ag_migrate_set_seed(ag_migrate_seed_fn fn)
{
    seed_fn = fn;
}

static int exec_ok(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

int ag_migrate_run(const char *conninfo, char *err, size_t errlen)
{
    /* The caller's connection string, with a bounded connect time added after it (later keywords win). */
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {conninfo, "5", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    char sql[256];
    int rc = -1;
    if (exec_ok(pg, "BEGIN", err, errlen))
        goto out;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%ld)", MIGRATE_LOCK_KEY);
    if (exec_ok(pg, sql, err, errlen) ||
        exec_ok(pg,
                "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen))
        goto rollback;
    PGresult *r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        goto rollback;
    }
    int current = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (current > ag_migrate_latest()) {
        snprintf(err, errlen, "the database schema is version %d, newer than this agentd knows (%d)", current,
                 ag_migrate_latest());
        goto rollback;
    }
    for (size_t i = 0; i < ag_migrations_count; i++) {
        const struct ag_migration *m = &ag_migrations[i];
        if (m->version <= current)
            continue;
        if (exec_ok(pg, m->sql, err, errlen)) {
            char what[160];
            snprintf(what, sizeof what, "migration %s: ", m->name);
            size_t wl = strlen(what), el = strlen(err);
            if (wl + el < errlen) {
                memmove(err + wl, err, el + 1);
                memcpy(err, what, wl);
            }
            goto rollback;
        }
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m->version);
        const char *args[2] = {ver, m->name};
        r = PQexecParams(pg, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", 2, NULL, args, NULL,
                         NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            goto rollback;
        ag_log(AG_LOG_INFO, "msg=\"migration applied\" version=%d name=%s", m->version, m->name);
    }
    if (seed_fn && seed_fn(pg, err, errlen))
        goto rollback;
    if (exec_ok(pg, "COMMIT", err, errlen))
        goto out;
    rc = 0;
    goto out;
rollback:
    PQclear(PQexec(pg, "ROLLBACK"));
out:
    PQfinish(pg);
    return rc;
}

static void *bootstrap(void *arg)
{
    const char *conninfo = arg;
    unsigned backoff_ms = 100;
    char err[1024], last[1024] = "";
    while (!atomic_load(&stop_requested)) {
        if (ag_migrate_run(conninfo, err, sizeof err) == 0) {
            atomic_store(&ready, true);
            ag_log(AG_LOG_INFO, "msg=\"database schema ready\" version=%d", ag_migrate_latest());
            return NULL;
        }
        char line[1024];
        ag_log_clean(line, sizeof line, err);
        snprintf(err, sizeof err, "%s", line);
        if (strcmp(err, last)) /* say it once, not on every retry */
            ag_log(AG_LOG_WARN, "msg=\"database not available; retrying\" error=\"%s\"", err);
        snprintf(last, sizeof last, "%s", err);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += backoff_ms / AG_MS_PER_SEC;
        until.tv_nsec += (long)ag_ms_to_ns(backoff_ms % AG_MS_PER_SEC);
        if (until.tv_nsec >= (long)AG_NS_PER_SEC) {
            until.tv_sec++;
            until.tv_nsec -= (long)AG_NS_PER_SEC;
        }
        pthread_mutex_lock(&stop_mu);
        if (!atomic_load(&stop_requested))
            pthread_cond_timedwait(&stop_cv, &stop_mu, &until);
        pthread_mutex_unlock(&stop_mu);
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
    }
    return NULL;
}

void ag_migrate_start(const char *conninfo)
{
    if (pthread_create(&thread, NULL, bootstrap, (void *)conninfo) == 0)
        thread_started = true;
}

bool ag_migrate_ready(void)
{
    return atomic_load(&ready);
}

void ag_migrate_stop(void)
{
    if (!thread_started)
        return;
    pthread_mutex_lock(&stop_mu);
    atomic_store(&stop_requested, true);
    pthread_cond_signal(&stop_cv);
    pthread_mutex_unlock(&stop_mu);
    pthread_join(thread, NULL);
    thread_started = false;
}
