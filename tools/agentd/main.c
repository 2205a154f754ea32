/* agentd: parse the configuration, open the listening sockets, start one shard per CPU, and turn
 * SIGTERM/SIGINT into a drain (a second signal, or the shutdown deadline, into a stop). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/shard.h"
#include "net/net.h"
#include "protocol/http.h"
#include "protocol/router.h"

static struct ag_config cfg;
static int *listen_fds;

static int shard_start(struct ag_shard *s)
{
    ag_http_shard_init(s, &cfg);
    struct ag_net_config nc = {
        .listen_fd = listen_fds[s->id],
        .priv_size = ag_http_conn_size(),
        .max_conns = cfg.limits.max_conns_per_shard,
        .max_input = (size_t)cfg.limits.max_header_bytes + cfg.limits.max_body_bytes + 65536,
        .linger_ms = 2000,
        .handler = &ag_http_conn_handler,
    };
    listen_fds[s->id] = -1; /* the shard owns it now */
    return ag_net_start(s, &nc);
}

static void shard_drain(struct ag_shard *s)
{
    ag_net_stop_accepting(s);
    ag_http_drain(s);
}

static void shard_exit(struct ag_shard *s)
{
    ag_net_exit(s);
    ag_http_shard_exit(s);
}

static const struct ag_shard_hooks hooks = {
    .on_start = shard_start,
    .on_flush = ag_net_flush,
    .on_drain = shard_drain,
    .is_idle = ag_net_idle,
    .on_stop = ag_http_stop,
    .on_exit = shard_exit,
};

static int open_listeners(int n)
{
    int port = cfg.port;
    for (int i = 0; i < n; i++) {
        int bound = port;
        int fd = ag_net_listen(cfg.host, port, &bound);
        if (fd < 0) {
            ag_log(AG_LOG_ERROR, "msg=\"cannot listen\" host=%s port=%d error=\"%s\"", cfg.host, port,
                   strerror(-fd));
            return -1;
        }
        listen_fds[i] = fd;
        port = bound; /* with port 0, every shard joins the port the first one got */
    }
    cfg.port = port;
    return 0;
}

static void wait_for_signals(struct ag_runtime *rt)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    bool draining = false, stopped = false;
    uint64_t deadline = 0;
    while (ag_runtime_running(rt) > 0) {
        int sig;
        if (!draining) {
            sig = sigwaitinfo(&set, NULL);
        } else {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
            sig = sigtimedwait(&set, NULL, &ts);
        }
        if (sig > 0) {
            if (!draining) {
                ag_log(AG_LOG_INFO, "msg=\"draining\" signal=%s timeout_ms=%u", sig == SIGINT ? "SIGINT" : "SIGTERM",
                       cfg.shutdown_timeout_ms);
                draining = true;
                deadline = ag_clock_mono_ns() + (uint64_t)cfg.shutdown_timeout_ms * 1000000u;
                ag_runtime_drain(rt);
            } else if (!stopped) {
                ag_log(AG_LOG_WARN, "msg=\"second signal: stopping now\"");
                stopped = true;
                ag_runtime_stop(rt);
            }
        }
        if (draining && !stopped && ag_clock_mono_ns() > deadline) {
            ag_log(AG_LOG_WARN, "msg=\"shutdown deadline passed: closing what is left\"");
            stopped = true;
            ag_runtime_stop(rt);
        }
    }
}

int main(int argc, char **argv)
{
    char err[512];
    switch (ag_config_load(&cfg, argc, argv, err, sizeof err)) {
    case AG_CONFIG_EXIT: ag_config_free(&cfg); return 0;
    case AG_CONFIG_BAD:
        fprintf(stderr, "agentd: %s\n", err);
        ag_config_free(&cfg);
        return 2;
    case AG_CONFIG_RUN: break;
    }
    ag_log_level = cfg.log_level;

    /* Shards inherit this mask: only the main thread takes SIGINT/SIGTERM. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    int cpus[1024];
    int ncpus = ag_cpu_affinity(cpus, 1024);
    int nshards = ag_cpu_shard_count(cfg.shards);
    listen_fds = ag_calloc((size_t)nshards, sizeof *listen_fds);
    int rc = 1;
    if (open_listeners(nshards) < 0)
        goto out;
    ag_router_init();
    ag_net_register();
    struct ag_runtime rt;
    if (ag_runtime_start(&rt, &cfg, nshards, cpus, ncpus, &hooks) < 0) {
        ag_log(AG_LOG_ERROR, "msg=\"start-up failed\"");
        goto out;
    }
    bool v6 = strchr(cfg.host, ':') != NULL;
    fprintf(stderr, "agentd: listening on http://%s%s%s:%d (%d shards)\n", v6 ? "[" : "", cfg.host, v6 ? "]" : "",
            cfg.port, nshards);
    wait_for_signals(&rt);
    ag_runtime_join(&rt);
    ag_log(AG_LOG_INFO, "msg=\"stopped\"");
    rc = 0;
out:
    for (int i = 0; i < nshards; i++)
        if (listen_fds[i] > 0)
            close(listen_fds[i]);
    ag_free(listen_fds);
    ag_config_free(&cfg);
    return rc;
}
