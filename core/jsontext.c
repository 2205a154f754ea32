#include "core/jsontext.h"

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

static _Thread_local struct ag_buf scratch;

static int put(const char *p, size_t n, void *ud)
{
    ag_buf_append(ud, p, n);
    return 0;
}

long ag_json_append(struct ag_buf *b, const json_t *v, size_t flags)
{
    size_t before = b->len;
    if (!v || json_dump_callback(v, put, b, flags) != 0) {
        b->len = before;
        return -1;
    }
    return (long)(b->len - before);
}

const char *ag_json_scratch_text(const json_t *v, size_t flags, size_t *len)
{
    if (scratch.cap > AG_JSON_SCRATCH_KEEP) /* what the last call left, too large to keep */
        ag_buf_free(&scratch);
    scratch.len = 0;
    long n = ag_json_append(&scratch, v, flags);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return n ? scratch.base : "";
}

char *ag_json_text(const json_t *v, size_t flags, size_t *len)
{
    size_t n;
    const char *t = ag_json_scratch_text(v, flags, &n);
    if (!t)
        return NULL;
    char *s = ag_malloc(n + 1);
    memcpy(s, t, n);
    s[n] = 0;
    if (len)
        *len = n;
    return s;
}

void ag_json_scratch_free(void)
{
    ag_buf_free(&scratch);
}
