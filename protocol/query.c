#include "protocol/query.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/common.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

bool ag_query_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "on", "t", "true", "y", "yes"};
    static const char *const no[] = {"0", "off", "f", "false", "n", "no"};
    for (size_t i = 0; i < AG_ARRAY_LEN(yes); i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool ag_query_parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (!*p)
        return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return true;
}

void ag_query_error(struct ag_verr *e, const char *name, const char *type, const char *msg, const char *value)
{
    struct ag_vpath p = {.key = {"query", name}, .n = 2};
    json_t *in = value ? json_string(value) : NULL;
    ag_verr_add(e, &p, type, msg, in);
    json_decref(in);
}

void ag_query_bool(struct ag_verr *e, const char *name, const char *s, bool *out)
{
    if (!ag_query_parse_bool(s, out))
        ag_query_error(e, name, "bool_parsing", "Input should be a valid boolean, unable to interpret input", s);
}

void ag_query_int(struct ag_verr *e, const char *name, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char msg[96];
    int64_t v;
    if (!ag_query_parse_int(s, &v)) {
        ag_query_error(e, name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer",
                       s);
    } else if (v < min) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %" PRId64, min);
        ag_query_error(e, name, "greater_than_equal", msg, s);
    } else if (v > max) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %" PRId64, max);
        ag_query_error(e, name, "less_than_equal", msg, s);
    } else {
        *out = v;
    }
}

void ag_query_unknown(const char *name)
{
    struct ag_vpath p = {.key = {"query", name ? name : "?"}, .n = 2};
    ag_verr_unknown(&p);
}

void ag_query_ignore_all(const struct ag_iov *query)
{
    struct ag_iov q = *query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name);
        ag_query_unknown(n);
        ag_free(n);
    }
}

bool ag_query_list_init(struct ag_query_list *l, char *v)
{
    *l = (struct ag_query_list){.rest = v};
    if (v[0] != '[')
        return true;
    l->arr = json_loads(v, 0, NULL);
    bool ok = json_is_array(l->arr);
    size_t i;
    json_t *x;
    json_array_foreach(l->arr, i, x) ok = ok && json_is_string(x);
    if (!ok) {
        json_decref(l->arr);
        l->arr = NULL;
        l->rest = NULL;
    }
    return ok;
}

const char *ag_query_list_next(struct ag_query_list *l)
{
    if (l->arr)
        return l->i < json_array_size(l->arr) ? json_string_value(json_array_get(l->arr, l->i++)) : NULL;
    if (!l->rest)
        return NULL;
    const char *item = strtok_r(l->save ? NULL : l->rest, ",", &l->save);
    if (!item)
        l->rest = NULL;
    return item;
}

void ag_query_list_free(struct ag_query_list *l)
{
    json_decref(l->arr);
    *l = (struct ag_query_list){0};
}
