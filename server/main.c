/* agentd: parse the configuration, start the server, and turn SIGTERM/SIGINT into a drain (a second
 * signal, or the shutdown deadline, into a stop). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "persist/migrate.h"
#include "protocol/agent/assistants.h"
#include "server/config.h"
#include "server/graphs_file.h"
#include "server/server.h"

static void wait_for_signals(struct ag_server *srv, const struct ag_config *cfg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    bool draining = false, stopped = false;
    uint64_t deadline = 0;
    while (ag_server_running(srv) > 0) {
        int sig;
        if (!draining) {
            sig = sigwaitinfo(&set, NULL);
        } else {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(20 * AG_NS_PER_MS)};
            sig = sigtimedwait(&set, NULL, &ts);
        }
        if (sig > 0) {
            if (!draining) {
                ag_log(AG_LOG_INFO, "msg=\"draining\" signal=%s timeout_ms=%u", sig == SIGINT ? "SIGINT" : "SIGTERM",
                       cfg->shutdown_timeout_ms);
                draining = true;
                deadline = ag_clock_mono_ns() + ag_ms_to_ns(cfg->shutdown_timeout_ms);
                ag_server_drain(srv);
            } else if (!stopped) {
                ag_log(AG_LOG_WARN, "msg=\"second signal: stopping now\"");
                stopped = true;
                ag_server_stop(srv);
            }
        }
        if (draining && !stopped && ag_clock_mono_ns() > deadline) {
            ag_log(AG_LOG_WARN, "msg=\"shutdown deadline passed: closing what is left\"");
            stopped = true;
            ag_server_stop(srv);
        }
    }
}

int main(int argc, char **argv)
{
    struct ag_config cfg;
    char err[1024];
    /* `agentd migrate [options]`: apply the schema migrations and exit (for deploys that migrate
     * separately from starting the servers). */
    bool migrate_only = argc > 1 && !strcmp(argv[1], "migrate");
    if (migrate_only) {
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    switch (ag_config_load(&cfg, argc, argv, err, sizeof err)) {
    case AG_CONFIG_EXIT: ag_config_free(&cfg); return 0;
    case AG_CONFIG_BAD:
        fprintf(stderr, "agentd: %s\n", err);
        ag_config_free(&cfg);
        return 2;
    case AG_CONFIG_RUN: break;
    }
    ag_log_level = cfg.log_level;
    /* The user's graphs, before the schema's seed (their system assistants) and the shards. */
    if (cfg.graphs_file && *cfg.graphs_file && ag_graphs_file_load(cfg.graphs_file, err, sizeof err) < 0) {
        fprintf(stderr, "agentd: %s\n", err);
        ag_config_free(&cfg);
        return 2;
    }
    if (migrate_only) {
        int rc = 0;
        if (!cfg.db.url || !*cfg.db.url) {
            fprintf(stderr, "agentd migrate: no database (set DATABASE_URL or database_url)\n");
            rc = 2;
        } else if (ag_migrate_set_seed(ag_assistants_seed), ag_migrate_run(cfg.db.url, err, sizeof err) != 0) {
            fprintf(stderr, "agentd migrate: %s\n", err);
            rc = 1;
        } else {
            fprintf(stderr, "agentd migrate: schema is at version %d\n", ag_migrate_latest());
        }
        ag_config_free(&cfg);
        return rc;
    }

    /* Every connection is a descriptor: take the whole allowance the hard limit gives. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }

    /* The shards inherit this mask: only this thread takes SIGINT/SIGTERM. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct ag_server srv;
    if (ag_server_start(&srv, &cfg) < 0) {
        ag_log(AG_LOG_ERROR, "msg=\"start-up failed\"");
        ag_config_free(&cfg);
        return 1;
    }
    bool v6 = strchr(cfg.host, ':') != NULL;
    fprintf(stderr, "agentd: listening on http://%s%s%s:%d (%d shards)\n", v6 ? "[" : "", cfg.host, v6 ? "]" : "",
            srv.port, srv.nshards);
    wait_for_signals(&srv, &cfg);
    ag_server_join(&srv);
    ag_log(AG_LOG_INFO, "msg=\"stopped\"");
    ag_config_free(&cfg);
    return 0;
}
