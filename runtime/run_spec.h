/* What a run is asked to do (struct ag_run_spec), and the typed mapping to it from the run fields of
 * a RunCreate-shaped JSON object: the body of POST .../runs, a v2 command's parameters, a cron's
 * stored payload.
 *
 * Validation is not done here: the HTTP layer checks a body first (types, enums, required fields,
 * what this server does not support; 422 problems naming each field, protocol/agent/runs.h) and then
 * maps it with ag_run_spec_from_payload, so the mapping exists once. A cron's firing maps its
 * payload, validated when the cron was written, without a trip through the HTTP validator. The
 * mapping still refuses what it cannot turn into a spec, with one plain reason. */
#ifndef AG_RUNTIME_RUN_SPEC_H
#define AG_RUNTIME_RUN_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/identity.h"

/* multitask_strategy: what a new run does to the thread's active run. */
enum ag_mt { AG_MT_REJECT, AG_MT_ENQUEUE, AG_MT_INTERRUPT, AG_MT_ROLLBACK };

/* v1 stream modes (bit flags). */
enum {
    AG_SM_VALUES = 1u << 0,
    AG_SM_UPDATES = 1u << 1,
    AG_SM_MESSAGES = 1u << 2,       /* messages/metadata, messages/partial, messages/complete */
    AG_SM_MESSAGES_TUPLE = 1u << 3, /* messages: [chunk, metadata] */
    AG_SM_CUSTOM = 1u << 4,
    AG_SM_EVENTS = 1u << 5,
    AG_SM_DEBUG = 1u << 6,
    AG_SM_TASKS = 1u << 7,
    AG_SM_CHECKPOINTS = 1u << 8,
    /* Tool calls (tools: on_tool_start / _event / _end / _error) and subgraphs starting and ending
     * (lifecycle|<namespace>): events of graphs that have tools or subgraphs, which an engine reports;
     * the built-in C graphs have neither, so their runs stream none. */
    AG_SM_TOOLS = 1u << 9,
    AG_SM_LIFECYCLE = 1u << 10,
};

/* When a run's checkpoints reach Postgres (LangGraph's durability). */
enum ag_durability {
    AG_DURABILITY_DEFAULT, /* not asked for: async */
    AG_DURABILITY_ASYNC,   /* written as the run goes, while its next superstep runs */
    AG_DURABILITY_SYNC,    /* each written before the next superstep starts */
    AG_DURABILITY_EXIT,    /* only the last one, when the run ends (checkpoint_during: false) */
};
/* "async", "sync", "exit" (NULL for AG_DURABILITY_DEFAULT). */
const char *ag_durability_name(enum ag_durability d);

/* A run to create. json members are owned references (NULL when absent). */
struct ag_run_spec {
    char thread_id[37];
    char owner[AG_IDENTITY_OWNER_MAX]; /* who the run is for (runtime/identity.h) */
    char assistant_id[130];  /* as given, graph ids resolved to their system assistant */
    json_t *input, *command, *config, *context, *metadata, *checkpoint;
    char checkpoint_id[64];   /* "" when none */
    json_t *interrupt_before, *interrupt_after; /* "*" or array of names */
    json_t *stream_mode;      /* array of mode names as given (for kwargs) */
    unsigned modes;           /* AG_SM_* */
    bool subgraphs, resumable;
    enum ag_mt mt;
    bool create_thread;       /* if_not_exists=create (always for stateless runs) */
    bool cancel_on_disconnect;
    /* strict_resume: a resume answering an interrupt that is not waiting (every resume is refused then)
     * leaves the thread as it was, not in error. */
    bool strict_resume;
    bool stateless, delete_thread; /* stateless run; on_completion=delete */
    double after_seconds;
    json_t *feedback_keys;
    enum ag_durability durability; /* durability, else checkpoint_during (true: async, false: exit) */
};

/* Frees what spec owns and zeroes it. */
void ag_run_spec_clear(struct ag_run_spec *spec);

/* The AG_SM_* bit of the v1 stream mode name ("values", "messages-tuple", ...), 0 when unknown. */
unsigned ag_run_spec_mode(const char *name);

/* Checks config.configurable (config: a run's "config" object, or NULL) against the graph of
 * assistant_id when that is a system assistant; another assistant's graph is known only once the
 * database answered, and its run checks the merged config itself. Returns true, or false with the
 * refused key of configurable in *key (borrowed from config) and the reason in msg. */
bool ag_run_spec_check_config(const char *assistant_id, const json_t *config, const char **key, char *msg,
                              size_t msglen);

/* Maps the run fields of body (a JSON object, as a valid RunCreate body holds them; unknown keys are
 * ignored) into out, which the caller zeroed except perhaps out->thread_id and out->owner (left as
 * they are). assistant_id, when present, is resolved (a graph id names its system assistant); when
 * absent, out->assistant_id is left as it is. stateless: a run on a new thread (POST /runs:
 * if_not_exists is create, on_completion decides delete_thread). out takes references to body's
 * values. Does not check the config against the graph (ag_run_spec_check_config). Returns true, or
 * false with the reason in err and out emptied (ag_run_spec_clear). */
bool ag_run_spec_from_payload(const json_t *body, bool stateless, struct ag_run_spec *out, char *err, size_t errlen);

/* The run of one firing of cron cron_id: its stored payload (run fields; "timezone" and other keys are
 * ignored) mapped as by ag_run_spec_from_payload, with the cron's assistant (assistant_id), metadata
 * {"cron_id": cron_id}, and for a stateless cron (stateless) a new thread that is deleted after the
 * run unless on_run_completed is "keep" (NULL: delete). The config is checked against the graph.
 * Fills every field of out except thread_id and owner, which the caller sets afterwards. Returns true,
 * or false with the reason in err (out is then empty). */
bool ag_run_spec_for_cron(const char *cron_id, const char *assistant_id, bool stateless, const json_t *payload,
                          const char *on_run_completed, struct ag_run_spec *out, char *err, size_t errlen);

#endif
