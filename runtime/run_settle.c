/* Start-up settlement of runs left by dead agentd processes (ag_run_settle_dead in run.h): runs on the
 * bootstrap thread, on its blocking migration connection, before any shard takes work. */
#include "runtime/run.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "runtime/run_internal.h"

/* Dead processes settled in one start-up, at most; more wait for the next start or their lease. */
#define SETTLE_MAX 256

/* The state and start time (clock ticks after boot) of pid from /proc/<pid>/stat; -ENOENT when there
 * is no such process, -EIO when the file does not read as expected. */
static int pid_stat(long pid, char *state, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? -ENOENT : -EIO;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* comm (field 2) may hold spaces and parentheses: the fields go on after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EIO;
    *state = p[2];
    p += 3;
    for (int field = 4; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -EIO;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

/* True unless pid surely no longer runs the process that started at start (gone, a zombie, or
 * reused by a process started at another time). */
static bool pid_alive(long pid, unsigned long long start)
{
    char state;
    unsigned long long now_start;
    int rc = pid_stat(pid, &state, &now_start);
    if (rc == -ENOENT) /* or hidden from us (hidepid): kill tells EPERM from ESRCH */
        return !(kill((pid_t)pid, 0) == -1 && errno == ESRCH);
    if (rc < 0)
        return true; /* cannot tell: the lease decides */
    return state != 'Z' && state != 'X' && now_start == start;
}

/* Where a pid names one process: "<kernel boot id> <pid namespace>" into out (size n), "" when it
 * cannot be read (then no pid is checked). Two containers on one host may share a host name, not a
 * pid namespace; a rebooted host reuses pids and start times. */
static void pid_scope(char *out, size_t n)
{
    char boot[64] = "", ns[64] = "";
    out[0] = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return;
    bool ok = fgets(boot, sizeof boot, f) != NULL;
    fclose(f);
    boot[strcspn(boot, "\n")] = 0;
    ssize_t l = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    if (!ok || !boot[0] || l <= 0)
        return;
    ns[l] = 0;
    snprintf(out, n, "%s %s", boot, ns);
}

static int fail(PGresult *res, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return -1;
}

int ag_run_settle_dead(PGconn *pg, char *err, size_t errlen)
{
    ag_run__boot_id_init();
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    char scope[160];
    pid_scope(scope, sizeof scope);
    char state;
    unsigned long long self_start = 0;
    if (pid_stat((long)getpid(), &state, &self_start) != 0) {
        self_start = 0;
        scope[0] = 0; /* nobody can check this process either */
    }

    /* Processes of this host that are gone: their runs end now, with their threads. */
    char max[16];
    snprintf(max, sizeof max, "%d", SETTLE_MAX);
    const char *hp[4] = {host, ag_run__boot_id, max, scope};
    PGresult *res = PQexecParams(pg,
                                 "SELECT boot_id, pid, pid_start FROM agentd_processes WHERE host = $1 AND pid_scope = $4 "
                                 "AND $4 <> '' AND boot_id <> $2 ORDER BY started_at LIMIT $3::int",
                                 4, NULL, hp, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(res, "listing agentd processes", err, errlen);
    /* A Postgres text[] literal of the dead boot ids (uuids: nothing to quote). */
    char dead[SETTLE_MAX * 40 + 3];
    size_t dl = 0;
    int ndead = 0;
    dead[dl++] = '{';
    for (int i = 0; i < PQntuples(res); i++) {
        long pid = strtol(PQgetvalue(res, i, 1), NULL, 10);
        unsigned long long start = strtoull(PQgetvalue(res, i, 2), NULL, 10);
        if (pid_alive(pid, start))
            continue;
        dl += (size_t)snprintf(dead + dl, sizeof dead - dl, "%s%s", ndead ? "," : "", PQgetvalue(res, i, 0));
        ndead++;
    }
    dead[dl++] = '}';
    dead[dl] = 0;
    PQclear(res);

    if (ndead) {
        const char *dp[1] = {dead};
        res = PQexecParams(
            pg,
            "WITH p AS (SELECT boot_id, host, pid FROM agentd_processes WHERE boot_id = ANY($1::text[])), "
            "dead AS (UPDATE runs r SET status = 'error', error = format('the agentd process running this run "
            "stopped (pid %s on host %s); the run was ended at start-up', p.pid, p.host), updated_at = now(), "
            "ended_at = now() FROM p WHERE r.claimed_by = p.boot_id AND r.status IN ('pending', 'running') "
            "RETURNING r.run_id, r.thread_id), "
            /* A thread's status follows its latest run: only threads whose latest run ends here. */
            "latest AS (SELECT DISTINCT ON (thread_id) thread_id, run_id FROM runs "
            "WHERE thread_id IN (SELECT thread_id FROM dead) ORDER BY thread_id, created_at DESC, run_id DESC), "
            "t AS (UPDATE threads t SET status = 'error', updated_at = now() FROM latest l "
            "WHERE t.thread_id = l.thread_id AND l.run_id IN (SELECT run_id FROM dead)), "
            "gone AS (DELETE FROM agentd_processes WHERE boot_id IN (SELECT boot_id FROM p)) "
            "SELECT count(*) FROM dead",
            1, NULL, dp, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            return fail(res, "settling the runs of stopped agentd processes", err, errlen);
        ag_log(AG_LOG_WARN, "msg=\"runs of stopped agentd processes on this host ended as error\" processes=%d runs=%s",
               ndead, PQgetvalue(res, 0, 0));
        PQclear(res);
    }

    char pid[24], start[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    snprintf(start, sizeof start, "%llu", self_start);
    const char *ip[5] = {ag_run__boot_id, host, pid, start, scope};
    res = PQexecParams(pg,
                       "INSERT INTO agentd_processes (boot_id, host, pid, pid_start, pid_scope) VALUES ($1, $2, $3, $4, $5) "
                       "ON CONFLICT (boot_id) DO UPDATE SET heartbeat_at = now()",
                       5, NULL, ip, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(res, "registering this agentd process", err, errlen);
    PQclear(res);
    return 0;
}
