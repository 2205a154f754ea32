#include "protocol/validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/uuid.h"
#include "protocol/http.h"
#include "protocol/jsonw.h"
#include "protocol/stats.h"

#define MAX_DEPTH 256

static const struct ag_vpath body_path = {.key = {"body"}, .n = 1};

void ag_verr_add(struct ag_verr *e, const struct ag_vpath *p, const char *type, const char *msg, const json_t *input)
{
    char *in = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int nloc = p->n < AG_VPATH_MAX ? p->n : AG_VPATH_MAX;
    size_t tlen = strlen(type) + 1, mlen = strlen(msg) + 1, ilen = in ? strlen(in) + 1 : 0, klen = 0;
    for (int i = 0; i < nloc; i++)
        klen += p->key[i] ? strlen(p->key[i]) + 1 : 0;
    struct ag_vproblem *pr = ag_malloc(sizeof *pr + tlen + mlen + ilen + klen);
    /* Keys and values may belong to a body the caller frees before the problems are rendered. */
    char *t = pr->text;
    pr->type = memcpy(t, type, tlen);
    t += tlen;
    pr->msg = memcpy(t, msg, mlen);
    t += mlen;
    pr->input = in ? memcpy(t, in, ilen) : NULL;
    t += ilen;
    ag_free(in);
    pr->nloc = nloc;
    for (int i = 0; i < nloc; i++) {
        pr->loc[i].index = p->index[i];
        pr->loc[i].key = NULL;
        if (p->key[i]) {
            size_t n = strlen(p->key[i]) + 1;
            pr->loc[i].key = memcpy(t, p->key[i], n);
            t += n;
        }
    }
    if (e->count == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->items = ag_realloc(e->items, e->cap * sizeof *e->items);
    }
    e->items[e->count++] = pr;
}

void ag_verr_add_key(struct ag_verr *e, struct ag_vpath *p, const char *key, const char *type, const char *msg,
                     const json_t *input)
{
    ag_vpath_push_key(p, key);
    ag_verr_add(e, p, type, msg, input);
    ag_vpath_pop(p);
}

void ag_verr_free(struct ag_verr *e)
{
    for (unsigned i = 0; i < e->count; i++)
        ag_free(e->items[i]);
    ag_free(e->items);
    memset(e, 0, sizeof *e);
}

void ag_verr_render(const struct ag_verr *e, struct ag_buf *out)
{
    ag_buf_puts(out, "{\"detail\":[");
    for (unsigned i = 0; i < e->count; i++) {
        const struct ag_vproblem *pr = e->items[i];
        if (i)
            ag_buf_append(out, ",", 1);
        struct ag_jw w;
        ag_jw_init(&w, out);
        ag_jw_obj(&w);
        ag_jw_key(&w, "type");
        ag_jw_str(&w, pr->type);
        ag_jw_key(&w, "loc");
        ag_jw_arr(&w);
        for (int k = 0; k < pr->nloc; k++) {
            if (pr->loc[k].key)
                ag_jw_str(&w, pr->loc[k].key);
            else
                ag_jw_int(&w, pr->loc[k].index);
        }
        ag_jw_end(&w);
        ag_jw_key(&w, "msg");
        ag_jw_str(&w, pr->msg);
        ag_jw_key(&w, "input");
        if (pr->input)
            ag_jw_raw(&w, pr->input, strlen(pr->input));
        else
            ag_jw_null(&w);
        ag_jw_end(&w);
    }
    ag_buf_puts(out, "]}");
}

static const char *kind_type(enum ag_vkind k)
{
    switch (k) {
    case AG_V_STRING: return "string_type";
    case AG_V_INT: return "int_type";
    case AG_V_NUMBER: return "float_type";
    case AG_V_BOOL: return "bool_type";
    case AG_V_OBJECT: return "dict_type";
    case AG_V_ARRAY:
    case AG_V_STRING_ARRAY: return "list_type";
    default: return "value_error";
    }
}

static const char *kind_msg(enum ag_vkind k)
{
    switch (k) {
    case AG_V_STRING: return "Input should be a valid string";
    case AG_V_INT: return "Input should be a valid integer";
    case AG_V_NUMBER: return "Input should be a valid number";
    case AG_V_BOOL: return "Input should be a valid boolean";
    case AG_V_OBJECT: return "Input should be a valid dictionary";
    case AG_V_ARRAY:
    case AG_V_STRING_ARRAY: return "Input should be a valid list";
    default: return "Invalid value";
    }
}

size_t ag_utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            c++;
    return c;
}

static unsigned check_field(const json_t *v, const struct ag_vfield *f, struct ag_vpath *p, struct ag_verr *e)
{
    char msg[512];
    if (json_is_null(v) && (f->flags & AG_VF_NULLABLE))
        return 0;
    switch (f->kind) {
    case AG_V_ANY: return 0;
    case AG_V_STRING:
        if (!json_is_string(v))
            break;
        if (f->max && ag_utf8_chars(json_string_value(v), json_string_length(v)) > (size_t)f->max) {
            snprintf(msg, sizeof msg, "String should have at most %" PRId64 " characters", f->max);
            ag_verr_add(e, p, "string_too_long", msg, v);
            return 1;
        }
        return 0;
    case AG_V_INT:
        if (!json_is_integer(v))
            break;
        if (json_integer_value(v) < f->min) {
            snprintf(msg, sizeof msg, "Input should be greater than or equal to %" PRId64, f->min);
            ag_verr_add(e, p, "greater_than_equal", msg, v);
            return 1;
        }
        if (json_integer_value(v) > f->max) {
            snprintf(msg, sizeof msg, "Input should be less than or equal to %" PRId64, f->max);
            ag_verr_add(e, p, "less_than_equal", msg, v);
            return 1;
        }
        return 0;
    case AG_V_NUMBER:
        if (json_is_number(v))
            return 0;
        break;
    case AG_V_BOOL:
        if (json_is_boolean(v))
            return 0;
        break;
    case AG_V_OBJECT:
        if (json_is_object(v))
            return 0;
        break;
    case AG_V_ARRAY:
        if (json_is_array(v))
            return 0;
        break;
    case AG_V_STRING_ARRAY: {
        if (!json_is_array(v))
            break;
        unsigned bad = 0;
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            if (json_is_string(it))
                continue;
            ag_vpath_push_index(p, (int64_t)i);
            ag_verr_add(e, p, "string_type", "Input should be a valid string", it);
            ag_vpath_pop(p);
            bad++;
        }
        return bad;
    }
    case AG_V_ENUM: {
        if (json_is_string(v))
            for (const char *const *c = f->choices; *c; c++)
                if (!strcmp(*c, json_string_value(v)))
                    return 0;
        size_t n = 0, count = 0;
        for (const char *const *c = f->choices; *c; c++)
            count++;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "Input should be ");
        for (size_t i = 0; i < count && n < sizeof msg; i++)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s'%s'", i == 0 ? "" : (i + 1 == count ? " or " : ", "),
                                  f->choices[i]);
        ag_verr_add(e, p, "literal_error", msg, v);
        return 1;
    }
    }
    ag_verr_add(e, p, kind_type(f->kind), kind_msg(f->kind), v);
    return 1;
}

unsigned ag_validate_object(const json_t *obj, const struct ag_vfield *fields, size_t n, bool allow_extra,
                            struct ag_vpath *p, struct ag_verr *e)
{
    if (!json_is_object(obj)) {
        ag_verr_add(e, p, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from",
                    obj);
        return 1;
    }
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ag_vfield *f = &fields[i];
        json_t *v = json_object_get(obj, f->name);
        ag_vpath_push_key(p, f->name);
        if (!v) {
            if (f->flags & AG_VF_REQUIRED) {
                ag_verr_add(e, p, "missing", "Field required", obj);
                bad++;
            }
        } else {
            bad += check_field(v, f, p, e);
        }
        ag_vpath_pop(p);
    }
    if (!allow_extra) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)obj, k, v)
        {
            bool known = false;
            for (size_t i = 0; i < n && !known; i++)
                known = !strcmp(fields[i].name, k);
            if (known)
                continue;
            ag_vpath_push_key(p, k);
            ag_verr_unknown(p);
            ag_vpath_pop(p);
        }
    }
    return bad;
}

void ag_verr_unknown(const struct ag_vpath *p)
{
    struct ag_shard *s = ag_shard_self();
    if (s)
        ag_stat_add(&s->stats, AG_STAT_UNKNOWN_FIELDS, 1);
    if (!ag_log_enabled(AG_LOG_DEBUG))
        return;
    char path[256];
    size_t n = 0;
    path[0] = 0;
    for (int i = 0; i < p->n && i < AG_VPATH_MAX && n < sizeof path; i++)
        n += p->key[i] ? (size_t)snprintf(path + n, sizeof path - n, "%s%.64s", i ? "." : "", p->key[i])
                       : (size_t)snprintf(path + n, sizeof path - n, "[%" PRId64 "]", p->index[i]);
    for (char *c = path; *c; c++) /* a client's key: nothing that would break the log line */
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    ag_log(AG_LOG_DEBUG, "msg=\"unknown field ignored\" field=\"%s\"", path);
}

/* Deepest bracket nesting of JSON text, ignoring brackets inside strings. */
static int nesting(const char *s, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max)
                max = depth;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return max;
}

json_t *ag_req_json(struct ag_req *r, struct ag_verr *e)
{
    if (!r->body.len) {
        ag_verr_add(e, &body_path, "missing", "Field required", NULL);
        return NULL;
    }
    struct ag_vpath p = body_path;
    if (nesting(r->body.base, r->body.len) > MAX_DEPTH) {
        ag_vpath_push_index(&p, 0);
        ag_verr_add(e, &p, "json_invalid", "JSON decode error: nesting deeper than 256 levels", NULL);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(r->body.base, r->body.len, JSON_DECODE_ANY, &je);
    if (!v) {
        char msg[256];
        snprintf(msg, sizeof msg, "JSON decode error: %s", je.text);
        ag_vpath_push_index(&p, je.position);
        ag_verr_add(e, &p, "json_invalid", msg, NULL);
    }
    return v;
}

void ag_http_validation_error(struct ag_req *r, const struct ag_verr *e)
{
    struct ag_buf b = {0};
    ag_verr_render(e, &b);
    ag_http_json(r, 422, b.base, b.len);
    ag_buf_free(&b);
}

bool ag_http_validation_refuse(struct ag_req *r, struct ag_verr *e)
{
    if (!e->count)
        return false;
    ag_http_validation_error(r, e);
    ag_verr_free(e);
    return true;
}

bool ag_req_uuid_param(struct ag_req *r, const char *name, char out[37])
{
    char *raw = ag_req_param_str(r, name);
    if (raw && ag_uuid_canon(raw, strlen(raw), out)) {
        ag_free(raw);
        return true;
    }
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"path", name}, .n = 2};
    json_t *in = raw ? json_string(raw) : NULL;
    ag_verr_add(&e, &p, "uuid_parsing", "Input should be a valid UUID", in);
    json_decref(in);
    ag_free(raw);
    ag_http_validation_error(r, &e);
    ag_verr_free(&e);
    return false;
}
