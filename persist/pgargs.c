#include "persist/pgargs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/jsontext.h"

/* Most statements' parameters (ids, numbers, small JSON) fit one block of this size. */
#define BLOCK_MIN 512

struct ag_pg_args_block {
    struct ag_pg_args_block *next;
    size_t used, cap;
    char data[];
};

static char *reserve(struct ag_pg_args *a, size_t n)
{
    struct ag_pg_args_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = AG_MAX(n, (size_t)BLOCK_MIN);
        b = ag_malloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

const char *ag_pg_args_dup(struct ag_pg_args *a, const char *s, size_t len)
{
    char *p = reserve(a, len + 1);
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *ag_pg_args_alloc(struct ag_pg_args *a, size_t len)
{
    char *p = reserve(a, len + 1);
    p[len] = 0;
    return p;
}

const char *ag_pg_args_printf(struct ag_pg_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    AG_BUG_ON(n < 0);
    char *p = reserve(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

const char *ag_pg_args_json(struct ag_pg_args *a, const json_t *v)
{
    if (!v)
        return NULL;
    /* One encoding (json_dumpb twice would encode a large checkpoint twice), then one copy. */
    size_t n;
    const char *s = ag_json_scratch_text(v, JSON_COMPACT | JSON_ENCODE_ANY, &n);
    AG_BUG_ON(!s);
    return ag_pg_args_dup(a, s, n);
}

const char *ag_pg_args_text_array(struct ag_pg_args *a, const json_t *labels, size_t n, bool bump)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += 2 * json_string_length(json_array_get(labels, i)) + 4;
    char *out = ag_pg_args_alloc(a, len), *w = out;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        const json_t *l = json_array_get(labels, i);
        const char *s = json_string_value(l);
        size_t sl = json_string_length(l);
        if (i) *w++ = ',';
        *w++ = '"';
        for (size_t k = 0; k < sl; k++) {
            if (s[k] == '"' || s[k] == '\\') *w++ = '\\';
            *w++ = s[k];
        }
        if (bump && i + 1 == n) *w++ = '\x01';
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

void ag_pg_args_reset(struct ag_pg_args *a)
{
    while (a->head) {
        struct ag_pg_args_block *b = a->head;
        a->head = b->next;
        ag_free(b);
    }
}
