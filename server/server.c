#include "server/server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/tz.h"
#include "net/net.h"
#include "net/stats.h"
#include "persist/migrate.h"
#include "persist/pg.h"
#include "persist/stats.h"
#include "protocol/agent/assistants.h"
#include "protocol/agent/run_sinks.h"
#include "protocol/agent/store.h"
#include "protocol/agent/threads.h"
#include "protocol/agent/v2_stream.h"
#include "protocol/http.h"
#include "protocol/router.h"
#include "protocol/stats.h"
#include "runtime/cron_scheduler.h"
#include "runtime/run.h"
#include "runtime/stats.h"
#include "runtime/tlog.h"

/* --- the per-shard modules --- */

/* One module's part in a shard's life. start runs in table order when the shard starts; idle is asked of
 * every module in table order while the shard drains (a module may end work there that others then see:
 * cancelled runs write v2 events, so runs come before the event log); flush runs in table order at the
 * loop's flush phase; exit runs in reverse table order. Any hook may be NULL. */
struct ag_module {
    const char *name;
    int (*start)(struct ag_shard *s, struct ag_server *srv); /* 0, or -errno to abort the shard */
    bool (*idle)(struct ag_shard *s);
    void (*flush)(struct ag_shard *s);
    void (*exit)(struct ag_shard *s);
};

static int http_start(struct ag_shard *s, struct ag_server *srv)
{
    ag_http_shard_init(s, &srv->cfg->http);
    return 0;
}

static int pg_start(struct ag_shard *s, struct ag_server *srv)
{
    ag_pg_start(s, &srv->cfg->db);
    return 0;
}

static int threads_start(struct ag_shard *s, struct ag_server *srv)
{
    (void)srv;
    ag_threads_shard_start(s);
    return 0;
}

static int store_start(struct ag_shard *s, struct ag_server *srv)
{
    (void)srv;
    ag_store_shard_start(s);
    return 0;
}

static int runs_start(struct ag_shard *s, struct ag_server *srv)
{
    ag_run_shard_init(s, &srv->cfg->runs, &ag_run_sinks_codec);
    return 0;
}

static void runs_exit(struct ag_shard *s)
{
    ag_run_shard_exit(s);
    ag_run_sinks_shard_exit();
}

static int tlog_start(struct ag_shard *s, struct ag_server *srv)
{
    ag_tlog_shard_init(s, &srv->cfg->events, &ag_v2_stream_codec);
    return 0;
}

static int crons_start(struct ag_shard *s, struct ag_server *srv)
{
    ag_cron_scheduler_start(s, &srv->cfg->crons);
    return 0;
}

/* Last: the shard takes connections once everything they may reach is up. */
static int net_start(struct ag_shard *s, struct ag_server *srv)
{
    const struct ag_config *cfg = srv->cfg;
    struct ag_net_config nc = {
        .listen_fd = srv->listen_fds[s->id],
        .priv_size = ag_http_conn_size(),
        .max_conns = srv->max_conns,
        .max_input = (size_t)cfg->http.max_header_bytes + cfg->http.max_body_bytes + 65536,
        .linger_ms = 2000,
        .handler = &ag_http_conn_handler,
    };
    srv->listen_fds[s->id] = -1; /* the shard owns it now */
    return ag_net_start(s, &nc);
}

static const struct ag_module modules[] = {
    {.name = "http", .start = http_start, .flush = ag_http_flush, .exit = ag_http_shard_exit},
    /* Flushed before the sockets: a query answered from the inbox still leaves this turn. */
    {.name = "pg", .start = pg_start, .flush = ag_pg_flush, .exit = ag_pg_exit},
    {.name = "threads", .start = threads_start, .exit = ag_threads_shard_exit},
    {.name = "store", .start = store_start, .exit = ag_store_shard_exit},
    /* Cancels what still runs: its sinks end, then their connections. */
    {.name = "runs", .start = runs_start, .idle = ag_run_shard_idle, .exit = runs_exit},
    /* v2 streams end; the last events (the cancelled runs' included) are written. */
    {.name = "tlog", .start = tlog_start, .idle = ag_tlog_shard_idle, .exit = ag_tlog_shard_exit},
    {.name = "crons", .start = crons_start, .idle = ag_cron_scheduler_idle, .exit = ag_cron_scheduler_stop},
    {.name = "net", .start = net_start, .idle = ag_net_idle, .flush = ag_net_flush, .exit = ag_net_exit},
};

static int shard_start(struct ag_shard *s)
{
    struct ag_server *srv = s->rt->user;
    for (size_t i = 0; i < AG_ARRAY_LEN(modules); i++) {
        int rc = modules[i].start ? modules[i].start(s, srv) : 0;
        if (rc < 0) {
            ag_log(AG_LOG_ERROR, "shard=%d msg=\"module did not start\" module=%s error=\"%s\"", s->id, modules[i].name,
                   strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void shard_drain(struct ag_shard *s)
{
    ag_net_stop_accepting(s);
    ag_http_drain(s);
}

enum { MSG_SERVER_RECHECK = 8 };

static void on_recheck(struct ag_shard *s, const struct ag_msg *m)
{
    /* Nothing to do: the message only wakes the loop so it looks at is_idle again. */
}

/* While draining, a shard may leave its loop only when every shard is idle: a shard with requests in
 * progress may still forward one to a thread owned by another shard, which must be there to run it. */
static bool shard_idle(struct ag_shard *s)
{
    struct ag_server *srv = s->rt->user;
    bool mine = true;
    for (size_t i = 0; i < AG_ARRAY_LEN(modules); i++)
        if (modules[i].idle)
            mine = modules[i].idle(s) && mine; /* every module is asked: idle may end work */
    bool was = atomic_exchange(&srv->idle[s->id], mine);
    if (!mine)
        return false;
    if (!was) {
        for (int i = 0; i < srv->nshards; i++) {
            struct ag_msg m = {.type = MSG_SERVER_RECHECK};
            if (i != s->id)
                (void)ag_shard_send(s, i, &m); /* a full queue already wakes the shard */
        }
    }
    for (int i = 0; i < srv->nshards; i++)
        if (!atomic_load(&srv->idle[i]))
            return false;
    return true;
}

static void shard_flush(struct ag_shard *s)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(modules); i++)
        if (modules[i].flush)
            modules[i].flush(s);
}

static void shard_exit(struct ag_shard *s)
{
    for (size_t i = AG_ARRAY_LEN(modules); i-- > 0;)
        if (modules[i].exit)
            modules[i].exit(s);
}

static const struct ag_shard_hooks hooks = {
    .on_start = shard_start,
    .on_flush = shard_flush,
    .on_drain = shard_drain,
    .is_idle = shard_idle,
    .on_stop = ag_http_stop,
    .on_exit = shard_exit,
    .on_data_room = ag_http_data_room,
};

static void close_listeners(struct ag_server *srv)
{
    for (int i = 0; i < srv->nshards; i++)
        if (srv->listen_fds[i] >= 0)
            close(srv->listen_fds[i]);
    ag_free(srv->listen_fds);
    srv->listen_fds = NULL;
    ag_free(srv->idle);
    srv->idle = NULL;
}

/* Rows every server needs, then the runs of dead processes settled before this one takes work. */
static int seed_and_settle(PGconn *pg, char *err, size_t errlen)
{
    if (ag_assistants_seed(pg, err, errlen))
        return -1;
    return ag_run_settle_dead(pg, err, errlen);
}

/* Descriptors kept for what is not a client connection: per process (stdio, logs, the migration's
 * connection, plugins) and per shard (its ring, listener and worker sockets, besides its Postgres
 * connections). */
#define FD_RESERVE 32
#define FD_RESERVE_PER_SHARD 8

/* Every connection is a descriptor: a limit the descriptors cannot hold ends in accept failing with
 * EMFILE, where new clients wait unanswered instead of being told 503. */
static uint32_t conns_per_shard(const struct ag_config *cfg, int nshards)
{
    uint32_t want = cfg->max_conns_per_shard;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return want;
    uint64_t other = FD_RESERVE + (uint64_t)nshards * (FD_RESERVE_PER_SHARD + cfg->db.connections_per_shard +
                                                       AG_NET_REJECT_RESERVE);
    uint64_t fit = rl.rlim_cur > other ? (rl.rlim_cur - other) / (uint64_t)nshards : 0;
    if (fit >= want)
        return want;
    uint32_t got = fit ? (uint32_t)fit : 1;
    ag_log(fit ? AG_LOG_INFO : AG_LOG_WARN,
           "msg=\"max_conns_per_shard lowered to fit RLIMIT_NOFILE\" configured=%u effective=%u nofile=%llu shards=%d",
           want, got, (unsigned long long)rl.rlim_cur, nshards);
    return got;
}

int ag_server_start(struct ag_server *srv, const struct ag_config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    int cpus[1024];
    int ncpus = ag_cpu_affinity(cpus, 1024);
    srv->nshards = ag_cpu_shard_count(cfg->shards);
    srv->max_conns = conns_per_shard(cfg, srv->nshards);
    srv->listen_fds = ag_malloc((size_t)srv->nshards * sizeof *srv->listen_fds);
    srv->idle = ag_calloc((size_t)srv->nshards, sizeof *srv->idle);
    for (int i = 0; i < srv->nshards; i++)
        srv->listen_fds[i] = -1;
    int port = cfg->port;
    for (int i = 0; i < srv->nshards; i++) {
        int bound = port;
        int fd = ag_net_listen(cfg->host, port, &bound);
        if (fd < 0) {
            ag_log(AG_LOG_ERROR, "msg=\"cannot listen\" host=%s port=%d error=\"%s\"", cfg->host, port,
                   strerror(-fd));
            close_listeners(srv);
            return -1;
        }
        srv->listen_fds[i] = fd;
        port = bound; /* with port 0, every shard joins the port the first one got */
    }
    srv->port = port;
    ag_router_init();
    ag_net_register();
    ag_pg_register();
    ag_http_register();
    ag_cron_scheduler_register();
    ag_run_register();
    ag_cron_scheduler_set_create(ag_run_sinks_create_cb);
    ag_shard_register_msg(MSG_SERVER_RECHECK, on_recheck);
    /* Every layer's metrics, for /metrics (core's are there from the start). */
    ag_stats_register(AG_STATS_NET, ag_net_stat_descs, AG_NET_STATS_N);
    ag_stats_register(AG_STATS_PERSIST, ag_persist_stat_descs, AG_PERSIST_STATS_N);
    ag_stats_register(AG_STATS_RUNTIME, ag_runtime_stat_descs, AG_RUNTIME_STATS_N);
    ag_stats_register(AG_STATS_PROTOCOL, ag_protocol_stat_descs, AG_PROTOCOL_STATS_N);
    /* Cron time zones: read once here, never by a shard (TZDIR moves the database, as for the C library). */
    const char *tzdir = getenv("TZDIR");
    if (ag_tz_db_load(tzdir && *tzdir ? tzdir : "/usr/share/zoneinfo") == 0)
        ag_log(AG_LOG_WARN, "msg=\"no time zone database (install tzdata): cron schedules accept only UTC\"");
    ag_migrate_set_seed(seed_and_settle);
    if (cfg->db.url && *cfg->db.url)
        ag_migrate_start(cfg->db.url);
    if (ag_runtime_start(&srv->rt, &cfg->loop, srv->nshards, cpus, ncpus, &hooks, srv) < 0) {
        ag_migrate_stop();
        ag_tz_db_free();
        close_listeners(srv);
        return -1;
    }
    return 0;
}

void ag_server_drain(struct ag_server *srv)
{
    ag_runtime_drain(&srv->rt);
}

void ag_server_stop(struct ag_server *srv)
{
    ag_runtime_stop(&srv->rt);
}

int ag_server_running(struct ag_server *srv)
{
    return ag_runtime_running(&srv->rt);
}

void ag_server_join(struct ag_server *srv)
{
    ag_runtime_join(&srv->rt);
    ag_tz_db_free();
    ag_migrate_stop();
    close_listeners(srv);
}
