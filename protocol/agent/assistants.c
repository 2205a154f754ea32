#include "protocol/agent/assistants.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/uuid.h"
#include "graph/registry.h"
#include "persist/pg.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "protocol/jsonw.h"
#include "protocol/query.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

#define ID_MAX 256          /* longest assistant id, in characters */
#define PAGE_MAX 1000       /* largest page of search, versions and list */
#define OFFSET_MAX INT32_MAX

static const char both_msg[] = "Cannot specify both configurable and context. Prefer setting context alone. Context was "
                               "introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable.";

/* --- one request's query --- */

enum show { SHOW_SCHEMAS, SHOW_GRAPH, SHOW_SUBGRAPHS };

struct aq {
    struct ag_dbreq d;
    const char *id; /* the assistant id (in d.strs), for messages */
    int64_t limit, offset;
    const char *version; /* set_latest, for messages */
    enum show show;
    bool recurse;          /* subgraphs: nested ones too */
    const char *namespace; /* subgraphs: only this one (in d.strs), or NULL */
};

static struct aq *aq_new(struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    return ag_dbreq_new(sizeof(struct aq), r, stmt, kind, cb);
}

static const char *aq_str(struct aq *a, const char *s)
{
    return ag_dbreq_str(&a->d, s, strlen(s));
}

/* Answers {"error","message","details":null} with a formatted message. */
static void answer(struct ag_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void answer(struct ag_req *r, int status, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ag_http_error(r, status, msg);
}

static void not_found(struct ag_req *r, const char *id)
{
    answer(r, 404, "Assistant '%s' not found", id);
}

static void graph_not_found(struct ag_req *r, const char *graph_id)
{
    answer(r, 404, "Graph '%.200s' not found", graph_id);
}

static void system_forbidden(struct ag_req *r, const char *id, const char *what)
{
    answer(r, 403, "Assistant '%s' is a system assistant and cannot be %s", id, what);
}

/* --- request input --- */

/* Characters of UTF-8 text (valid UTF-8 assumed). */
/* Checks an assistant id at path p: valid UTF-8, 1..ID_MAX characters. Returns the problems added. */
static unsigned check_id(const char *id, size_t len, const struct ag_vpath *p, struct ag_verr *e)
{
    json_t *in = json_stringn(id, len); /* NULL when id is not UTF-8 */
    unsigned bad = 1;
    if (!in)
        ag_verr_add(e, p, "string_unicode", "Input should be a valid string, unable to parse raw data as a unicode string",
                    NULL);
    else if (len == 0)
        ag_verr_add(e, p, "string_too_short", "String should have at least 1 character", in);
    else if (ag_utf8_chars(id, len) > ID_MAX)
        ag_verr_add(e, p, "string_too_long", "String should have at most 256 characters", in);
    else
        bad = 0;
    json_decref(in);
    return bad;
}

/* The assistant id of r's path, with a graph id resolved to its system assistant, copied into st;
 * or NULL after answering 422. */
static const char *path_id(struct ag_req *r, struct ag_pg_args *st)
{
    static const struct ag_vpath p = {.key = {"path", "assistant_id"}, .n = 2};
    struct ag_verr e = {0};
    char *raw = ag_req_param_str(r, "assistant_id");
    if (!raw) {
        ag_verr_add(&e, &p, "value_error", "Value error, not a valid percent-encoded id", NULL);
        ag_http_validation_refuse(r, &e);
        return NULL;
    }
    if (check_id(raw, strlen(raw), &p, &e)) {
        ag_free(raw);
        ag_http_validation_refuse(r, &e);
        return NULL;
    }
    const char *id = ag_graph_resolve_assistant(raw);
    const char *out = ag_pg_args_dup(st, id, strlen(id));
    ag_free(raw);
    return out;
}

/* A query parameter the route accepts; value is its decoded text once seen (last one wins). */
struct qparam {
    const char *name;
    char *value;
};

/* Reads r's query string into qp[0..n); unknown names and bad encodings are added to e. */
static void query_read(struct ag_req *r, struct qparam *qp, size_t n, struct ag_verr *e)
{
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *k = ag_query_str(name), *v = ag_query_str(value);
        size_t i = 0;
        while (k && i < n && strcmp(qp[i].name, k))
            i++;
        if (!k || !v) {
            ag_query_error(e, k ? k : "", "value_error", "Value error, not valid percent-encoded text", NULL);
        } else if (i == n) {
            ag_query_unknown(k);
        } else {
            ag_free(qp[i].value);
            qp[i].value = v;
            v = NULL;
        }
        ag_free(k);
        ag_free(v);
    }
}

static void query_free(struct qparam *qp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ag_free(qp[i].value);
        qp[i].value = NULL;
    }
}

static void query_bool(struct qparam *qp, bool *out, struct ag_verr *e)
{
    if (qp->value)
        ag_query_bool(e, qp->name, qp->value, out);
}

static void query_int(struct qparam *qp, int64_t min, int64_t max, int64_t *out, struct ag_verr *e)
{
    if (qp->value)
        ag_query_int(e, qp->name, qp->value, min, max, out);
}

/* True when the body is empty or only white space. */
static bool body_blank(const struct ag_req *r)
{
    for (size_t i = 0; i < r->body.len; i++)
        if (!strchr(" \t\r\n", r->body.base[i]))
            return false;
    return true;
}

/* The body parsed and checked against fields (no other key allowed); an empty body is {} when
 * empty_ok. These routes take no query parameter. Problems go to e; returns the value (decref it) or
 * NULL when it could not be parsed. */
static json_t *read_body(struct ag_req *r, const struct ag_vfield *fields, size_t n, bool empty_ok, struct ag_verr *e)
{
    query_read(r, NULL, 0, e);
    json_t *b = empty_ok && body_blank(r) ? json_object() : ag_req_json(r, e);
    if (!b)
        return NULL;
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    ag_validate_object(b, fields, n, false, &p, e);
    return b;
}

/* Starts the query of a route on the assistant of r's path (a->id); NULL after answering 422. */
static struct aq *aq_path(struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    struct aq *a = aq_new(r, stmt, kind, cb);
    if (!(a->id = path_id(r, &a->d.strs))) {
        ag_dbreq_free(&a->d);
        return NULL;
    }
    return a;
}

/* Starts the query of a route on the assistant of r's path that takes a body checked against fields
 * (and then by check, when not NULL): *body is the parsed body (decref it). Returns NULL after
 * answering 422, with nothing left to free. */
static struct aq *aq_path_body(struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb,
                               const struct ag_vfield *fields, size_t n, bool empty_ok,
                               void (*check)(json_t *body, struct ag_verr *e), json_t **body)
{
    *body = NULL;
    struct aq *a = aq_path(r, stmt, kind, cb);
    if (!a)
        return NULL;
    struct ag_verr e = {0};
    json_t *b = read_body(r, fields, n, empty_ok, &e);
    if (b && check)
        check(b, &e);
    if (e.count) {
        json_decref(b);
        ag_dbreq_free(&a->d);
        ag_http_validation_refuse(r, &e);
        return NULL;
    }
    *body = b;
    return a;
}

/* body[key] when it is present and not null, else NULL (borrowed). */
static json_t *field(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return json_is_null(v) ? NULL : v;
}

static const char *field_str(json_t *body, const char *key)
{
    return json_string_value(field(body, key));
}

/* The RunnableConfig fragment of body.config: known keys typed, others allowed. */
static void check_config(json_t *body, struct ag_verr *e)
{
    static const struct ag_vfield config_fields[] = {
        {"tags", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
        {"recursion_limit", AG_V_INT, AG_VF_NULLABLE, 1, INT32_MAX, NULL},
        {"configurable", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    };
    json_t *c = field(body, "config");
    if (!json_is_object(c))
        return;
    struct ag_vpath p = {.key = {"body", "config"}, .n = 2};
    ag_validate_object(c, config_fields, AG_ARRAY_LEN(config_fields), true, &p, e);
}

static bool nonempty_object(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) > 0;
}

/* The registered graph named by body[key] when present; false after answering 404 for an unknown one. */
static bool check_graph(struct ag_req *r, json_t *body, const char *key)
{
    const char *g = field_str(body, key);
    if (g && !ag_graph_find_n(g, json_string_length(field(body, key)))) {
        graph_not_found(r, g);
        return false;
    }
    return true;
}

/* --- POST /assistants --- */

static void on_create(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    if (q->status == AG_PG_OK && PQntuples(res) > 0)
        ag_http_json(a->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    else if (q->status == AG_PG_OK || ag_dbq_sqlstate(q, "23505"))
        answer(a->d.r, 409, "Assistant '%s' already exists", a->id);
    else
        ag_dbq_fail(a->d.r, q);
    ag_dbreq_finish(&a->d);
}

int ag_assistants_create(struct ag_req *r)
{
    static const char *const if_exists[] = {"raise", "do_nothing", NULL};
    static const struct ag_vfield fields[] = {
        {"graph_id", AG_V_STRING, AG_VF_REQUIRED, 0, 0, NULL},
        {"assistant_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"config", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"context", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"if_exists", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, if_exists},
        {"name", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"description", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    };
    struct ag_verr e = {0};
    json_t *body = read_body(r, fields, AG_ARRAY_LEN(fields), false, &e);
    if (body) {
        check_config(body, &e);
        json_t *id = field(body, "assistant_id");
        if (json_is_string(id)) {
            struct ag_vpath p = {.key = {"body", "assistant_id"}, .n = 2};
            check_id(json_string_value(id), json_string_length(id), &p, &e);
        }
    }
    if (e.count) {
        json_decref(body);
        ag_http_validation_refuse(r, &e);
        return AG_OK;
    }
    if (!check_graph(r, body, "graph_id")) {
        json_decref(body);
        return AG_OK;
    }
    json_t *config = field(body, "config"), *context = field(body, "context");
    config = config ? json_incref(config) : json_object();
    context = context ? json_incref(context) : json_object();
    json_t *configurable = json_object_get(config, "configurable");
    if (nonempty_object(configurable) && nonempty_object(context)) {
        ag_http_error(r, 400, both_msg);
    } else {
        if (nonempty_object(configurable)) {
            json_decref(context);
            context = json_incref(configurable);
        } else if (nonempty_object(context)) {
            json_object_set(config, "configurable", context);
        }
        struct aq *a = aq_new(r, AG_SQL_ASSISTANT_CREATE, AG_PG_WRITE, on_create);
        char uuid[37];
        const char *id = field_str(body, "assistant_id");
        if (!id) {
            ag_uuid4(uuid);
            id = uuid;
        }
        a->id = aq_str(a, ag_graph_resolve_assistant(id));
        const char *name = field_str(body, "name"), *desc = field_str(body, "description"),
                   *ifx = field_str(body, "if_exists");
        json_t *metadata = field(body, "metadata");
        ag_dbreq_param(&a->d, a->id);
        ag_dbreq_param(&a->d, ag_req_owner(r));
        ag_dbreq_param(&a->d, aq_str(a, field_str(body, "graph_id")));
        ag_dbreq_param(&a->d, aq_str(a, name ? name : "Untitled"));
        ag_dbreq_param(&a->d, desc ? aq_str(a, desc) : NULL);
        ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, config));
        ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, context));
        ag_dbreq_param(&a->d, metadata ? ag_dbreq_json(&a->d, metadata) : "{}");
        ag_dbreq_param(&a->d, ifx ? aq_str(a, ifx) : "raise");
        json_decref(config);
        json_decref(context);
        json_decref(body);
        return ag_dbreq_submit(&a->d);
    }
    json_decref(config);
    json_decref(context);
    json_decref(body);
    return AG_OK;
}

/* --- GET /assistants --- */

static void on_json(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    if (q->status != AG_PG_OK)
        ag_dbq_fail(a->d.r, q);
    else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
        not_found(a->d.r, a->id ? a->id : "");
    else
        ag_http_json(a->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    ag_dbreq_finish(&a->d);
}

int ag_assistants_list(struct ag_req *r)
{
    struct qparam qp[] = {{"limit", NULL}, {"offset", NULL}};
    struct ag_verr e = {0};
    int64_t limit = PAGE_MAX, offset = 0;
    query_read(r, qp, AG_ARRAY_LEN(qp), &e);
    query_int(&qp[0], 1, PAGE_MAX, &limit, &e);
    query_int(&qp[1], 0, OFFSET_MAX, &offset, &e);
    query_free(qp, AG_ARRAY_LEN(qp));
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct aq *a = aq_new(r, AG_SQL_ASSISTANT_LIST, AG_PG_READ, on_json);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" PRId64, limit));
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" PRId64, offset));
    return ag_dbreq_submit(&a->d);
}

/* --- POST /assistants/search, /assistants/count --- */

static const char *const select_choices[] = {"assistant_id", "graph_id",   "name",       "description", "config",
                                             "context",      "created_at", "updated_at", "metadata",    "version",
                                             NULL};

/* Each body.select item must name an Assistant field. */
static void check_select(json_t *body, struct ag_verr *e)
{
    json_t *sel = field(body, "select"), *it;
    size_t i;
    if (!json_is_array(sel))
        return;
    json_array_foreach(sel, i, it)
    {
        const char *s = json_string_value(it);
        if (!s)
            continue; /* reported by the field table */
        bool known = false;
        for (const char *const *c = select_choices; *c && !known; c++)
            known = !strcmp(*c, s);
        if (known)
            continue;
        struct ag_buf msg = {0};
        ag_buf_puts(&msg, "Input should be ");
        for (const char *const *c = select_choices; *c; c++)
            ag_buf_printf(&msg, "%s'%s'", c == select_choices ? "" : c[1] ? ", " : " or ", *c);
        ag_buf_append(&msg, "", 1);
        struct ag_vpath p = {.key = {"body", "select"}, .n = 2};
        ag_vpath_push_index(&p, (int64_t)i);
        ag_verr_add(e, &p, "literal_error", msg.base, it);
        ag_buf_free(&msg);
    }
}

/* Parameters $1-$4 of AG_SQL_ASSISTANT_FILTER from a validated body. */
static void filter_params(struct aq *a, json_t *body)
{
    const char *g = field_str(body, "graph_id"), *name = field_str(body, "name");
    ag_dbreq_param(&a->d, ag_req_owner(a->d.r));
    ag_dbreq_param(&a->d, g ? aq_str(a, g) : NULL);
    ag_dbreq_param(&a->d, name ? aq_str(a, name) : NULL);
    ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, field(body, "metadata")));
}

static void on_search(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(a->d.r, q);
    } else {
        int64_t got = 0;
        ag_query_parse_int(PQgetvalue(res, 0, 1), &got);
        char v[32];
        if (got > a->limit) {
            snprintf(v, sizeof v, "%" PRId64, a->offset + a->limit);
            ag_http_add_header(a->d.r, "X-Pagination-Next", v);
            snprintf(v, sizeof v, "%" PRId64, a->offset + a->limit + 1);
        } else {
            snprintf(v, sizeof v, "%" PRId64, a->offset + got);
        }
        ag_http_add_header(a->d.r, "X-Pagination-Total", v);
        ag_http_json(a->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    }
    ag_dbreq_finish(&a->d);
}

int ag_assistants_search(struct ag_req *r)
{
    static const char *const sort_by[] = {"assistant_id", "graph_id", "name", "created_at", "updated_at", NULL};
    static const char *const sort_order[] = {"asc", "desc", NULL};
    static const struct ag_vfield fields[] = {
        {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"graph_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"name", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"limit", AG_V_INT, AG_VF_NULLABLE, 1, PAGE_MAX, NULL},
        {"offset", AG_V_INT, AG_VF_NULLABLE, 0, OFFSET_MAX, NULL},
        {"sort_by", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_by},
        {"sort_order", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, sort_order},
        {"select", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    };
    struct ag_verr e = {0};
    json_t *body = read_body(r, fields, AG_ARRAY_LEN(fields), true, &e);
    if (body)
        check_select(body, &e);
    if (e.count) {
        json_decref(body);
        ag_http_validation_refuse(r, &e);
        return AG_OK;
    }
    if (!check_graph(r, body, "graph_id")) {
        json_decref(body);
        return AG_OK;
    }
    struct aq *a = aq_new(r, AG_SQL_ASSISTANT_SEARCH, AG_PG_READ, on_search);
    json_t *limit = field(body, "limit"), *offset = field(body, "offset"), *sel = field(body, "select");
    a->limit = limit ? json_integer_value(limit) : 10;
    a->offset = offset ? json_integer_value(offset) : 0;
    const char *sb = field_str(body, "sort_by"), *so = field_str(body, "sort_order");
    filter_params(a, body);
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" PRId64, a->limit));
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" PRId64, a->offset));
    ag_dbreq_param(&a->d, sb ? aq_str(a, sb) : "created_at");
    ag_dbreq_param(&a->d, so ? aq_str(a, so) : "desc");
    if (json_array_size(sel)) {
        /* Items are field names (checked above), so the array literal needs no quoting. */
        struct ag_buf lit = {0};
        size_t i;
        json_t *it;
        json_array_foreach(sel, i, it) ag_buf_printf(&lit, "%s%s", i ? "," : "{", json_string_value(it));
        ag_buf_puts(&lit, "}");
        ag_dbreq_param(&a->d, ag_pg_args_dup(&a->d.strs, lit.base, lit.len));
        ag_buf_free(&lit);
    } else {
        ag_dbreq_param(&a->d, NULL);
    }
    json_decref(body);
    return ag_dbreq_submit(&a->d);
}

int ag_assistants_count(struct ag_req *r)
{
    static const struct ag_vfield fields[] = {
        {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"graph_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"name", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    };
    struct ag_verr e = {0};
    json_t *body = read_body(r, fields, AG_ARRAY_LEN(fields), true, &e);
    if (e.count) {
        json_decref(body);
        ag_http_validation_refuse(r, &e);
        return AG_OK;
    }
    struct aq *a = aq_new(r, AG_SQL_ASSISTANT_COUNT, AG_PG_READ, on_json);
    filter_params(a, body);
    json_decref(body);
    return ag_dbreq_submit(&a->d);
}

/* --- GET /assistants/{assistant_id} --- */

int ag_assistants_get(struct ag_req *r)
{
    struct ag_verr e = {0};
    query_read(r, NULL, 0, &e);
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct aq *a = aq_path(r, AG_SQL_ASSISTANT_GET, AG_PG_READ, on_json);
    if (!a)
        return AG_OK;
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    return ag_dbreq_submit(&a->d);
}

/* --- PATCH /assistants/{assistant_id}, POST .../latest --- */

/* Rows of PATCH and set-latest: (visible owner, updated assistant or NULL). */
static void on_update(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    struct ag_req *r = a->d.r;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
    } else if (PQntuples(res) < 1) {
        not_found(r, a->id);
    } else if (strcmp(PQgetvalue(res, 0, 0), ag_req_owner(r))) {
        system_forbidden(r, a->id, "modified");
    } else if (PQgetisnull(res, 0, 1) && !a->version) {
        not_found(r, a->id); /* deleted between the two reads of the PATCH */
    } else if (PQgetisnull(res, 0, 1)) {
        answer(r, 404, "Version %s of assistant '%s' not found", a->version, a->id);
    } else {
        ag_http_json(r, 200, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
    }
    ag_dbreq_finish(&a->d);
}

int ag_assistants_patch(struct ag_req *r)
{
    static const struct ag_vfield fields[] = {
        {"graph_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"config", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"context", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"name", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"description", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    };
    json_t *body;
    struct aq *a = aq_path_body(r, AG_SQL_ASSISTANT_PATCH, AG_PG_WRITE, on_update, fields, AG_ARRAY_LEN(fields), false,
                                check_config, &body);
    if (!a)
        return AG_OK;
    json_t *config = field(body, "config"), *context = field(body, "context");
    json_t *configurable = json_object_get(config, "configurable");
    if (!check_graph(r, body, "graph_id") ||
        (nonempty_object(configurable) && nonempty_object(context) && (ag_http_error(r, 400, both_msg), true))) {
        json_decref(body);
        ag_dbreq_free(&a->d);
        return AG_OK;
    }
    /* config.configurable and context mirror each other: the non-empty one given wins. */
    bool ctx_to_config = false;
    if (nonempty_object(configurable))
        context = configurable;
    else if (nonempty_object(context))
        ctx_to_config = true;
    const char *g = field_str(body, "graph_id"), *name = field_str(body, "name"),
               *desc = field_str(body, "description");
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    ag_dbreq_param(&a->d, g ? aq_str(a, g) : NULL);
    ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, config));
    ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, context));
    ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, field(body, "metadata")));
    ag_dbreq_param(&a->d, name ? aq_str(a, name) : NULL);
    ag_dbreq_param(&a->d, desc ? aq_str(a, desc) : NULL);
    ag_dbreq_param(&a->d, ctx_to_config ? "true" : "false");
    json_decref(body);
    return ag_dbreq_submit(&a->d);
}

int ag_assistants_set_latest(struct ag_req *r)
{
    static const struct ag_vfield fields[] = {
        {"version", AG_V_INT, AG_VF_REQUIRED, INT64_MIN, INT64_MAX, NULL},
    };
    json_t *body;
    struct aq *a = aq_path_body(r, AG_SQL_ASSISTANT_SET_LATEST, AG_PG_WRITE, on_update, fields, AG_ARRAY_LEN(fields),
                                false, NULL, &body);
    if (!a)
        return AG_OK;
    a->version = ag_pg_args_printf(&a->d.strs, "%" JSON_INTEGER_FORMAT, json_integer_value(field(body, "version")));
    json_decref(body);
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    ag_dbreq_param(&a->d, a->version);
    return ag_dbreq_submit(&a->d);
}

/* --- DELETE /assistants/{assistant_id} --- */

static void on_delete(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    if (q->status != AG_PG_OK)
        ag_dbq_fail(a->d.r, q);
    else if (PQntuples(res) < 1)
        not_found(a->d.r, a->id);
    else if (strcmp(PQgetvalue(res, 0, 0), ag_req_owner(a->d.r)))
        system_forbidden(a->d.r, a->id, "deleted");
    else
        ag_http_respond(a->d.r, 204, "application/json", NULL, 0);
    ag_dbreq_finish(&a->d);
}

int ag_assistants_delete(struct ag_req *r)
{
    struct qparam qp[] = {{"delete_threads", NULL}};
    struct ag_verr e = {0};
    bool threads = false;
    query_read(r, qp, AG_ARRAY_LEN(qp), &e);
    query_bool(&qp[0], &threads, &e);
    query_free(qp, AG_ARRAY_LEN(qp));
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct aq *a = aq_path(r, AG_SQL_ASSISTANT_DELETE, AG_PG_WRITE, on_delete);
    if (!a)
        return AG_OK;
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    ag_dbreq_param(&a->d, threads ? "true" : "false");
    return ag_dbreq_submit(&a->d);
}

/* --- POST /assistants/{assistant_id}/versions --- */

int ag_assistants_versions(struct ag_req *r)
{
    static const struct ag_vfield fields[] = {
        {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
        {"limit", AG_V_INT, AG_VF_NULLABLE, 1, PAGE_MAX, NULL},
        {"offset", AG_V_INT, AG_VF_NULLABLE, 0, OFFSET_MAX, NULL},
    };
    json_t *body;
    struct aq *a = aq_path_body(r, AG_SQL_ASSISTANT_VERSIONS, AG_PG_READ, on_json, fields, AG_ARRAY_LEN(fields), true,
                                NULL, &body);
    if (!a)
        return AG_OK;
    json_t *limit = field(body, "limit"), *offset = field(body, "offset");
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    ag_dbreq_param(&a->d, ag_dbreq_json(&a->d, field(body, "metadata")));
    json_int_t lim = limit ? json_integer_value(limit) : 10, off = offset ? json_integer_value(offset) : 0;
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" JSON_INTEGER_FORMAT, lim));
    ag_dbreq_param(&a->d, ag_pg_args_printf(&a->d.strs, "%" JSON_INTEGER_FORMAT, off));
    json_decref(body);
    return ag_dbreq_submit(&a->d);
}

/* --- GET /assistants/{assistant_id}/schemas, /graph, /subgraphs --- */

static void write_schemas(struct ag_jw *w, const struct ag_graph_info *g)
{
    ag_jw_key(w, "input_schema");
    ag_jw_raw(w, g->input_schema, strlen(g->input_schema));
    ag_jw_key(w, "output_schema");
    ag_jw_raw(w, g->output_schema, strlen(g->output_schema));
    ag_jw_key(w, "state_schema");
    ag_jw_raw(w, g->state_schema, strlen(g->state_schema));
    ag_jw_key(w, "config_schema");
    ag_jw_raw(w, g->config_schema, strlen(g->config_schema));
    ag_jw_key(w, "context_schema");
    ag_jw_raw(w, g->context_schema, strlen(g->context_schema));
}

/* LangGraph's drawable graph (Graph.to_json, node data ids dropped as the Platform does). */
static void write_graph(struct ag_jw *w, const struct ag_graph_info *g)
{
    ag_jw_key(w, "nodes");
    ag_jw_arr(w);
    for (size_t i = 0; i < g->nnodes; i++) {
        const char *id = g->nodes[i].id;
        bool pseudo = !strcmp(id, AG_GRAPH_START) || !strcmp(id, AG_GRAPH_END);
        ag_jw_obj(w);
        ag_jw_key(w, "id");
        ag_jw_str(w, id);
        ag_jw_key(w, "type");
        ag_jw_str(w, pseudo ? "schema" : "runnable");
        ag_jw_key(w, "data");
        if (pseudo) {
            ag_jw_str(w, id);
        } else {
            ag_jw_obj(w);
            ag_jw_key(w, "name");
            ag_jw_str(w, id);
            ag_jw_end(w);
            ag_jw_key(w, "metadata");
            ag_jw_obj(w);
            ag_jw_end(w);
        }
        ag_jw_end(w);
    }
    ag_jw_end(w);
    ag_jw_key(w, "edges");
    ag_jw_arr(w);
    for (size_t i = 0; i < g->nedges; i++) {
        ag_jw_obj(w);
        ag_jw_key(w, "source");
        ag_jw_str(w, g->edges[i].source);
        ag_jw_key(w, "target");
        ag_jw_str(w, g->edges[i].target);
        ag_jw_key(w, "conditional");
        ag_jw_bool(w, g->edges[i].conditional);
        ag_jw_end(w);
    }
    ag_jw_end(w);
}

/* {"<namespace>": schemas} of g's subgraph nodes (LangGraph's get_subgraphs): only the one named ns
 * (NULL: all), nested ones too with recurse ("<node>|<child>"); prefix: the namespace of g ("" the root). */
static void write_subgraphs(struct ag_jw *w, const struct ag_graph_info *g, const char *prefix, bool recurse,
                            const char *ns)
{
    for (size_t i = 0; i < g->nsubgraphs; i++) {
        const struct ag_graph_subgraph_info *s = &g->subgraphs[i];
        char name[512];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "|" : "", s->node);
        if (!ns || !strcmp(ns, s->node)) {
            ag_jw_key(w, name);
            ag_jw_obj(w);
            write_schemas(w, s->info);
            ag_jw_end(w);
        }
        if (recurse && (!ns || !strcmp(ns, s->node))) write_subgraphs(w, s->info, name, true, NULL);
    }
}

static void on_graph_id(struct ag_pg_query *q, PGresult *res)
{
    struct aq *a = AG_CONTAINER_OF(q, struct aq, d.q);
    const struct ag_graph_info *g = NULL;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(a->d.r, q);
    } else if (PQntuples(res) < 1) {
        not_found(a->d.r, a->id);
    } else if (!(g = ag_graph_find_n(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0)))) {
        graph_not_found(a->d.r, PQgetvalue(res, 0, 0));
    } else {
        struct ag_buf b = {0};
        struct ag_jw w;
        ag_jw_init(&w, &b);
        ag_jw_obj(&w);
        if (a->show == SHOW_SCHEMAS) {
            ag_jw_key(&w, "graph_id");
            ag_jw_str(&w, g->graph_id);
            write_schemas(&w, g);
        } else if (a->show == SHOW_GRAPH) {
            write_graph(&w, g);
        } else {
            write_subgraphs(&w, g, "", a->recurse, a->namespace);
        }
        ag_jw_end(&w);
        ag_http_json(a->d.r, 200, b.base, b.len);
        ag_buf_free(&b);
    }
    ag_dbreq_finish(&a->d);
}

static int show(struct ag_req *r, enum show what)
{
    struct qparam qp[] = {{"xray", NULL}, {"recurse", NULL}};
    size_t nq = what == SHOW_SCHEMAS ? 0 : 1;
    struct qparam *mine = what == SHOW_SUBGRAPHS ? &qp[1] : &qp[0];
    struct ag_verr e = {0};
    bool flag = false;
    char *ns = NULL; /* subgraphs/{namespace} */
    query_read(r, mine, nq, &e);
    if (what == SHOW_SUBGRAPHS) {
        query_bool(mine, &flag, &e);
        if (ag_req_param(r, "namespace").base) {
            ns = ag_req_param_str(r, "namespace");
            json_t *t = ns ? json_string(ns) : NULL; /* NULL when not UTF-8 */
            if (!t) {
                struct ag_vpath p = {.key = {"path", "namespace"}, .n = 2};
                ag_verr_add(&e, &p, "value_error", "Value error, not valid percent-encoded text", NULL);
            }
            json_decref(t);
        }
    } else if (what == SHOW_GRAPH && mine->value && strcasecmp(mine->value, "true") &&
               strcasecmp(mine->value, "false")) {
        /* xray: true, false or a subgraph depth (a positive integer; 0 is refused, as LangGraph does). */
        int64_t depth;
        if (!ag_query_parse_int(mine->value, &depth) || depth <= 0) {
            struct ag_vpath p = {.key = {"query", "xray"}, .n = 2};
            json_t *in = json_string(mine->value);
            ag_verr_add(&e, &p, "value_error", "Value error, xray must be a boolean or a positive integer", in);
            json_decref(in);
        }
    }
    query_free(qp, AG_ARRAY_LEN(qp));
    if (ag_http_validation_refuse(r, &e)) {
        ag_free(ns);
        return AG_OK;
    }
    struct aq *a = aq_path(r, AG_SQL_ASSISTANT_GRAPH_ID, AG_PG_READ, on_graph_id);
    if (!a) {
        ag_free(ns);
        return AG_OK;
    }
    a->show = what;
    a->recurse = flag;
    a->namespace = ns ? aq_str(a, ns) : NULL;
    ag_free(ns);
    ag_dbreq_param(&a->d, a->id);
    ag_dbreq_param(&a->d, ag_req_owner(r));
    return ag_dbreq_submit(&a->d);
}

int ag_assistants_schemas(struct ag_req *r)
{
    return show(r, SHOW_SCHEMAS);
}

int ag_assistants_graph(struct ag_req *r)
{
    return show(r, SHOW_GRAPH);
}

int ag_assistants_subgraphs(struct ag_req *r)
{
    return show(r, SHOW_SUBGRAPHS);
}

/* --- seed --- */

int ag_assistants_seed(PGconn *pg, char *err, size_t errlen)
{
    static const char *const sql[] = {
        "INSERT INTO assistants (assistant_id, owner, graph_id, name, metadata, version) "
        "VALUES ($1, 'system', $2, $2, '{\"created_by\":\"system\"}', 1) ON CONFLICT (assistant_id) DO NOTHING",
        "INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, "
        "metadata, created_at) SELECT assistant_id, 1, graph_id, name, description, config, context, metadata, "
        "created_at FROM assistants WHERE assistant_id = $1 AND owner = 'system' "
        "ON CONFLICT (assistant_id, version) DO NOTHING",
    };
    for (size_t i = 0; i < ag_graph_count(); i++) {
        const struct ag_graph_info *g = ag_graph_at(i);
        const char *params[2] = {g->assistant_id, g->graph_id};
        for (size_t k = 0; k < AG_ARRAY_LEN(sql); k++) {
            PGresult *res = PQexecParams(pg, sql[k], k ? 1 : 2, NULL, params, NULL, NULL, 0);
            bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
            if (!ok)
                snprintf(err, errlen, "seeding the system assistant of graph %s: %s", g->graph_id,
                         PQresultErrorMessage(res));
            PQclear(res);
            if (!ok)
                return -1;
        }
    }
    return 0;
}
