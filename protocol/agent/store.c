#include "protocol/agent/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "persist/pg.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "protocol/query.h"
#include "runtime/sweep.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

/* The primary key btree holds owner, namespace and key in one index tuple (at most ~2.7 kB); these
 * bounds keep a put from failing there. */
#define KEY_MAX_BYTES 1024
#define NAMESPACE_MAX_BYTES 1024

#define SEARCH_LIMIT_DEFAULT 10
#define NAMESPACES_LIMIT_DEFAULT 100
#define PAGE_LIMIT_MAX 1000
/* ttl_minutes is an integer column. */
#define TTL_MAX_MINUTES 2147483647.0

#define BUSY_PAUSE_NS AG_NS_PER_MS
#define BUSY_MAX_NS (10 * AG_NS_PER_SEC)

#define SWEEP_INTERVAL_NS (5 * AG_NS_PER_SEC)
#define SWEEP_BATCH "1000"
#define SWEEP_BATCH_N 1000

static const char *const filter_ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", NULL};

/* --- one request's query --- */

struct store_req {
    struct ag_dbreq d;
    int ok_status;        /* 204: row 0 says go (false: busy); 200: row 0 column 0 is the JSON (none: null) */
    unsigned busy;        /* runs again because another transaction was writing the item */
    uint64_t busy_since;  /* CLOCK_MONOTONIC ns of the first busy answer */
    struct ag_timer wait; /* the pause before running again */
};

/* Runs the query again (it did nothing the first time); false after answering 503 when it cannot. */
static bool store_req_again(struct store_req *x)
{
    if (ag_pg_submit(x->d.r->shard, &x->d.q) == 0)
        return true;
    ag_http_add_header(x->d.r, "retry-after", "1");
    ag_http_error(x->d.r, 503, "database unavailable or queue full, retry later");
    return false;
}

static void on_wait(struct ag_timer *t)
{
    struct store_req *x = AG_CONTAINER_OF(t, struct store_req, wait);
    if (!store_req_again(x))
        ag_dbreq_finish(&x->d);
}

/* The item is being written by another transaction: try again after a pause growing from 1 ms to
 * 16 ms; false after answering 503 once BUSY_MAX_NS has passed. */
static bool store_req_busy(struct store_req *x)
{
    struct ag_shard *s = x->d.r->shard;
    if (!x->busy++)
        x->busy_since = s->now_ns;
    if (s->now_ns - x->busy_since > BUSY_MAX_NS) {
        ag_http_add_header(x->d.r, "retry-after", "1");
        ag_http_error(x->d.r, 503, "the item is being written by other requests, retry later");
        return false;
    }
    uint64_t pause = BUSY_PAUSE_NS << (x->busy < 5 ? x->busy - 1 : 4);
    ag_timer_arm(&s->timers, &x->wait, s->now_ns + pause);
    return true;
}

static void on_result(struct ag_pg_query *q, PGresult *res)
{
    struct store_req *x = AG_CONTAINER_OF(q, struct store_req, d.q);
    /* Deadlock victims (a writer outside agentd can still hold a lock; writers of an item inside it
     * never wait for each other, sql_store.def) are run again by persist/ and mapped by ag_dbq_fail. */
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(x->d.r, q);
    } else if (x->ok_status == 204) {
        bool go = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        if (!go && store_req_busy(x))
            return;
        if (go)
            ag_http_respond(x->d.r, 204, "application/json", NULL, 0);
    } else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
        /* A missing (or expired) item: 200 null, as LangGraph Platform answers (the SDK's getItem
         * returns null); search and namespaces always have their row. */
        ag_http_json(x->d.r, 200, "null", 4);
    } else {
        ag_http_json(x->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    }
    ag_dbreq_finish(&x->d);
}

/* A read of stmt for r; its first parameter is the owner. */
static struct store_req *store_req_new(struct ag_req *r, enum ag_sql stmt, int ok_status)
{
    struct store_req *x = ag_dbreq_new(sizeof *x, r, stmt, AG_PG_READ, on_result);
    x->ok_status = ok_status;
    ag_timer_init(&x->wait, on_wait);
    ag_dbreq_param(&x->d, ag_req_owner(r));
    return x;
}

/* Adds parameter s (copied; NULL is SQL NULL). */
static void param(struct store_req *x, const char *s, size_t len)
{
    ag_dbreq_param(&x->d, s ? ag_dbreq_str(&x->d, s, len) : NULL);
}

/* Adds the Postgres text[] literal of the first n labels (JSON strings), each quoted and escaped, with
 * chr(1) appended to the last one when bump (the exclusive end of a prefix range). */
static void param_labels(struct store_req *x, const json_t *labels, size_t n, bool bump)
{
    ag_dbreq_param(&x->d, ag_pg_args_text_array(&x->d.strs, labels, n, bump));
}

/* Adds the prefix range [lo, hi) of the first n labels, or two NULLs when n is 0 (every namespace). */
static void param_range(struct store_req *x, const json_t *labels, size_t n)
{
    if (!n) {
        param(x, NULL, 0);
        param(x, NULL, 0);
        return;
    }
    param_labels(x, labels, n, false);
    param_labels(x, labels, n, true);
}

static void param_bool(struct store_req *x, bool v)
{
    param(x, v ? "true" : "false", v ? 4 : 5);
}

static void param_int(struct store_req *x, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    param(x, t, (size_t)n);
}

/* --- validation --- */

static const struct ag_vpath body_path = {.key = {"body"}, .n = 1};

/* Checks the labels of a namespace (an array; elements that are not strings were reported by the
 * field table). min: fewest labels; max_bytes: most label bytes in all (0: no bound). */
static void check_labels(const json_t *ns, size_t min, size_t max_bytes, struct ag_vpath *p, struct ag_verr *e)
{
    if (!json_is_array(ns))
        return;
    if (json_array_size(ns) < min) {
        ag_verr_add(e, p, "too_short", "List should have at least 1 item after validation, not 0", ns);
        return;
    }
    size_t i, total = 0;
    json_t *l;
    json_array_foreach(ns, i, l)
    {
        if (!json_is_string(l))
            continue;
        const char *s = json_string_value(l);
        size_t len = json_string_length(l);
        total += len;
        const char *msg = NULL;
        if (!len)
            msg = "Value error, Namespace labels cannot be empty";
        else if (memchr(s, '.', len))
            msg = "Value error, Namespace labels cannot contain periods ('.')";
        if (msg) {
            ag_vpath_push_index(p, (int64_t)i);
            ag_verr_add(e, p, "value_error", msg, l);
            ag_vpath_pop(p);
        }
    }
    if (max_bytes && total > max_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "Value error, Namespace labels should have at most %zu bytes in all", max_bytes);
        ag_verr_add(e, p, "value_error", msg, ns);
    }
}

/* Checks an item key (a string; other types were reported by the field table). */
static void check_key(const json_t *k, struct ag_vpath *p, struct ag_verr *e)
{
    if (!json_is_string(k))
        return;
    size_t len = json_string_length(k);
    if (!len)
        ag_verr_add(e, p, "string_too_short", "String should have at least 1 character", k);
    else if (len > KEY_MAX_BYTES)
        ag_verr_add(e, p, "string_too_long", "String should have at most 1024 bytes", k);
}

/* An item's namespace: at least one label, bounded in size. */
static void check_namespace(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    check_labels(v, 1, NAMESPACE_MAX_BYTES, p, e);
}

/* A search or listing prefix (or suffix): may be empty. */
static void check_prefix(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    check_labels(v, 0, 0, p, e);
}

/* A check beyond the field table's types, run on a field that is present (path extended by it). */
struct store_check {
    const char *name;
    void (*fn)(const json_t *v, struct ag_vpath *p, struct ag_verr *e);
};

/* Parses the body and checks it against the field table and then the checks; problems land in e. */
static json_t *parse_body(struct ag_req *r, const struct ag_vfield *fields, size_t nfields,
                          const struct store_check *checks, size_t nchecks, struct ag_verr *e)
{
    ag_query_ignore_all(&r->query); /* these routes take their input from the body alone */
    json_t *body = ag_req_json(r, e);
    if (!body)
        return NULL;
    struct ag_vpath p = body_path;
    ag_validate_object(body, fields, nfields, false, &p, e);
    if (!json_is_object(body))
        return body;
    for (size_t i = 0; i < nchecks; i++) {
        json_t *v = json_object_get(body, checks[i].name);
        if (!v)
            continue;
        ag_vpath_push_key(&p, checks[i].name);
        checks[i].fn(v, &p, e);
        ag_vpath_pop(&p);
    }
    return body;
}

/* Answers 422 when problems were collected; returns true then (body is released). */
static bool refuse(struct ag_req *r, json_t *body, struct ag_verr *e)
{
    if (!ag_http_validation_refuse(r, e))
        return false;
    json_decref(body);
    return true;
}

/* --- PUT /store/items --- */

static const struct ag_vfield put_fields[] = {
    {.name = "namespace", .kind = AG_V_STRING_ARRAY, .flags = AG_VF_REQUIRED},
    {.name = "key", .kind = AG_V_STRING, .flags = AG_VF_REQUIRED},
    {.name = "value", .kind = AG_V_OBJECT, .flags = AG_VF_REQUIRED},
    {.name = "index", .kind = AG_V_ANY, .flags = AG_VF_NULLABLE},
    {.name = "ttl", .kind = AG_V_NUMBER, .flags = AG_VF_NULLABLE},
};

/* index: false, null or a list of field paths. Which fields to embed for semantic search: without an
 * embedding index (none is configured here yet) nothing is embedded, as LangGraph's stores do without
 * one, and the item is stored all the same. */
static void check_index(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    bool ok = json_is_null(v) || json_is_false(v) || json_is_array(v);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) ok = ok && json_is_string(x);
    if (!ok)
        ag_verr_add(e, p, "value_error", "Value error, index should be false, null or a list of field paths", v);
}

static void check_ttl(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    if (!json_is_number(v))
        return;
    double m = json_number_value(v);
    if (!(m > 0))
        ag_verr_add(e, p, "greater_than", "Input should be greater than 0", v);
    else if (m > TTL_MAX_MINUTES)
        ag_verr_add(e, p, "less_than_equal", "Input should be less than or equal to 2147483647", v);
}

static const struct store_check put_checks[] = {
    {"namespace", check_namespace},
    {"key", check_key},
    {"index", check_index},
    {"ttl", check_ttl},
};

int ag_store_put(struct ag_req *r)
{
    struct ag_verr e = {0};
    json_t *body = parse_body(r, put_fields, AG_ARRAY_LEN(put_fields), put_checks, AG_ARRAY_LEN(put_checks), &e);
    if (refuse(r, body, &e))
        return AG_OK;
    struct store_req *x = store_req_new(r, AG_SQL_STORE_PUT, 204);
    x->d.q.kind = AG_PG_WRITE;
    const json_t *ns = json_object_get(body, "namespace");
    const json_t *key = json_object_get(body, "key");
    param_labels(x, ns, json_array_size(ns), false);
    param(x, json_string_value(key), json_string_length(key));
    param(x, r->body.base, r->body.len); /* the value is taken from it in SQL, numbers exactly as sent */
    const json_t *ttl = ag_v_present(body, "ttl");
    if (ttl) {
        char t[40];
        int n = snprintf(t, sizeof t, "%.17g", json_number_value(ttl));
        param(x, t, (size_t)n);
    } else {
        param(x, NULL, 0);
    }
    json_decref(body);
    return ag_dbreq_submit(&x->d);
}

/* --- GET /store/items --- */

#define UNICODE_MSG "Input should be a valid string, unable to parse raw data as a unicode string"

/* The query parameters of GET /store/items, decoded (ag_free each). */
struct get_query {
    char *namespace, *key, *refresh_ttl;
};

/* Decodes the query into q, recording problems (repeated or badly encoded parameters; unknown ones are
 * ignored). */
static void parse_get_query(struct ag_req *r, struct get_query *q, struct ag_verr *e)
{
    struct ag_vpath p = {.key = {"query"}, .n = 1};
    struct ag_iov rest = r->query, name, value;
    while (ag_query_next(&rest, &name, &value)) {
        char *n = ag_query_str(name);
        char **slot = NULL;
        if (n && !strcmp(n, "namespace"))
            slot = &q->namespace;
        else if (n && !strcmp(n, "key"))
            slot = &q->key;
        else if (n && !strcmp(n, "refresh_ttl"))
            slot = &q->refresh_ttl;
        json_t *raw = json_stringn(value.base, value.len); /* NULL (input null) if not UTF-8 */
        ag_vpath_push_key(&p, n ? n : "?");
        if (!slot) {
            ag_verr_unknown(&p);
        } else if (*slot) {
            ag_verr_add(e, &p, "value_error", "Value error, given more than once", raw);
        } else if (!(*slot = ag_query_str(value))) {
            ag_verr_add(e, &p, "value_error", "Value error, badly percent-encoded or contains a NUL byte", raw);
        }
        ag_vpath_pop(&p);
        json_decref(raw);
        ag_free(n);
    }
}

int ag_store_get(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct get_query q = {0};
    parse_get_query(r, &q, &e);
    struct ag_vpath p = {.key = {"query"}, .n = 1};
    json_t *ns = NULL, *key = NULL;
    bool refresh = true;
    if (!e.count) {
        ag_vpath_push_key(&p, "namespace");
        if (!q.namespace) {
            ag_verr_add(&e, &p, "missing", "Field required", NULL);
        } else {
            /* "a.b" → ["a","b"]: a label cannot hold '.', so the split is exact. */
            ns = json_array();
            for (char *s = q.namespace;;) {
                char *dot = strchr(s, '.');
                size_t len = dot ? (size_t)(dot - s) : strlen(s);
                json_t *l = json_stringn(s, len);
                if (!l) {
                    ag_verr_add(&e, &p, "string_unicode", UNICODE_MSG, NULL);
                    break;
                }
                json_array_append_new(ns, l);
                if (!dot)
                    break;
                s = dot + 1;
            }
            if (!e.count)
                check_namespace(ns, &p, &e);
        }
        ag_vpath_pop(&p);
        ag_vpath_push_key(&p, "key");
        if (!q.key) {
            ag_verr_add(&e, &p, "missing", "Field required", NULL);
        } else if (!(key = json_string(q.key))) {
            ag_verr_add(&e, &p, "string_unicode", UNICODE_MSG, NULL);
        } else {
            check_key(key, &p, &e);
        }
        ag_vpath_pop(&p);
        if (q.refresh_ttl)
            ag_query_bool(&e, "refresh_ttl", q.refresh_ttl, &refresh);
    }
    struct store_req *x = NULL;
    if (!e.count) {
        x = store_req_new(r, AG_SQL_STORE_GET, 200);
        x->d.q.kind = refresh ? AG_PG_WRITE : AG_PG_READ;
        param_labels(x, ns, json_array_size(ns), false);
        param(x, json_string_value(key), json_string_length(key));
        param_bool(x, refresh);
    }
    json_decref(ns);
    json_decref(key);
    ag_free(q.namespace);
    ag_free(q.key);
    ag_free(q.refresh_ttl);
    if (refuse(r, NULL, &e))
        return AG_OK;
    return ag_dbreq_submit(&x->d);
}

/* --- DELETE /store/items --- */

static const struct ag_vfield delete_fields[] = {
    {.name = "namespace", .kind = AG_V_STRING_ARRAY, .flags = AG_VF_REQUIRED},
    {.name = "key", .kind = AG_V_STRING, .flags = AG_VF_REQUIRED},
};

static const struct store_check delete_checks[] = {
    {"namespace", check_namespace},
    {"key", check_key},
};

int ag_store_delete(struct ag_req *r)
{
    struct ag_verr e = {0};
    json_t *body = parse_body(r, delete_fields, AG_ARRAY_LEN(delete_fields), delete_checks, AG_ARRAY_LEN(delete_checks), &e);
    if (refuse(r, body, &e))
        return AG_OK;
    struct store_req *x = store_req_new(r, AG_SQL_STORE_DELETE, 204);
    x->d.q.kind = AG_PG_WRITE;
    const json_t *ns = json_object_get(body, "namespace");
    const json_t *key = json_object_get(body, "key");
    param_labels(x, ns, json_array_size(ns), false);
    param(x, json_string_value(key), json_string_length(key));
    json_decref(body);
    return ag_dbreq_submit(&x->d);
}

/* --- POST /store/items/search --- */

static const struct ag_vfield search_fields[] = {
    {.name = "namespace_prefix", .kind = AG_V_STRING_ARRAY, .flags = AG_VF_REQUIRED},
    {.name = "filter", .kind = AG_V_OBJECT, .flags = AG_VF_NULLABLE},
    {.name = "limit", .kind = AG_V_INT, .flags = AG_VF_NULLABLE, .min = 1, .max = PAGE_LIMIT_MAX},
    {.name = "offset", .kind = AG_V_INT, .flags = AG_VF_NULLABLE, .min = 0, .max = INT64_MAX},
    {.name = "query", .kind = AG_V_STRING, .flags = AG_VF_NULLABLE},
    {.name = "refresh_ttl", .kind = AG_V_BOOL, .flags = AG_VF_NULLABLE},
};

static bool is_filter_op(const char *k)
{
    for (const char *const *o = filter_ops; *o; o++)
        if (!strcmp(*o, k))
            return true;
    return false;
}

/* A filter maps top-level value fields to a value (containment) or to an object of operators. An
 * object with any "$" key is an operator object, and then every key must be a known operator. */
static void check_filter(const json_t *f, struct ag_vpath *p, struct ag_verr *e)
{
    if (!json_is_object(f))
        return;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)f, k, v)
    {
        ag_vpath_push_key(p, k);
        if (k[0] == '$') {
            ag_verr_add(e, p, "value_error",
                        "Value error, Unsupported filter key: top-level operators are not supported; filter on value "
                        "fields, each with a value or an object of $eq, $ne, $gt, $gte, $lt, $lte",
                        v);
        } else if (json_is_object(v)) {
            bool ops = false;
            const char *ok;
            json_t *ov;
            json_object_foreach(v, ok, ov) ops |= ok[0] == '$';
            if (ops) {
                json_object_foreach(v, ok, ov)
                {
                    if (is_filter_op(ok))
                        continue;
                    ag_vpath_push_key(p, ok);
                    ag_verr_add(e, p, "value_error",
                                "Value error, Unsupported filter operator; supported: $eq, $ne, $gt, $gte, $lt, $lte",
                                ov);
                    ag_vpath_pop(p);
                }
            }
        }
        ag_vpath_pop(p);
    }
}

static int64_t int_or(const json_t *obj, const char *name, int64_t dflt)
{
    const json_t *v = ag_v_present(obj, name);
    return v ? json_integer_value(v) : dflt;
}

static const struct store_check search_checks[] = {
    {"namespace_prefix", check_prefix},
    {"filter", check_filter},
    /* query ranks by embeddings; without an embedding index (none yet) it does not, and the items
     * come by namespace and filter with score null, as LangGraph's stores answer without one. */
};

int ag_store_search(struct ag_req *r)
{
    struct ag_verr e = {0};
    json_t *body = parse_body(r, search_fields, AG_ARRAY_LEN(search_fields), search_checks, AG_ARRAY_LEN(search_checks), &e);
    if (refuse(r, body, &e))
        return AG_OK;
    const json_t *refresh = ag_v_present(body, "refresh_ttl");
    bool refresh_ttl = !refresh || json_is_true(refresh);
    struct store_req *x = store_req_new(r, AG_SQL_STORE_SEARCH, 200);
    x->d.q.kind = refresh_ttl ? AG_PG_WRITE : AG_PG_READ;
    const json_t *prefix = json_object_get(body, "namespace_prefix");
    param_range(x, prefix, json_array_size(prefix));
    param(x, r->body.base, r->body.len); /* the filter is read from it in SQL, numbers exactly as sent */
    param_int(x, int_or(body, "limit", SEARCH_LIMIT_DEFAULT));
    param_int(x, int_or(body, "offset", 0));
    param_bool(x, refresh_ttl);
    json_decref(body);
    return ag_dbreq_submit(&x->d);
}

/* --- POST /store/namespaces --- */

static const struct ag_vfield namespaces_fields[] = {
    {.name = "prefix", .kind = AG_V_STRING_ARRAY, .flags = AG_VF_NULLABLE},
    {.name = "suffix", .kind = AG_V_STRING_ARRAY, .flags = AG_VF_NULLABLE},
    {.name = "max_depth", .kind = AG_V_INT, .flags = AG_VF_NULLABLE, .min = 1, .max = INT32_MAX},
    {.name = "limit", .kind = AG_V_INT, .flags = AG_VF_NULLABLE, .min = 1, .max = PAGE_LIMIT_MAX},
    {.name = "offset", .kind = AG_V_INT, .flags = AG_VF_NULLABLE, .min = 0, .max = INT64_MAX},
};

static const struct store_check namespaces_checks[] = {
    {"prefix", check_prefix},
    {"suffix", check_prefix},
};

int ag_store_namespaces(struct ag_req *r)
{
    struct ag_verr e = {0};
    json_t *body = parse_body(r, namespaces_fields, AG_ARRAY_LEN(namespaces_fields), namespaces_checks, AG_ARRAY_LEN(namespaces_checks), &e);
    if (refuse(r, body, &e))
        return AG_OK;
    struct store_req *x = store_req_new(r, AG_SQL_STORE_NAMESPACES, 200);
    const json_t *prefix = ag_v_present(body, "prefix"), *suffix = ag_v_present(body, "suffix");
    size_t fixed = 0; /* leading labels without a wildcard: they bound a primary key range */
    while (fixed < json_array_size(prefix) && strcmp(json_string_value(json_array_get(prefix, fixed)), "*"))
        fixed++;
    param_range(x, prefix, fixed);
    param_labels(x, prefix, json_array_size(prefix), false);
    param_labels(x, suffix, json_array_size(suffix), false);
    const json_t *depth = ag_v_present(body, "max_depth");
    if (depth)
        param_int(x, json_integer_value(depth));
    else
        param(x, NULL, 0);
    param_int(x, int_or(body, "limit", NAMESPACES_LIMIT_DEFAULT));
    param_int(x, int_or(body, "offset", 0));
    json_decref(body);
    return ag_dbreq_submit(&x->d);
}

/* --- the TTL sweeper (shard 0, runtime/sweep.h) --- */

/* Logs a run; true when it deleted a full batch (more are waiting: the next batch goes out next turn). */
static bool swept(const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK) {
        long n = atol(PQcmdTuples(res));
        if (n > 0)
            ag_log(AG_LOG_DEBUG, "msg=\"store items expired\" deleted=%ld", n);
        return n >= SWEEP_BATCH_N;
    }
    if (q->status == AG_PG_SQL_ERROR)
        ag_log(AG_LOG_WARN, "msg=\"store sweep failed\" sqlstate=%.5s error=\"%s\"", q->sqlstate,
               q->error ? q->error : "");
    return false;
}

static const struct ag_sweep_def sweep_def = {
    .stmt = AG_SQL_STORE_SWEEP, .batch = SWEEP_BATCH, .interval_ns = SWEEP_INTERVAL_NS, .done = swept};

static _Thread_local struct ag_sweep sweeper;

void ag_store_shard_start(struct ag_shard *s)
{
    ag_sweep_start(&sweeper, s, &sweep_def);
}

void ag_store_shard_exit(struct ag_shard *s)
{
    ag_sweep_stop(&sweeper, s);
}
