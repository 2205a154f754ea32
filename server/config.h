/* Start-up configuration: defaults < JSON config file (--config) < environment < command-line flags.
 * Loaded once on the main thread before the shards start; read-only afterwards. */
#ifndef AG_SERVER_CONFIG_H
#define AG_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/shard.h"             /* struct ag_loop_config */
#include "persist/pg.h"             /* struct ag_pg_config */
#include "protocol/http.h"          /* struct ag_http_limits */
#include "runtime/cron_scheduler.h" /* struct ag_cron_config */
#include "runtime/run.h"            /* struct ag_run_limits */
#include "runtime/tlog.h"           /* struct ag_tlog_limits */

/* The server's settings: its own, then each layer's struct (documented in that layer's header). The
 * file keys are dotted paths (server/config.c maps each to its field). */
struct ag_config {
    char *host;
    char *graphs_file; /* graphs_file, AGENTD_GRAPHS, --graphs: a langgraph.json (server/graphs_file.h); NULL: none */
    int port;   /* 0: the kernel picks one, shared by all shards */
    int shards; /* 0: one per CPU of the affinity mask, capped by the cgroup quota */
    int log_level; /* enum ag_log_level */
    uint32_t shutdown_timeout_ms;
    uint32_t max_conns_per_shard; /* limits.max_conns_per_shard: open connections per shard; beyond: 503 and close */
    struct ag_loop_config loop;   /* limits.stall_report_ms, runs.work_per_turn */
    struct ag_pg_config db;       /* database_url, database.* */
    struct ag_http_limits http;   /* limits.* */
    struct ag_run_limits runs;    /* runs.* */
    struct ag_tlog_limits events; /* events.* */
    struct ag_cron_config crons;  /* crons.* */
};

enum ag_config_status {
    AG_CONFIG_RUN = 0,  /* configuration complete: start the server */
    AG_CONFIG_EXIT = 1, /* --help or --version was printed: exit 0 */
    AG_CONFIG_BAD = 2,  /* a message was written to err: exit 2 */
};

/* Fills cfg from defaults, the file named by --config, the environment (HOST, PORT, AGENTD_SHARDS,
 * DATABASE_URL, AGENTD_LOG_LEVEL, AGENTD_GRAPHS) and argv, in that order of precedence. Unknown keys, wrong types and
 * out-of-range values are errors that name the key. Writes a message to err (size errlen) on
 * AG_CONFIG_BAD and help/version text to stdout on AG_CONFIG_EXIT. */
enum ag_config_status ag_config_load(struct ag_config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Frees the strings cfg owns. */
void ag_config_free(struct ag_config *cfg);

#endif
