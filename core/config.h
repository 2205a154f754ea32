/* Start-up configuration: defaults < JSON config file (--config) < environment < command-line flags.
 * Loaded once on the main thread before the shards start; read-only afterwards. */
#ifndef AG_CORE_CONFIG_H
#define AG_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct ag_limits {
    uint32_t max_header_bytes;    /* request line + headers; beyond: 431 */
    uint64_t max_body_bytes;      /* request body; beyond: 413 */
    uint32_t max_conns_per_shard; /* open connections per shard; beyond: 503 and close */
    uint32_t idle_timeout_ms;     /* keep-alive connection with no request in progress and nothing left to send */
    uint32_t header_timeout_ms;   /* from a request's first byte to its complete head; beyond: 408 */
    uint32_t stream_backlog_bytes; /* output queued for a streaming client that does not read; beyond: cut off */
    uint32_t send_timeout_ms;      /* a connection with output pending that could send no byte for this
                                    * long is closed (it is not idle while it has output to send) */
    uint32_t stall_report_ms;      /* a loop turn longer than this is logged (warn) with what ran; 0: never */
};

struct ag_run_limits {
    uint32_t timeout_ms;      /* a run still active after this ends with status timeout */
    uint32_t heartbeat_ms;    /* SSE heartbeat comments and /wait keep-alive newlines */
    uint32_t queue_max;       /* runs pending on one thread (enqueue); beyond: 503 */
    uint32_t events_max;      /* events kept in memory per run for join/attach replay */
    uint64_t recent_bytes;    /* what the ended runs a shard keeps for join/attach may hold; beyond,
                               * the oldest go (join and attach answer from Postgres) */
    uint32_t recent_ms;       /* how long an ended run stays in memory for join/attach */
    uint32_t lease_ms;        /* an active run's claim in Postgres, renewed every lease_ms/3; a run
                               * whose lease expired (its process is gone) ends as error */
    uint32_t work_per_turn;   /* run work (events, node calls, supersteps) a shard does per loop turn;
                               * beyond: runs yield to the next turn */
};

struct ag_event_limits {
    uint32_t retain_per_thread; /* v2 events kept in Postgres per thread; older ones are deleted */
    uint32_t memory_per_thread; /* recent v2 events kept in memory per thread for quick replays */
    uint64_t memory_bytes_per_shard; /* what every v2 log of a shard may hold in memory; beyond, events
                                      * already written and delivered leave it (replays read Postgres) */
    uint32_t idle_keep_ms;      /* how long an idle thread's log entry (its seq) stays in memory */
    uint32_t idle_close_ms;     /* a v2 stream with nothing to send and no run on its thread ends */
};

struct ag_cron_limits {
    uint32_t poll_ms;  /* the longest pause between two looks for due crons (sooner when one is due) */
    uint32_t claim_ms; /* how long a process's claim on a due cron lasts before another may fire it */
};

struct ag_config {
    char *host;
    int port; /* 0: the kernel picks one, shared by all shards */
    int shards; /* 0: one per CPU of the affinity mask, capped by the cgroup quota */
    char *database_url;
    uint32_t db_connections_per_shard; /* Postgres connections each shard keeps */
    uint32_t db_queue_max;             /* queries queued or in flight per shard; beyond: 503 */
    int log_level; /* enum ag_log_level */
    uint32_t shutdown_timeout_ms;
    struct ag_limits limits;
    struct ag_run_limits runs;
    struct ag_event_limits events;
    struct ag_cron_limits crons;
};

enum ag_config_status {
    AG_CONFIG_RUN = 0,  /* configuration complete: start the server */
    AG_CONFIG_EXIT = 1, /* --help or --version was printed: exit 0 */
    AG_CONFIG_BAD = 2,  /* a message was written to err: exit 2 */
};

/* Fills cfg from defaults, the file named by --config, the environment (HOST, PORT, AGENTD_SHARDS,
 * DATABASE_URL, AGENTD_LOG_LEVEL) and argv, in that order of precedence. Unknown keys, wrong types and
 * out-of-range values are errors that name the key. Writes a message to err (size errlen) on
 * AG_CONFIG_BAD and help/version text to stdout on AG_CONFIG_EXIT. */
enum ag_config_status ag_config_load(struct ag_config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Frees the strings cfg owns. */
void ag_config_free(struct ag_config *cfg);

#endif
