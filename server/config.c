#include "server/config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/log.h"

#ifndef AG_VERSION
#define AG_VERSION "0.0.0"
#endif

enum opt_type { T_STR, T_INT, T_U32, T_U64, T_LEVEL };

/* One configurable setting: where it lives in the file, the environment and struct ag_config. */
struct opt {
    const char *key; /* dotted path in the JSON file */
    const char *env; /* environment variable or NULL */
    enum opt_type type;
    size_t off;
    int64_t min, max;
};

#define OFF(f) offsetof(struct ag_config, f)
static const struct opt opts[] = {
    {"host", "HOST", T_STR, OFF(host), 0, 0},
    {"graphs_file", "AGENTD_GRAPHS", T_STR, OFF(graphs_file), 0, 0},
    {"port", "PORT", T_INT, OFF(port), 0, 65535},
    {"shards", "AGENTD_SHARDS", T_INT, OFF(shards), 0, 1024},
    {"database_url", "DATABASE_URL", T_STR, OFF(db.url), 0, 0},
    {"log_level", "AGENTD_LOG_LEVEL", T_LEVEL, OFF(log_level), 0, 0},
    {"database.connections_per_shard", NULL, T_U32, OFF(db.connections_per_shard), 1, 64},
    {"database.queue_max", NULL, T_U32, OFF(db.queue_max), 1, 1000000},
    {"shutdown_timeout_ms", NULL, T_U32, OFF(shutdown_timeout_ms), 0, 3600000},
    {"limits.max_header_bytes", NULL, T_U32, OFF(http.max_header_bytes), 256, 1 << 20},
    {"limits.max_body_bytes", NULL, T_U64, OFF(http.max_body_bytes), 0, (int64_t)1 << 32},
    {"limits.max_conns_per_shard", NULL, T_U32, OFF(max_conns_per_shard), 1, 1000000},
    {"limits.idle_timeout_ms", NULL, T_U32, OFF(http.idle_timeout_ms), 1, 86400000},
    {"limits.header_timeout_ms", NULL, T_U32, OFF(http.header_timeout_ms), 1, 3600000},
    {"limits.stream_backlog_bytes", NULL, T_U32, OFF(http.stream_backlog_bytes), 4096, 1u << 30},
    {"limits.send_timeout_ms", NULL, T_U32, OFF(http.send_timeout_ms), 1, 86400000},
    {"limits.stall_report_ms", NULL, T_U32, OFF(loop.stall_report_ms), 0, 3600000},
    {"runs.timeout_ms", NULL, T_U32, OFF(runs.timeout_ms), 1, 86400000},
    {"runs.heartbeat_ms", NULL, T_U32, OFF(runs.heartbeat_ms), 10, 3600000},
    {"runs.queue_max", NULL, T_U32, OFF(runs.queue_max), 1, 1000000},
    {"runs.events_max", NULL, T_U32, OFF(runs.events_max), 16, 10000000},
    {"runs.recent_bytes", NULL, T_U64, OFF(runs.recent_bytes), 0, (int64_t)1 << 40},
    {"runs.recent_ms", NULL, T_U32, OFF(runs.recent_ms), 0, 86400000},
    {"runs.idle_checkpoint_bytes", NULL, T_U64, OFF(runs.idle_checkpoint_bytes), 0, (int64_t)1 << 40},
    {"runs.idle_checkpoint_ms", NULL, T_U32, OFF(runs.idle_checkpoint_ms), 0, 86400000},
    {"runs.lease_ms", NULL, T_U32, OFF(runs.lease_ms), 300, 86400000},
    {"runs.direct_ms", NULL, T_U32, OFF(runs.direct_ms), 0, 60000},
    {"runs.work_per_turn", NULL, T_U32, OFF(loop.work_per_turn), 1, 10000000},
    {"events.retain_per_thread", NULL, T_U32, OFF(events.retain_per_thread), 16, 100000000},
    {"events.memory_per_thread", NULL, T_U32, OFF(events.memory_per_thread), 16, 1000000},
    {"events.memory_bytes_per_shard", NULL, T_U64, OFF(events.memory_bytes_per_shard), 65536, (int64_t)1 << 40},
    {"events.idle_keep_ms", NULL, T_U32, OFF(events.idle_keep_ms), 0, 86400000},
    {"events.idle_close_ms", NULL, T_U32, OFF(events.idle_close_ms), 10, 86400000},
    {"crons.poll_ms", NULL, T_U32, OFF(crons.poll_ms), 10, 3600000},
    {"crons.claim_ms", NULL, T_U32, OFF(crons.claim_ms), 1000, 86400000},
};
#undef OFF

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Stores the textual value s (from the environment or a flag) into the option. */
static int set_from_text(struct ag_config *cfg, const struct opt *o, const char *s, const char *origin, char *err,
                         size_t errlen)
{
    char *p = (char *)cfg + o->off;
    if (o->type == T_STR) {
        ag_free(*(char **)p);
        *(char **)p = ag_strdup(s);
        return 0;
    }
    if (o->type == T_LEVEL) {
        int lvl = ag_log_parse_level(s);
        if (lvl < 0)
            return fail(err, errlen, "%s: '%s' must be one of error, warn, info, debug", origin, s);
        *(int *)p = lvl;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < o->min || v > o->max)
        return fail(err, errlen, "%s: '%s' must be an integer from %lld to %lld", origin, s, (long long)o->min,
                    (long long)o->max);
    if (o->type == T_INT)
        *(int *)p = (int)v;
    else if (o->type == T_U32)
        *(uint32_t *)p = (uint32_t)v;
    else
        *(uint64_t *)p = (uint64_t)v;
    return 0;
}

static int set_from_json(struct ag_config *cfg, const struct opt *o, json_t *v, const char *file, char *err,
                         size_t errlen)
{
    if (o->type == T_STR || o->type == T_LEVEL) {
        if (!json_is_string(v))
            return fail(err, errlen, "config %s: key '%s' must be a string", file, o->key);
        char origin[256];
        snprintf(origin, sizeof origin, "config %s: key '%s'", file, o->key);
        return set_from_text(cfg, o, json_string_value(v), origin, err, errlen);
    }
    if (!json_is_integer(v))
        return fail(err, errlen, "config %s: key '%s' must be an integer", file, o->key);
    char text[32], origin[256];
    snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    snprintf(origin, sizeof origin, "config %s: key '%s'", file, o->key);
    return set_from_text(cfg, o, text, origin, err, errlen);
}

/* Walks a JSON object, matching every key against the table; prefix is the dotted path so far. */
static int load_object(struct ag_config *cfg, json_t *obj, const char *prefix, const char *file, char *err,
                       size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v)) {
            size_t plen = strlen(path);
            int known_prefix = 0;
            for (size_t i = 0; i < AG_ARRAY_LEN(opts); i++)
                if (!strncmp(opts[i].key, path, plen) && opts[i].key[plen] == '.')
                    known_prefix = 1;
            if (!known_prefix)
                return fail(err, errlen, "config %s: unknown key '%s'", file, path);
            if (load_object(cfg, v, path, file, err, errlen))
                return -1;
            continue;
        }
        const struct opt *o = NULL;
        for (size_t i = 0; i < AG_ARRAY_LEN(opts); i++)
            if (!strcmp(opts[i].key, path))
                o = &opts[i];
        if (!o)
            return fail(err, errlen, "config %s: unknown key '%s'", file, path);
        if (set_from_json(cfg, o, v, file, err, errlen))
            return -1;
    }
    return 0;
}

static int load_file(struct ag_config *cfg, const char *file, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(err, errlen, "config %s: %s (line %d, column %d)", file, je.text, je.line, je.column);
    int rc = 0;
    if (!json_is_object(root))
        rc = fail(err, errlen, "config %s: the top level must be a JSON object", file);
    else
        rc = load_object(cfg, root, "", file, err, errlen);
    json_decref(root);
    return rc;
}

static const struct opt *find_opt(const char *key)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(opts); i++)
        if (!strcmp(opts[i].key, key))
            return &opts[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: agentd [--config FILE] [--graphs FILE] [--host ADDR] [--port N] [--shards N] [--log-level LEVEL]\n"
               "       agentd migrate [--config FILE]   apply the database schema migrations and exit\n"
               "       agentd --version | --help\n"
               "Serves the Agent Protocol (LangGraph Platform HTTP API) on HOST:PORT (default 127.0.0.1:2024).\n"
               "--graphs FILE serves the graphs a langgraph.json lists (graph plugins: \"<lib>.so:<symbol>\").\n"
               "Environment: HOST, PORT, AGENTD_SHARDS, DATABASE_URL, AGENTD_LOG_LEVEL, AGENTD_GRAPHS (override the\n"
               "config file; flags override the environment). LEVEL is error, warn, info or debug.\n");
}

enum ag_config_status ag_config_load(struct ag_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    *cfg = (struct ag_config){
        .host = ag_strdup("127.0.0.1"),
        .port = 2024,
        .log_level = AG_LOG_INFO,
        .shutdown_timeout_ms = 10000,
        .max_conns_per_shard = 10000,
        .loop = {.stall_report_ms = 100, .work_per_turn = 256},
        .db = AG_PG_CONFIG_DEFAULT,
        .http = AG_HTTP_LIMITS_DEFAULT,
        .runs = AG_RUN_LIMITS_DEFAULT,
        .events = AG_TLOG_LIMITS_DEFAULT,
        .crons = AG_CRON_CONFIG_DEFAULT,
    };

    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},   {"shards", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"graphs", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    /* First pass: find --config and the terminal flags; flags are applied after the environment. */
    const char *file = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'h': usage(stdout); return AG_CONFIG_EXIT;
        case 'V': printf("agentd %s\n", AG_VERSION); return AG_CONFIG_EXIT;
        case ':': fail(err, errlen, "option %s needs a value (see --help)", argv[optind - 1]); return AG_CONFIG_BAD;
        case '?': fail(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]); return AG_CONFIG_BAD;
        default: break;
        }
    }
    if (optind < argc) {
        fail(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return AG_CONFIG_BAD;
    }
    if (file && load_file(cfg, file, err, errlen))
        return AG_CONFIG_BAD;
    for (size_t i = 0; i < AG_ARRAY_LEN(opts); i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v) {
            char origin[64];
            snprintf(origin, sizeof origin, "environment %s", opts[i].env);
            if (set_from_text(cfg, &opts[i], v, origin, err, errlen))
                return AG_CONFIG_BAD;
        }
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        const char *key = NULL, *flag = NULL;
        switch (c) {
        case 'H': key = "host"; flag = "--host"; break;
        case 'p': key = "port"; flag = "--port"; break;
        case 's': key = "shards"; flag = "--shards"; break;
        case 'l': key = "log_level"; flag = "--log-level"; break;
        case 'g': key = "graphs_file"; flag = "--graphs"; break;
        default: continue;
        }
        if (set_from_text(cfg, find_opt(key), optarg, flag, err, errlen))
            return AG_CONFIG_BAD;
    }
    return AG_CONFIG_RUN;
}

void ag_config_free(struct ag_config *cfg)
{
    ag_free(cfg->host);
    ag_free(cfg->db.url);
    ag_free(cfg->graphs_file);
    cfg->host = cfg->db.url = cfg->graphs_file = NULL;
}
