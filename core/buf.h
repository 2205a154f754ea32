/* A growable byte buffer (input accumulation, building bodies). Memory comes from core/alloc. */
#ifndef AG_CORE_BUF_H
#define AG_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct ag_buf {
    char *base; /* NULL until the first reserve */
    size_t len;
    size_t cap;
};

/* Makes room for n more bytes and returns where they go; commit them with ag_buf_commit. */
char *ag_buf_reserve(struct ag_buf *b, size_t n);
static inline void ag_buf_commit(struct ag_buf *b, size_t n)
{
    b->len += n;
}
/* Appends n bytes. */
void ag_buf_append(struct ag_buf *b, const void *p, size_t n);
static inline void ag_buf_puts(struct ag_buf *b, const char *s)
{
    ag_buf_append(b, s, strlen(s));
}
/* Appends printf-formatted text. */
void ag_buf_printf(struct ag_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ag_buf_vprintf(struct ag_buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes, moving the rest to the front. */
void ag_buf_consume(struct ag_buf *b, size_t n);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void ag_buf_free(struct ag_buf *b);

#endif
