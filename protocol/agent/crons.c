#include "protocol/agent/crons.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/civil.h"
#include "core/clock.h"
#include "core/shard.h"
#include "core/tz.h"
#include "graph/registry.h"
#include "protocol/agent/run_sinks.h"
#include "protocol/agent/runs.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "protocol/query.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"
#include "runtime/cronexpr.h"
#include "runtime/owner.h"
#include "runtime/run.h"
#include "runtime/run_spec.h"

#define SEARCH_LIMIT_DEFAULT 10
#define SEARCH_LIMIT_MAX 1000
/* PATCH reads, computes and writes back only if nobody wrote in between; this many tries. */
#define PATCH_TRIES 3

/* --- the CronCreate / CronUpdate body --- */

static const char *const orc_choices[] = {"delete", "keep", NULL};

/* The cron's own fields; the run fields (RUN_KEYS) are checked by the RunCreate validation. */
static const struct ag_vfield create_fields[] = {
    {"assistant_id", AG_V_STRING, AG_VF_REQUIRED, 0, 256, NULL},
    {"schedule", AG_V_STRING, AG_VF_REQUIRED, 0, 256, NULL},
    {"input", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"on_run_completed", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, orc_choices},
    {"end_time", AG_V_STRING, AG_VF_NULLABLE, 0, 64, NULL},
    {"enabled", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"timezone", AG_V_STRING, AG_VF_NULLABLE, 0, 64, NULL},
};

static const struct ag_vfield patch_fields[] = {
    {"schedule", AG_V_STRING, AG_VF_NULLABLE, 0, 256, NULL},
    {"input", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"on_run_completed", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, orc_choices},
    {"end_time", AG_V_STRING, AG_VF_NULLABLE, 0, 64, NULL},
    {"enabled", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"timezone", AG_V_STRING, AG_VF_NULLABLE, 0, 64, NULL},
};

/* Body keys that make up the run template (stored in payload, given to each firing's RunCreate). */
static const char *const run_keys[] = {"input", "config", "context", "interrupt_before", "interrupt_after",
                                       "webhook", "multitask_strategy", "stream_mode", "stream_subgraphs",
                                       "stream_resumable", "checkpoint_during", "durability", NULL};

enum body_kind { BODY_CREATE_STATELESS, BODY_CREATE_THREAD, BODY_PATCH };

/* What a create or patch body asks for, once valid. */
struct cron_body {
    struct ag_cronexpr expr;
    const char *schedule;     /* NULL: not given (patch) */
    const char *timezone;     /* the zone's name; NULL: not given */
    bool timezone_given;      /* the key is there (null: back to UTC) */
    bool end_given;           /* end_time is there */
    bool end_null;            /* ... and null */
    int64_t end_time;         /* Unix seconds */
    int enabled;              /* -1 not given, 0, 1 */
    const char *orc;          /* on_run_completed, NULL: not given */
};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

static bool in_fields(const struct ag_vfield *f, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, s))
            return true;
    return false;
}

/* Checks a schedule, filling *expr; problems go to e at ["body","schedule"]. */
static bool check_schedule(const json_t *v, struct ag_cronexpr *expr, struct ag_vpath *p, struct ag_verr *e)
{
    char err[200], msg[300];
    if (ag_cronexpr_parse(json_string_value(v), json_string_length(v), expr, err, sizeof err))
        return true;
    snprintf(msg, sizeof msg, "Value error, Invalid cron schedule: %s", err);
    ag_verr_add_key(e, p, "schedule", "value_error", msg, v);
    return false;
}

/* Validates body as kind says into cb; problems go to e. */
static void parse_body(json_t *body, enum body_kind kind, struct cron_body *cb, struct ag_verr *e)
{
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    const struct ag_vfield *fields = kind == BODY_PATCH ? patch_fields : create_fields;
    size_t nfields = kind == BODY_PATCH ? AG_ARRAY_LEN(patch_fields) : AG_ARRAY_LEN(create_fields);
    memset(cb, 0, sizeof *cb);
    cb->enabled = -1;
    ag_validate_object(body, fields, nfields, true, &p, e);
    if (!json_is_object(body))
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (!in_fields(fields, nfields, k) && !in_list(run_keys, k)) {
            ag_vpath_push_key(&p, k);
            ag_verr_unknown(&p);
            ag_vpath_pop(&p);
        }
    }
    json_t *sched = ag_v_present(body, "schedule");
    if (json_is_string(sched) && check_schedule(sched, &cb->expr, &p, e))
        cb->schedule = json_string_value(sched);
    json_t *tz = json_object_get(body, "timezone");
    if (tz) {
        cb->timezone_given = true;
        if (json_is_string(tz) && json_string_length(tz) <= 64) {
            if (ag_tz_find(json_string_value(tz))) {
                cb->timezone = json_string_value(tz);
            } else {
                char msg[128];
                snprintf(msg, sizeof msg, "Value error, Invalid timezone: %s", json_string_value(tz));
                ag_verr_add_key(e, &p, "timezone", "value_error", msg, tz);
            }
        }
    }
    json_t *end = json_object_get(body, "end_time");
    if (end) {
        cb->end_given = true;
        cb->end_null = json_is_null(end);
        if (json_is_string(end) && json_string_length(end) <= 64) {
            if (!ag_civil_parse_rfc3339(json_string_value(end), json_string_length(end), &cb->end_time))
                ag_verr_add_key(e, &p, "end_time", "datetime_from_date_parsing", "Input should be a valid datetime",
                                end);
            else if (cb->end_time <= (int64_t)ag_us_to_sec(ag_clock_real_us()))
                ag_verr_add_key(e, &p, "end_time", "value_error", "Value error, end_time must be in the future", end);
        }
    }
    json_t *en = ag_v_present(body, "enabled");
    if (json_is_boolean(en))
        cb->enabled = json_is_true(en);
    json_t *orc = ag_v_present(body, "on_run_completed");
    if (json_is_string(orc) && in_list(orc_choices, json_string_value(orc))) {
        /* Not a field of a thread's cron (LangGraph's ThreadCronCreate has none: the thread is the
         * caller's and stays): ignored there, like any field a route does not know. */
        if (kind == BODY_CREATE_THREAD) {
            ag_vpath_push_key(&p, "on_run_completed");
            ag_verr_unknown(&p);
            ag_vpath_pop(&p);
        } else {
            cb->orc = json_string_value(orc);
        }
    }
    /* The run fields, as a RunCreate body: the same checks, field paths and messages as a run's. */
    json_t *run = json_object();
    json_t *aid = json_object_get(body, "assistant_id");
    json_object_set_new(run, "assistant_id", json_string(json_is_string(aid) ? json_string_value(aid) : "-"));
    for (size_t i = 0; run_keys[i]; i++)
        if ((v = json_object_get(body, run_keys[i])) && !(!strcmp(run_keys[i], "input") && !json_is_object(v)))
            json_object_set(run, run_keys[i], v);
    if (cb->orc && kind != BODY_CREATE_THREAD)
        json_object_set_new(run, "on_completion", json_string(cb->orc));
    ag_runs_check_create(run, kind != BODY_CREATE_THREAD, e, &p);
    json_decref(run);
}

/* The stored run template: the non-null run fields of body and its timezone. */
static json_t *payload_of(const json_t *body)
{
    json_t *pl = json_object(), *v;
    for (size_t i = 0; run_keys[i]; i++)
        if ((v = ag_v_present(body, run_keys[i]))) json_object_set(pl, run_keys[i], v);
    if ((v = ag_v_present(body, "timezone"))) json_object_set(pl, "timezone", v);
    return pl;
}

/* Whether a PATCH's merged payload still makes a valid run as a firing maps it: each field was valid
 * alone, but the run fields are checked together, as a RunCreate body (at ["payload"]). */
static bool payload_valid(const json_t *payload, bool stateless)
{
    json_t *run = json_copy((json_t *)payload);
    json_object_del(run, "timezone");
    json_object_set_new(run, "assistant_id", json_string("-"));
    if (stateless)
        json_object_set_new(run, "on_completion", json_string("delete"));
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"payload"}, .n = 1};
    bool ok = ag_runs_check_create(run, stateless, &e, &p) == 0;
    ag_verr_free(&e);
    json_decref(run);
    return ok;
}

static int64_t now_s(void)
{
    return (int64_t)ag_us_to_sec(ag_clock_real_us());
}

static const struct ag_tz *zone_or_utc(const char *name)
{
    const struct ag_tz *z = name ? ag_tz_find(name) : NULL;
    return z ? z : ag_tz_utc();
}

/* --- create --- */

struct cq {
    struct ag_dbreq d;
    char thread_id[37];
    char cron_id[37];
    char assistant_id[257];
    bool stateless, enabled;
    json_t *payload;
    json_t *cron; /* the Cron created, once stored */
    char orc[8];
};

static void cq_free(struct cq *c)
{
    json_decref(c->payload);
    json_decref(c->cron);
    ag_dbreq_free(&c->d);
}

/* The answer to a create that fired its first run: the Cron with the fields of run (a Run's JSON text)
 * that a Cron lacks (run_id, status, kwargs, multitask_strategy); on the keys both have, the Cron's. */
static void answer_cron_and_run(struct ag_req *r, json_t *cron, const char *run, size_t len)
{
    json_t *rj = json_loadb(run, len, 0, NULL);
    json_t *out = json_copy(cron);
    if (json_is_object(rj))
        json_object_update_missing(out, rj);
    char *text = json_dumps(out, JSON_COMPACT);
    AG_BUG_ON(!text);
    ag_http_json(r, 200, text, strlen(text));
    ag_free(text);
    json_decref(out);
    json_decref(rj);
}

static void cq_finish(struct cq *c)
{
    struct ag_req *r = c->d.r;
    cq_free(c);
    ag_http_done(r);
}

/* A cron whose first run could not be created is deleted again; then the run's refusal is the answer. */
struct undo {
    struct ag_dbreq d;
    int status;
    char *body;
};

static void on_undone(struct ag_pg_query *q, PGresult *res)
{
    struct undo *u = q->ud;
    (void)res;
    if (q->status != AG_PG_OK)
        ag_dbq_fail(u->d.r, q);
    else
        ag_http_json(u->d.r, u->status, u->body, strlen(u->body));
    ag_free(u->body);
    ag_dbreq_finish(&u->d);
}

static void on_first_run(void *ud, int status, const char *body, size_t len)
{
    struct cq *c = ud;
    struct ag_req *r = c->d.r;
    if (status == 200) {
        answer_cron_and_run(r, c->cron, body, len);
        cq_finish(c);
        return;
    }
    struct undo *u = ag_dbreq_new(sizeof *u, r, AG_SQL_CRON_DELETE, AG_PG_WRITE, on_undone);
    u->status = status;
    u->body = ag_strndup(body, len);
    ag_dbreq_param(&u->d, ag_dbreq_str(&u->d, c->cron_id, strlen(c->cron_id)));
    ag_dbreq_param(&u->d, ag_req_owner(r));
    cq_free(c);
    if (ag_dbq_submit(r, &u->d.q) != AG_AGAIN) { /* answered 503 */
        ag_free(u->body);
        ag_dbreq_finish(&u->d);
    }
}

static void on_created(struct ag_pg_query *q, PGresult *res)
{
    struct cq *c = q->ud;
    struct ag_req *r = c->d.r;
    char msg[400];
    if (q->status != AG_PG_OK) {
        if (ag_dbq_sqlstate(q, "23503")) { /* the thread or assistant went away meanwhile */
            snprintf(msg, sizeof msg, "Thread '%s' not found", c->thread_id);
            ag_http_error(r, 404, msg);
        } else {
            ag_dbq_fail(r, q);
        }
        cq_finish(c);
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        snprintf(msg, sizeof msg, "Assistant '%s' not found", c->assistant_id);
        ag_http_error(r, 404, msg);
        cq_finish(c);
        return;
    }
    if (PQgetvalue(res, 0, 1)[0] != 't' || PQgetisnull(res, 0, 2)) {
        snprintf(msg, sizeof msg, "Thread '%s' not found", c->thread_id);
        ag_http_error(r, 404, msg);
        cq_finish(c);
        return;
    }
    if (!c->enabled) {
        ag_http_json(r, 200, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
        cq_finish(c);
        return;
    }
    snprintf(c->cron_id, sizeof c->cron_id, "%s", PQgetvalue(res, 0, 3));
    c->cron = json_loadb(PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2), 0, NULL);
    AG_BUG_ON(!json_is_object(c->cron));
    struct ag_run_spec spec;
    char err[512];
    if (!ag_run_spec_for_cron(c->cron_id, c->assistant_id, c->stateless, c->payload, c->orc[0] ? c->orc : NULL, &spec,
                              err, sizeof err)) {
        on_first_run(c, 500, "{\"error\":\"internal_error\",\"message\":\"the cron's run could not be built\","
                             "\"details\":null}",
                     strlen("{\"error\":\"internal_error\",\"message\":\"the cron's run could not be built\","
                            "\"details\":null}"));
        return;
    }
    snprintf(spec.thread_id, sizeof spec.thread_id, "%s", c->thread_id);
    snprintf(spec.owner, sizeof spec.owner, "%s", ag_req_owner(c->d.r));
    ag_run_sinks_create_cb(&spec, on_first_run, c); /* last: its callback may finish c before it returns */
}

static int create(struct ag_req *r, bool stateless)
{
    char tid[37] = "";
    if (!stateless && !ag_req_uuid_param(r, "thread_id", tid))
        return AG_OK;
    struct ag_verr e = {0};
    struct cron_body cb;
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body)
        parse_body(body, stateless ? BODY_CREATE_STATELESS : BODY_CREATE_THREAD, &cb, &e);
    int64_t first = -1, second = -1;
    if (!e.count) {
        const struct ag_tz *z = zone_or_utc(cb.timezone);
        first = ag_cronexpr_next(&cb.expr, z, now_s());
        second = first >= 0 ? ag_cronexpr_next(&cb.expr, z, first) : -1;
        if (first < 0) {
            struct ag_vpath p = {.key = {"body", "schedule"}, .n = 2};
            ag_verr_add(&e, &p, "value_error", "Value error, Invalid cron schedule: it never fires",
                        json_object_get(body, "schedule"));
        }
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    struct cq *c = ag_dbreq_new(sizeof *c, r, AG_SQL_CRON_CREATE, AG_PG_WRITE, on_created);
    c->stateless = stateless;
    c->enabled = cb.enabled != 0;
    if (stateless)
        ag_owner_mint_thread_id(r->shard, c->thread_id);
    else
        snprintf(c->thread_id, sizeof c->thread_id, "%s", tid);
    snprintf(c->assistant_id, sizeof c->assistant_id, "%s",
             ag_graph_resolve_assistant(json_string_value(json_object_get(body, "assistant_id"))));
    if (cb.orc)
        snprintf(c->orc, sizeof c->orc, "%s", cb.orc);
    c->payload = payload_of(body);
    struct ag_dbreq *d = &c->d;
    ag_dbreq_param(d, ag_req_owner(r));
    ag_dbreq_param(d, c->assistant_id);
    ag_dbreq_param(d, stateless ? NULL : c->thread_id);
    ag_dbreq_param(d, ag_dbreq_str(d, cb.schedule, strlen(cb.schedule)));
    ag_dbreq_param(d, cb.timezone ? ag_dbreq_str(d, cb.timezone, strlen(cb.timezone)) : "UTC");
    ag_dbreq_param(d, ag_dbreq_json(d, c->payload));
    ag_dbreq_param(d, ag_dbreq_json(d, ag_v_present(body, "metadata")));
    ag_dbreq_param(d, cb.orc ? c->orc : NULL);
    ag_dbreq_param(d, cb.end_given && !cb.end_null ? ag_pg_args_printf(&d->strs, "%" PRId64, cb.end_time) : NULL);
    ag_dbreq_param(d, c->enabled ? "true" : "false");
    /* An enabled cron's first run fires now, in place of the first occurrence. */
    int64_t next = c->enabled ? second : first;
    ag_dbreq_param(d, next >= 0 ? ag_pg_args_printf(&d->strs, "%" PRId64, next) : NULL);
    json_decref(body);
    int rc = ag_dbq_submit(r, &d->q);
    if (rc != AG_AGAIN)
        cq_free(c);
    return rc;
}

int ag_crons_create(struct ag_req *r)
{
    return create(r, true);
}

int ag_crons_create_for_thread(struct ag_req *r)
{
    return create(r, false);
}

/* --- update --- */

struct pq {
    struct ag_dbreq d;
    char id[37];
    json_t *body;
    struct cron_body cb; /* pointers into body */
    int tries;
};

static void pq_finish(struct pq *p)
{
    json_decref(p->body);
    ag_dbreq_finish(&p->d);
}

static void on_patch_read(struct ag_pg_query *q, PGresult *res);

/* Step 1 (again after a concurrent write): read the cron. Takes over body. */
static int patch_read(struct ag_req *r, const char *id, json_t *body, const struct cron_body *cb, int tries)
{
    struct pq *p = ag_dbreq_new(sizeof *p, r, AG_SQL_CRON_GET, AG_PG_READ, on_patch_read);
    snprintf(p->id, sizeof p->id, "%s", id);
    p->body = body;
    p->cb = *cb;
    p->tries = tries;
    ag_dbreq_param(&p->d, p->id);
    ag_dbreq_param(&p->d, ag_req_owner(r));
    int rc = ag_dbq_submit(r, &p->d.q);
    if (rc != AG_AGAIN) {
        json_decref(p->body);
        ag_dbreq_free(&p->d);
    }
    return rc;
}

static void not_found(struct ag_req *r, const char *id)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Cron '%s' not found", id);
    ag_http_error(r, 404, msg);
}

static void on_patched(struct ag_pg_query *q, PGresult *res)
{
    struct pq *p = q->ud;
    struct ag_req *r = p->d.r;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
    } else if (PQntuples(res) == 0) {
        if (p->tries < PATCH_TRIES) { /* written meanwhile (or deleted): read again */
            json_t *body = p->body;
            p->body = NULL;
            if (patch_read(r, p->id, body, &p->cb, p->tries + 1) == AG_AGAIN) {
                ag_dbreq_free(&p->d);
                return;
            }
        } else {
            ag_http_error(r, 409, "the cron kept changing while this update was applied; retry");
        }
    } else {
        ag_http_json(r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    }
    pq_finish(p);
}

static void on_patch_read(struct ag_pg_query *q, PGresult *res)
{
    struct pq *p = q->ud;
    struct ag_req *r = p->d.r;
    struct cron_body *cb = &p->cb;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
        pq_finish(p);
        return;
    }
    if (PQntuples(res) == 0) {
        not_found(r, p->id);
        pq_finish(p);
        return;
    }
    bool stateless = PQgetisnull(res, 0, 3);
    if (cb->orc && !stateless) {
        /* A thread's cron keeps its thread: on_run_completed means nothing there and is ignored. */
        struct ag_vpath vp = {.key = {"body", "on_run_completed"}, .n = 2};
        ag_verr_unknown(&vp);
        cb->orc = NULL;
    }
    const char *schedule = cb->schedule ? cb->schedule : PQgetvalue(res, 0, 0);
    const char *zone_name = cb->timezone_given ? (cb->timezone ? cb->timezone : "UTC") : PQgetvalue(res, 0, 1);
    struct ag_cronexpr expr;
    char err[200];
    bool was_enabled = PQgetvalue(res, 0, 4)[0] == 't';
    bool enabled = cb->enabled >= 0 ? cb->enabled == 1 : was_enabled;
    int64_t now = now_s();
    double old_next = PQgetisnull(res, 0, 5) ? -1 : strtod(PQgetvalue(res, 0, 5), NULL);
    bool recompute = cb->schedule || cb->timezone_given || (enabled && !was_enabled && old_next < (double)now);
    int64_t next = -1;
    if (recompute) {
        if (!ag_cronexpr_parse(schedule, strlen(schedule), &expr, err, sizeof err)) {
            ag_http_error(r, 500, "the stored schedule no longer parses");
            pq_finish(p);
            return;
        }
        next = ag_cronexpr_next(&expr, zone_or_utc(zone_name), now);
    }
    /* The payload: stored fields replaced by those given, removed by those given as null. */
    json_t *payload = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!json_is_object(payload)) {
        json_decref(payload);
        payload = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach(p->body, k, v) {
        if (!in_list(run_keys, k) && strcmp(k, "timezone"))
            continue;
        if (json_is_null(v))
            json_object_del(payload, k);
        else
            json_object_set(payload, k, v);
    }
    if (!payload_valid(payload, stateless)) {
        struct ag_verr e = {0};
        struct ag_vpath vp = {.key = {"body"}, .n = 1};
        ag_verr_add(&e, &vp, "value_error", "Value error, the merged run fields are not valid together", NULL);
        ag_http_validation_refuse(r, &e);
        json_decref(payload);
        pq_finish(p);
        return;
    }

    struct pq *w = ag_dbreq_new(sizeof *w, r, AG_SQL_CRON_UPDATE, AG_PG_WRITE, on_patched);
    snprintf(w->id, sizeof w->id, "%s", p->id);
    w->body = p->body;
    w->cb = p->cb;
    w->tries = p->tries;
    p->body = NULL;
    struct ag_dbreq *d = &w->d;
    ag_dbreq_param(d, w->id);
    ag_dbreq_param(d, ag_req_owner(d->r));
    ag_dbreq_param(d, ag_dbreq_str(d, PQgetvalue(res, 0, 7), (size_t)PQgetlength(res, 0, 7)));
    ag_dbreq_param(d, ag_dbreq_str(d, schedule, strlen(schedule)));
    ag_dbreq_param(d, ag_dbreq_str(d, zone_name, strlen(zone_name)));
    ag_dbreq_param(d, ag_dbreq_json(d, payload));
    json_t *md = ag_v_present(w->body, "metadata");
    ag_dbreq_param(d, md ? ag_dbreq_json(d, md) : NULL);
    ag_dbreq_param(d, cb->orc ? ag_dbreq_str(d, cb->orc, strlen(cb->orc)) : NULL);
    ag_dbreq_param(d, cb->end_given ? "true" : "false");
    ag_dbreq_param(d, cb->end_given && !cb->end_null ? ag_pg_args_printf(&d->strs, "%" PRId64, cb->end_time) : NULL);
    ag_dbreq_param(d, enabled ? "true" : "false");
    ag_dbreq_param(d, recompute ? "true" : "false");
    ag_dbreq_param(d, next >= 0 ? ag_pg_args_printf(&d->strs, "%" PRId64, next) : NULL);
    json_decref(payload);
    if (ag_dbq_submit(r, &d->q) != AG_AGAIN) { /* answered 503 */
        json_decref(w->body);
        ag_dbreq_finish(&w->d);
    }
    ag_dbreq_free(&p->d); /* w answers */
}

int ag_crons_update(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "cron_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct cron_body cb;
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body)
        parse_body(body, BODY_PATCH, &cb, &e);
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    return patch_read(r, id, body, &cb, 1);
}

/* --- delete --- */

struct dq {
    struct ag_dbreq d;
    char id[37];
};

static void on_deleted(struct ag_pg_query *q, PGresult *res)
{
    struct dq *x = q->ud;
    if (q->status != AG_PG_OK)
        ag_dbq_fail(x->d.r, q);
    else if (PQntuples(res) == 0)
        not_found(x->d.r, x->id);
    else
        ag_http_respond(x->d.r, 204, "application/json", NULL, 0);
    ag_dbreq_finish(&x->d);
}

int ag_crons_delete(struct ag_req *r)
{
    struct dq *x = ag_dbreq_new(sizeof *x, r, AG_SQL_CRON_DELETE, AG_PG_WRITE, on_deleted);
    if (!ag_req_uuid_param(r, "cron_id", x->id)) {
        ag_dbreq_free(&x->d);
        return AG_OK;
    }
    struct ag_verr e = {0};
    ag_query_ignore_all(&r->query);
    if (ag_http_validation_refuse(r, &e)) {
        ag_dbreq_free(&x->d);
        return AG_OK;
    }
    ag_dbreq_param(&x->d, x->id);
    ag_dbreq_param(&x->d, ag_req_owner(r));
    return ag_dbreq_submit(&x->d);
}

/* --- search and count --- */

static const char *const sort_by_choices[] = {"cron_id", "assistant_id", "thread_id", "created_at",
                                              "updated_at", "next_run_date", NULL};
static const char *const sort_order_choices[] = {"asc", "desc", NULL};
static const char *const select_choices[] = {"cron_id", "assistant_id", "thread_id", "end_time", "schedule",
                                             "created_at", "updated_at", "user_id", "payload", "next_run_date",
                                             "metadata", "now", "timezone", "enabled", "on_run_completed", NULL};

static const struct ag_vfield search_fields[] = {
    {"assistant_id", AG_V_STRING, AG_VF_NULLABLE, 0, 256, NULL},
    {"thread_id", AG_V_STRING, AG_VF_NULLABLE, 0, 256, NULL},
    {"enabled", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"limit", AG_V_INT, AG_VF_NULLABLE, 1, SEARCH_LIMIT_MAX, NULL},
    {"offset", AG_V_INT, AG_VF_NULLABLE, 0, INT64_MAX, NULL},
    {"sort_by", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_by_choices},
    {"sort_order", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_order_choices},
    {"select", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
};

static const struct ag_vfield count_fields[] = {
    {"assistant_id", AG_V_STRING, AG_VF_NULLABLE, 0, 256, NULL},
    {"thread_id", AG_V_STRING, AG_VF_NULLABLE, 0, 256, NULL},
    {"enabled", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
};

static void on_listed(struct ag_pg_query *q, PGresult *res)
{
    struct ag_dbreq *d = q->ud;
    if (q->status != AG_PG_OK)
        ag_dbq_fail(d->r, q);
    else
        ag_dbq_json(d->r, res, 200, "no result");
    ag_dbreq_finish(d);
}

/* The filter parameters $1..$5 of a search or count body. */
static void param_filters(struct ag_dbreq *d, const json_t *body)
{
    ag_dbreq_param(d, ag_req_owner(d->r));
    const char *aid = json_string_value(ag_v_present(body, "assistant_id"));
    if (aid) {
        const char *resolved = ag_graph_resolve_assistant(aid);
        ag_dbreq_param(d, ag_dbreq_str(d, resolved, strlen(resolved)));
    } else {
        ag_dbreq_param(d, NULL);
    }
    json_t *v = ag_v_present(body, "thread_id");
    ag_dbreq_param(d, v ? ag_dbreq_str(d, json_string_value(v), json_string_length(v)) : NULL);
    v = ag_v_present(body, "enabled");
    ag_dbreq_param(d, v ? (json_is_true(v) ? "true" : "false") : NULL);
    ag_dbreq_param(d, ag_dbreq_json(d, ag_v_present(body, "metadata")));
}

static json_t *read_filter_body(struct ag_req *r, const struct ag_vfield *fields, size_t n)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body) {
        ag_validate_object(body, fields, n, false, &p, &e);
        json_t *sel = json_object_get(body, "select");
        size_t i;
        json_t *v;
        if (json_is_array(sel)) {
            ag_vpath_push_key(&p, "select");
            json_array_foreach(sel, i, v) {
                if (json_is_string(v) && !in_list(select_choices, json_string_value(v))) {
                    ag_vpath_push_index(&p, (int64_t)i);
                    ag_verr_add(&e, &p, "literal_error",
                                "Input should be 'cron_id', 'assistant_id', 'thread_id', 'end_time', 'schedule', "
                                "'created_at', 'updated_at', 'user_id', 'payload', 'next_run_date', 'metadata', "
                                "'now', 'timezone', 'enabled' or 'on_run_completed'",
                                v);
                    ag_vpath_pop(&p);
                }
            }
            ag_vpath_pop(&p);
        }
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int ag_crons_search(struct ag_req *r)
{
    json_t *body = read_filter_body(r, search_fields, AG_ARRAY_LEN(search_fields));
    if (!body)
        return AG_OK;
    struct ag_dbreq *d = ag_dbreq_new(sizeof *d, r, AG_SQL_CRON_SEARCH, AG_PG_READ, on_listed);
    param_filters(d, body);
    json_t *v = ag_v_present(body, "limit");
    ag_dbreq_param(d, ag_pg_args_printf(&d->strs, "%" PRId64, v ? (int64_t)json_integer_value(v) : SEARCH_LIMIT_DEFAULT));
    v = ag_v_present(body, "offset");
    ag_dbreq_param(d, ag_pg_args_printf(&d->strs, "%" PRId64, v ? (int64_t)json_integer_value(v) : 0));
    v = ag_v_present(body, "sort_by");
    ag_dbreq_param(d, v ? ag_dbreq_str(d, json_string_value(v), json_string_length(v)) : "created_at");
    v = ag_v_present(body, "sort_order");
    ag_dbreq_param(d, v ? ag_dbreq_str(d, json_string_value(v), json_string_length(v)) : "desc");
    v = ag_v_present(body, "select");
    if (v) {
        struct ag_buf sel = {0};
        size_t i;
        json_t *s;
        ag_buf_puts(&sel, "{");
        json_array_foreach(v, i, s) {
            if (i)
                ag_buf_puts(&sel, ",");
            ag_buf_puts(&sel, json_string_value(s)); /* a known field name: no quoting needed */
        }
        ag_buf_puts(&sel, "}");
        ag_dbreq_param(d, ag_dbreq_str(d, sel.base, sel.len));
        ag_buf_free(&sel);
    } else {
        ag_dbreq_param(d, NULL);
    }
    json_decref(body);
    return ag_dbreq_submit(d);
}

int ag_crons_count(struct ag_req *r)
{
    json_t *body = read_filter_body(r, count_fields, AG_ARRAY_LEN(count_fields));
    if (!body)
        return AG_OK;
    struct ag_dbreq *d = ag_dbreq_new(sizeof *d, r, AG_SQL_CRON_COUNT, AG_PG_READ, on_listed);
    param_filters(d, body);
    json_decref(body);
    return ag_dbreq_submit(d);
}
