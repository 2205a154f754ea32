#define _GNU_SOURCE /* memmem */
#include "protocol/agent/threads.h"
#include "runtime/run.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/timer.h"
#include "core/uuid.h"
#include "persist/pg.h"
#include "protocol/agent/threads_batch.h"
#include "protocol/agent/threads_supersteps.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "runtime/owner.h"
#include "protocol/query.h"
#include "runtime/sweep.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

#define SEARCH_LIMIT_DEFAULT 10
#define SEARCH_LIMIT_MAX 1000
#define EXTRACT_MAX 10
/* ttl_minutes is an integer column. */
#define TTL_MAX_MINUTES 2147483647.0

#define SWEEP_INTERVAL_NS AG_NS_PER_SEC
#define SWEEP_BATCH 1000
#define SWEEP_BATCH_TEXT "1000"

/* One request's database work: freed by ag_dbreq_finish after the answer. */
struct tq {
    struct ag_dbreq d;
    char id[37];           /* the thread named by the request, for messages */
    int64_t limit, offset; /* search paging, for the pagination headers */
    bool minimal;          /* PATCH with Prefer: return=minimal */
};

static struct tq *tq_new(struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    return ag_dbreq_new(sizeof(struct tq), r, stmt, kind, cb);
}

static void not_found(struct tq *t)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Thread '%s' not found", t->id);
    ag_http_error(t->d.r, 404, msg);
}

/* --- input checks --- */

static void add_uuid_error(struct ag_verr *e, const struct ag_vpath *p, const json_t *input)
{
    ag_verr_add(e, p, "uuid_parsing", "Input should be a valid UUID", input);
}

static unsigned ids_literal(const json_t *arr, struct ag_buf *out, struct ag_vpath *p, struct ag_verr *e)
{
    unsigned bad = 0;
    size_t i;
    json_t *v;
    ag_buf_puts(out, "{");
    json_array_foreach(arr, i, v)
    {
        char id[37];
        if (!json_is_string(v)) {
            bad++; /* reported by the type check */
            continue;
        }
        if (!ag_uuid_canon(json_string_value(v), json_string_length(v), id)) {
            ag_vpath_push_index(p, (int64_t)i);
            add_uuid_error(e, p, v);
            ag_vpath_pop(p);
            bad++;
            continue;
        }
        if (i)
            ag_buf_puts(out, ",");
        ag_buf_append(out, id, 36);
    }
    ag_buf_puts(out, "}");
    return bad;
}

static const char *const ttl_strategies[] = {"delete", "keep_latest", NULL};

/* Reads body field ttl: minutes, or {"ttl": minutes, "strategy": "delete"|"keep_latest"} (the SDKs
 * send the object). *minutes is 0 when absent or null. *strategy points into v. p is the body's
 * path. Returns the problems added. */
static unsigned parse_ttl(const json_t *v, double *minutes, const char **strategy, struct ag_vpath *p,
                          struct ag_verr *e)
{
    static const struct ag_vfield fields[] = {
        {"ttl", AG_V_NUMBER, AG_VF_REQUIRED, 0, 0, NULL},
        {"strategy", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, ttl_strategies},
    };
    *minutes = 0;
    *strategy = "delete";
    if (!v || json_is_null(v))
        return 0;
    unsigned bad = 0;
    ag_vpath_push_key(p, "ttl");
    const json_t *num = v;
    if (json_is_object(v)) {
        bad = ag_validate_object(v, fields, AG_ARRAY_LEN(fields), false, p, e);
        const json_t *st = json_object_get(v, "strategy");
        if (json_is_string(st))
            *strategy = json_string_value(st);
        num = json_object_get(v, "ttl");
        ag_vpath_push_key(p, "ttl");
    } else if (!json_is_number(v)) {
        ag_verr_add(e, p, "model_attributes_type", "Input should be a number of minutes or an object {ttl, strategy}",
                    v);
        ag_vpath_pop(p);
        return 1;
    }
    if (json_is_number(num)) {
        double m = json_number_value(num);
        if (m <= 0) {
            ag_verr_add(e, p, "greater_than", "Input should be greater than 0", num);
            bad++;
        } else if (m > TTL_MAX_MINUTES) {
            ag_verr_add(e, p, "less_than_equal", "Input should be less than or equal to 2147483647", num);
            bad++;
        } else {
            *minutes = m;
        }
    }
    if (json_is_object(v))
        ag_vpath_pop(p);
    ag_vpath_pop(p);
    return bad;
}

static void param_ttl(struct tq *t, double minutes, const char *strategy)
{
    if (minutes > 0) {
        ag_dbreq_param(&t->d, ag_pg_args_printf(&t->d.strs, "%.17g", minutes));
        ag_dbreq_param(&t->d, ag_pg_args_dup(&t->d.strs, strategy, strlen(strategy)));
    } else {
        ag_dbreq_param(&t->d, NULL);
        ag_dbreq_param(&t->d, NULL);
    }
}

/* --- callbacks --- */

/* Answers t's statement on thread t->id, then finishes t: its failure; 404 when the thread was not
 * found; 204 when no_content; else 200 with the value of row 0. */
static void answer_thread(struct tq *t, const struct ag_pg_query *q, PGresult *res, bool found, bool no_content)
{
    if (q->status != AG_PG_OK)
        ag_dbq_fail(t->d.r, q);
    else if (!found)
        not_found(t);
    else if (no_content)
        ag_http_respond(t->d.r, 204, "application/json", NULL, 0);
    else
        ag_http_json(t->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    ag_dbreq_finish(&t->d);
}

/* The statement's single value is the answer (200); no row is a 404 for t->id. */
static void on_thread(struct ag_pg_query *q, PGresult *res)
{
    answer_thread(q->ud, q, res, PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0), false);
}

/* The statement always answers one value: 200 with it. */
static void on_json(struct ag_pg_query *q, PGresult *res)
{
    struct tq *t = q->ud;
    if (q->status != AG_PG_OK)
        ag_dbq_fail(t->d.r, q);
    else
        ag_dbq_json(t->d.r, res, 200, "no result");
    ag_dbreq_finish(&t->d);
}

static void on_create(struct ag_pg_query *q, PGresult *res)
{
    struct tq *t = q->ud;
    if (q->status == AG_PG_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        ag_http_json(t->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    } else if (q->status == AG_PG_OK) {
        /* Taken by another owner: do_nothing finds no row of ours. (if_exists=raise creates go
         * through threads_batch.c.) */
        char msg[96];
        snprintf(msg, sizeof msg, "Thread '%s' already exists", t->id);
        ag_http_error(t->d.r, 409, msg);
    } else {
        ag_dbq_fail(t->d.r, q);
    }
    ag_dbreq_finish(&t->d);
}

static void on_patch(struct ag_pg_query *q, PGresult *res)
{
    struct tq *t = q->ud;
    answer_thread(t, q, res, PQntuples(res) >= 1, t->minimal);
}

static void on_delete(struct ag_pg_query *q, PGresult *res)
{
    answer_thread(q->ud, q, res, PQntuples(res) >= 1, true);
}

static void on_search(struct ag_pg_query *q, PGresult *res)
{
    struct tq *t = q->ud;
    if (q->status != AG_PG_OK || PQntuples(res) != 1) {
        ag_dbq_fail(t->d.r, q);
        ag_dbreq_finish(&t->d);
        return;
    }
    /* As LangGraph's server: total = offset + rows, plus one and a next offset when the page is full. */
    int64_t rows = (int64_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int64_t next = t->offset + rows;
    char num[24];
    if (rows == t->limit) {
        snprintf(num, sizeof num, "%" PRId64, next);
        ag_http_add_header(t->d.r, "x-pagination-next", num);
        snprintf(num, sizeof num, "%" PRId64, next + 1);
    } else {
        snprintf(num, sizeof num, "%" PRId64, next);
    }
    ag_http_add_header(t->d.r, "x-pagination-total", num);
    ag_http_json(t->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    ag_dbreq_finish(&t->d);
}

/* --- handlers --- */

/* Submits t (create or patch of thread id) with $1 the id, $2 the owner, $3 the request body and
 * $4, $5 the ttl (strategy may point into body, which is released here). */
static int submit_body(struct tq *t, const char id[37], json_t *body, double ttl, const char *strategy)
{
    memcpy(t->id, id, sizeof t->id);
    ag_dbreq_param(&t->d, t->id);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, t->d.r->body.base, t->d.r->body.len));
    param_ttl(t, ttl, strategy);
    json_decref(body);
    return ag_dbreq_submit(&t->d);
}

static const char *const if_exists_choices[] = {"raise", "do_nothing", NULL};

static const struct ag_vfield create_fields[] = {
    {"thread_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"if_exists", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, if_exists_choices},
    {"ttl", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"supersteps", AG_V_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
};

int ag_threads_create(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    char id[37] = {0};
    double ttl = 0;
    const char *strategy = NULL;
    bool do_nothing = false, supersteps = false;
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body) {
        ag_validate_object(body, create_fields, AG_ARRAY_LEN(create_fields), false, &p, &e);
        json_t *v = json_object_get(body, "thread_id");
        if (json_is_string(v) && !ag_uuid_canon(json_string_value(v), json_string_length(v), id)) {
            ag_vpath_push_key(&p, "thread_id");
            add_uuid_error(&e, &p, v);
            ag_vpath_pop(&p);
        }
        parse_ttl(json_object_get(body, "ttl"), &ttl, &strategy, &p, &e);
        v = json_object_get(body, "if_exists");
        do_nothing = json_is_string(v) && !strcmp(json_string_value(v), "do_nothing");
        v = json_object_get(body, "supersteps");
        supersteps = json_is_array(v) && json_array_size(v) > 0;
        if (supersteps)
            ag_threads_supersteps_check(body, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    if (!id[0]) {
        ag_owner_mint_thread_id(r->shard, id);
    } else {
        int owner = ag_owner_shard(id, 36, r->shard->rt->nshards);
        if (owner != r->shard->id) {
            json_decref(body);
            return ag_http_forward(r, owner); /* parsed again there */
        }
    }
    if (supersteps) {
        int rc = ag_threads_supersteps_create(r, id, body, ttl, strategy, do_nothing); /* strategy points into body */
        json_decref(body);
        return rc;
    }
    if (!do_nothing) {
        int rc = ag_threads_batch_create(r, id, ag_req_owner(r), ttl, strategy); /* strategy points into body */
        json_decref(body);
        return rc;
    }
    struct tq *t = tq_new(r, AG_SQL_THREAD_CREATE_OR_GET, AG_PG_WRITE, on_create);
    return submit_body(t, id, body, ttl, strategy);
}

int ag_threads_list(struct ag_req *r)
{
    struct ag_verr e = {0};
    int64_t limit = SEARCH_LIMIT_DEFAULT, offset = 0;
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        if (!n || !v)
            ag_query_error(&e, n ? n : "", "value_error", "Value error, badly encoded query parameter", NULL);
        else if (!strcmp(n, "limit"))
            ag_query_int(&e, "limit", v, 1, SEARCH_LIMIT_MAX, &limit);
        else if (!strcmp(n, "offset"))
            ag_query_int(&e, "offset", v, 0, INT64_MAX, &offset);
        else
            ag_query_unknown(n);
        ag_free(n);
        ag_free(v);
    }
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct tq *t = tq_new(r, AG_SQL_THREAD_LIST, AG_PG_READ, on_json);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    ag_dbreq_param(&t->d, ag_pg_args_printf(&t->d.strs, "%" PRId64, limit));
    ag_dbreq_param(&t->d, ag_pg_args_printf(&t->d.strs, "%" PRId64, offset));
    return ag_dbreq_submit(&t->d);
}

static const char *const status_choices[] = {"idle", "busy", "interrupted", "error", NULL};
static const char *const sort_by_choices[] = {"thread_id", "status", "created_at", "updated_at", "state_updated_at",
                                              NULL};
static const char *const sort_order_choices[] = {"asc", "desc", NULL};
/* LangGraph's ThreadSelectField. "context" is accepted (the SDK offers it) and selects nothing: a
 * thread has no context. */
static const char *const select_choices[] = {"thread_id", "created_at", "updated_at", "state_updated_at", "metadata",
                                             "config", "context", "status", "values", "interrupts", NULL};
static const char *const extract_roots[] = {"values", "metadata", "config", "interrupts", NULL};

/* [sort_by][sort_order: asc, desc] */
static const enum ag_sql search_stmts[][2] = {
    {AG_SQL_THREAD_SEARCH_THREAD_ID_ASC, AG_SQL_THREAD_SEARCH_THREAD_ID_DESC},
    {AG_SQL_THREAD_SEARCH_STATUS_ASC, AG_SQL_THREAD_SEARCH_STATUS_DESC},
    {AG_SQL_THREAD_SEARCH_CREATED_AT_ASC, AG_SQL_THREAD_SEARCH_CREATED_AT_DESC},
    {AG_SQL_THREAD_SEARCH_UPDATED_AT_ASC, AG_SQL_THREAD_SEARCH_UPDATED_AT_DESC},
    {AG_SQL_THREAD_SEARCH_STATE_UPDATED_AT_ASC, AG_SQL_THREAD_SEARCH_STATE_UPDATED_AT_DESC},
};

static const struct ag_vfield search_fields[] = {
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"values", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"ids", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    {"status", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, status_choices},
    {"limit", AG_V_INT, AG_VF_NULLABLE, 1, SEARCH_LIMIT_MAX, NULL},
    {"offset", AG_V_INT, AG_VF_NULLABLE, 0, INT64_MAX, NULL},
    {"sort_by", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_by_choices},
    {"sort_order", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_order_choices},
    {"select", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    {"extract", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
};

/* The count body is the search filters without ids, paging, sorting and shaping. */
static const struct ag_vfield count_fields[] = {
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"values", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"status", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, status_choices},
};

static int choice_index(const char *const *choices, const json_t *v, int dflt)
{
    if (!json_is_string(v))
        return dflt;
    for (int i = 0; choices[i]; i++)
        if (!strcmp(choices[i], json_string_value(v)))
            return i;
    return dflt;
}

static bool is_choice(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(choices[i], s))
            return true;
    return false;
}

/* Splits an extract path into its segments (appended to segs as strings): a root key (values,
 * metadata, config or interrupts), then ".key" and "[index]" (negative counts from the end) steps.
 * Returns false when the path is malformed. */
static bool extract_path(const char *s, json_t *segs)
{
    enum { KEY, AFTER } want = KEY;
    size_t i = 0, n = strlen(s);
    while (i < n) {
        size_t j = i;
        if (want == KEY) {
            while (j < n && s[j] != '.' && s[j] != '[' && s[j] != ']')
                j++;
            if (j == i)
                return false;
            json_array_append_new(segs, json_stringn(s + i, j - i));
            if (json_array_size(segs) == 1 && !is_choice(extract_roots, json_string_value(json_array_get(segs, 0))))
                return false;
            want = AFTER;
        } else if (s[i] == '.') {
            j = i + 1;
            want = KEY;
            if (j == n)
                return false;
        } else if (s[i] == '[') {
            j = i + 1;
            if (j < n && s[j] == '-')
                j++;
            size_t digits = j;
            while (j < n && s[j] >= '0' && s[j] <= '9')
                j++;
            if (j == digits || j - digits > 9 || j >= n || s[j] != ']')
                return false;
            json_array_append_new(segs, json_stringn(s + i + 1, j - i - 1));
            j++;
        } else {
            return false;
        }
        i = j;
    }
    return want == AFTER;
}

/* Checks the select array (strings) of a search body. Returns the problems added. */
static unsigned check_select(const json_t *arr, struct ag_vpath *p, struct ag_verr *e)
{
    unsigned bad = 0;
    size_t i;
    json_t *v;
    ag_vpath_push_key(p, "select");
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || is_choice(select_choices, json_string_value(v)))
            continue; /* a non-string is reported by the type check */
        ag_vpath_push_index(p, (int64_t)i);
        ag_verr_add(e, p, "literal_error",
                    "Input should be 'thread_id', 'created_at', 'updated_at', 'state_updated_at', 'metadata', "
                    "'config', 'context', 'status', 'values' or 'interrupts'",
                    v);
        ag_vpath_pop(p);
        bad++;
    }
    ag_vpath_pop(p);
    return bad;
}

/* Checks the extract object of a search body and returns {alias: [segment...]} for the statement, or
 * NULL after adding problems. */
static json_t *check_extract(const json_t *obj, struct ag_vpath *p, struct ag_verr *e)
{
    ag_vpath_push_key(p, "extract");
    if (json_object_size(obj) > EXTRACT_MAX) {
        ag_verr_add(e, p, "value_error", "Value error, at most 10 extract paths are allowed", obj);
        ag_vpath_pop(p);
        return NULL;
    }
    json_t *out = json_object();
    const char *alias;
    json_t *v;
    unsigned bad = 0;
    json_object_foreach((json_t *)obj, alias, v)
    {
        ag_vpath_push_key(p, alias);
        json_t *segs = json_array();
        if (!*alias) {
            ag_verr_add(e, p, "value_error", "Value error, an extract alias must not be empty", v);
            bad++;
        } else if (!json_is_string(v)) {
            ag_verr_add(e, p, "string_type", "Input should be a valid string", v);
            bad++;
        } else if (!extract_path(json_string_value(v), segs)) {
            ag_verr_add(e, p, "value_error",
                        "Value error, an extract path starts with values, metadata, config or interrupts and "
                        "continues with .key and [index] steps",
                        v);
            bad++;
        }
        json_object_set_new(out, alias, segs);
        ag_vpath_pop(p);
    }
    ag_vpath_pop(p);
    if (bad) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Appends the filter parameters $2..$5 (metadata, values, status, ids) of a search or count body; ids is
 * the text[] literal, or NULL or empty for no ids filter. */
static void param_filters(struct tq *t, const json_t *body, const struct ag_buf *ids)
{
    const json_t *v = json_object_get(body, "metadata");
    if (json_is_object(v))
        ag_dbreq_param(&t->d, ag_dbreq_json(&t->d, v));
    else
        ag_dbreq_param(&t->d, NULL);
    v = json_object_get(body, "values");
    if (json_is_object(v))
        ag_dbreq_param(&t->d, ag_dbreq_json(&t->d, v));
    else
        ag_dbreq_param(&t->d, NULL);
    v = json_object_get(body, "status");
    if (json_is_string(v))
        ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, json_string_value(v), json_string_length(v)));
    else
        ag_dbreq_param(&t->d, NULL);
    if (ids && ids->len)
        ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, ids->base, ids->len));
    else
        ag_dbreq_param(&t->d, NULL);
}

int ag_threads_search(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    struct ag_buf ids = {0};
    json_t *extract = NULL;
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body) {
        ag_validate_object(body, search_fields, AG_ARRAY_LEN(search_fields), false, &p, &e);
        json_t *v = json_object_get(body, "ids");
        if (json_is_array(v)) {
            ag_vpath_push_key(&p, "ids");
            ids_literal(v, &ids, &p, &e);
            ag_vpath_pop(&p);
        }
        v = json_object_get(body, "select");
        if (json_is_array(v))
            check_select(v, &p, &e);
        v = json_object_get(body, "extract");
        if (json_is_object(v))
            extract = check_extract(v, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(extract);
        json_decref(body);
        ag_buf_free(&ids);
        return AG_OK;
    }
    int sort_by = choice_index(sort_by_choices, json_object_get(body, "sort_by"), 2);
    int order = choice_index(sort_order_choices, json_object_get(body, "sort_order"), 1);
    struct tq *t = tq_new(r, search_stmts[sort_by][order], AG_PG_READ, on_search);
    const json_t *v = json_object_get(body, "limit");
    t->limit = json_is_integer(v) ? json_integer_value(v) : SEARCH_LIMIT_DEFAULT;
    v = json_object_get(body, "offset");
    t->offset = json_is_integer(v) ? json_integer_value(v) : 0;
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    param_filters(t, body, &ids);
    ag_dbreq_param(&t->d, ag_pg_args_printf(&t->d.strs, "%" PRId64, t->limit));
    ag_dbreq_param(&t->d, ag_pg_args_printf(&t->d.strs, "%" PRId64, t->offset));
    v = json_object_get(body, "select");
    if (json_is_array(v)) {
        struct ag_buf sel = {0};
        size_t i;
        json_t *s;
        ag_buf_puts(&sel, "{");
        json_array_foreach(v, i, s)
        {
            if (i)
                ag_buf_puts(&sel, ",");
            ag_buf_puts(&sel, json_string_value(s)); /* a known field name: no quoting needed */
        }
        ag_buf_puts(&sel, "}");
        ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, sel.base, sel.len));
        ag_buf_free(&sel);
    } else {
        ag_dbreq_param(&t->d, NULL);
    }
    if (extract)
        ag_dbreq_param(&t->d, ag_dbreq_json(&t->d, extract));
    else
        ag_dbreq_param(&t->d, NULL);
    json_decref(extract);
    json_decref(body);
    ag_buf_free(&ids);
    return ag_dbreq_submit(&t->d);
}

int ag_threads_count(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body)
        ag_validate_object(body, count_fields, AG_ARRAY_LEN(count_fields), false, &p, &e);
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    struct tq *t = tq_new(r, AG_SQL_THREAD_COUNT, AG_PG_READ, on_json);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    param_filters(t, body, NULL);
    json_decref(body);
    return ag_dbreq_submit(&t->d);
}

static const char *const prune_strategies[] = {"delete", "keep_latest", NULL};

static const struct ag_vfield prune_fields[] = {
    {"thread_ids", AG_V_STRING_ARRAY, AG_VF_REQUIRED, 0, 0, NULL},
    {"strategy", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, prune_strategies},
};

int ag_threads_prune(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    struct ag_buf ids = {0};
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body) {
        ag_validate_object(body, prune_fields, AG_ARRAY_LEN(prune_fields), false, &p, &e);
        json_t *v = json_object_get(body, "thread_ids");
        if (json_is_array(v)) {
            ag_vpath_push_key(&p, "thread_ids");
            ids_literal(v, &ids, &p, &e);
            ag_vpath_pop(&p);
        }
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        ag_buf_free(&ids);
        return AG_OK;
    }
    int strategy = choice_index(prune_strategies, json_object_get(body, "strategy"), 0);
    struct tq *t = tq_new(r, AG_SQL_THREAD_PRUNE, AG_PG_WRITE, on_json);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, ids.base, ids.len));
    ag_dbreq_param(&t->d, prune_strategies[strategy]);
    json_decref(body);
    ag_buf_free(&ids);
    return ag_dbreq_submit(&t->d);
}

int ag_threads_get(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    bool ttl = false;
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        if (!n || !v) {
            ag_query_error(&e, n ? n : "", "value_error", "Value error, badly encoded query parameter", NULL);
        } else if (!strcmp(n, "include")) {
            struct ag_query_list l;
            if (!ag_query_list_init(&l, v))
                ag_query_error(&e, "include", "list_type", "Input should be a valid list", v);
            for (const char *item; (item = ag_query_list_next(&l));) {
                if (!strcmp(item, "ttl"))
                    ttl = true;
                else
                    ag_query_error(&e, "include", "literal_error", "Input should be 'ttl'", item);
            }
            ag_query_list_free(&l);
        } else {
            ag_query_unknown(n);
        }
        ag_free(n);
        ag_free(v);
    }
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct tq *t = tq_new(r, ttl ? AG_SQL_THREAD_GET_TTL : AG_SQL_THREAD_GET, AG_PG_READ, on_thread);
    memcpy(t->id, id, sizeof id);
    ag_dbreq_param(&t->d, t->id);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    return ag_dbreq_submit(&t->d);
}

static const struct ag_vfield patch_fields[] = {
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"ttl", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
};

int ag_threads_patch(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    double ttl = 0;
    const char *strategy = NULL;
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body) {
        ag_validate_object(body, patch_fields, AG_ARRAY_LEN(patch_fields), false, &p, &e);
        parse_ttl(json_object_get(body, "ttl"), &ttl, &strategy, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    struct tq *t = tq_new(r, AG_SQL_THREAD_PATCH, AG_PG_WRITE, on_patch);
    struct ag_iov prefer = ag_req_header(r, "prefer");
    t->minimal = prefer.len && memmem(prefer.base, prefer.len, "return=minimal", 14);
    return submit_body(t, id, body, ttl, strategy);
}

int ag_threads_delete(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    ag_query_ignore_all(&r->query);
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    ag_run_thread_deleted(r->shard, id); /* its runs stop now; their rows go with the thread */
    struct tq *t = tq_new(r, AG_SQL_THREAD_DELETE, AG_PG_WRITE, on_delete);
    memcpy(t->id, id, sizeof id);
    ag_dbreq_param(&t->d, t->id);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    return ag_dbreq_submit(&t->d);
}

int ag_threads_copy(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    if (r->body.len) {
        /* The SDKs send no body; {} is accepted too, anything else is a field we do not take. */
        struct ag_vpath p = {.key = {"body"}, .n = 1};
        json_t *body = ag_req_json(r, &e);
        if (body)
            ag_validate_object(body, NULL, 0, false, &p, &e);
        json_decref(body);
    }
    ag_query_ignore_all(&r->query);
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct tq *t = tq_new(r, AG_SQL_THREAD_COPY, AG_PG_WRITE, on_thread);
    memcpy(t->id, id, sizeof id);
    char copy[37];
    ag_owner_mint_thread_id(r->shard, copy); /* we run on the source's owner: the copy stays here */
    ag_dbreq_param(&t->d, t->id);
    ag_dbreq_param(&t->d, ag_req_owner(t->d.r));
    ag_dbreq_param(&t->d, ag_dbreq_str(&t->d, copy, 36));
    return ag_dbreq_submit(&t->d);
}

/* --- TTL sweeper ---
 * One per process, on shard 0 (runtime/sweep.h): the statement locks what it takes with SKIP LOCKED,
 * so several processes sharing the database never wait on each other. */

/* Logs a run; true when it found a full batch (a backlog: the next batch at once). */
static bool swept(const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK && PQntuples(res) == 1) {
        long due = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        long deleted = strtol(PQgetvalue(res, 0, 1), NULL, 10);
        long pruned = strtol(PQgetvalue(res, 0, 2), NULL, 10);
        if (due)
            ag_log(AG_LOG_INFO, "msg=\"thread ttl sweep\" deleted=%ld pruned=%ld", deleted, pruned);
        return due >= SWEEP_BATCH;
    }
    if (q->status != AG_PG_OK)
        ag_log(AG_LOG_WARN, "msg=\"thread ttl sweep failed\" status=%d error=\"%s\"", (int)q->status,
               q->error ? q->error : "");
    return false;
}

static const struct ag_sweep_def sweep_def = {
    .stmt = AG_SQL_THREAD_SWEEP, .batch = SWEEP_BATCH_TEXT, .interval_ns = SWEEP_INTERVAL_NS, .done = swept};

static _Thread_local struct ag_sweep sweeper;

void ag_threads_shard_start(struct ag_shard *s)
{
    ag_sweep_start(&sweeper, s, &sweep_def);
}

void ag_threads_shard_exit(struct ag_shard *s)
{
    ag_sweep_stop(&sweeper, s);
}
