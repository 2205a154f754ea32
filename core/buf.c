#include "core/buf.h"

#include <stdio.h>

#include "core/alloc.h"

char *ag_buf_reserve(struct ag_buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->base = ag_realloc(b->base, cap);
        b->cap = cap;
    }
    return b->base + b->len;
}

void ag_buf_append(struct ag_buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    memcpy(ag_buf_reserve(b, n), p, n);
    b->len += n;
}

void ag_buf_vprintf(struct ag_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char *dst = ag_buf_reserve(b, 128);
    int n = vsnprintf(dst, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        dst = ag_buf_reserve(b, (size_t)n + 1);
        n = vsnprintf(dst, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    if (n > 0)
        b->len += (size_t)n;
}

void ag_buf_printf(struct ag_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ag_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void ag_buf_consume(struct ag_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

void ag_buf_free(struct ag_buf *b)
{
    ag_free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
