#include "protocol/urlenc.h"

#include <string.h>

#include "core/alloc.h"
#include "core/common.h"

size_t ag_url_decode(char *dst, const char *src, size_t len, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return (size_t)-1;
            int hi = ag_hexval(src[i + 1]), lo = ag_hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return (size_t)-1;
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            dst[o++] = ' ';
        } else {
            dst[o++] = c;
        }
    }
    return o;
}

bool ag_query_next(struct ag_iov *q, struct ag_iov *name, struct ag_iov *value)
{
    while (q->len) {
        char *amp = memchr(q->base, '&', q->len);
        size_t n = amp ? (size_t)(amp - q->base) : q->len;
        struct ag_iov pair = {q->base, n};
        q->base += amp ? n + 1 : n;
        q->len -= amp ? n + 1 : n;
        if (!n)
            continue;
        char *eq = memchr(pair.base, '=', pair.len);
        if (eq) {
            *name = (struct ag_iov){pair.base, (size_t)(eq - pair.base)};
            *value = (struct ag_iov){eq + 1, pair.len - name->len - 1};
        } else {
            *name = pair;
            *value = (struct ag_iov){pair.base + pair.len, 0};
        }
        return true;
    }
    return false;
}

char *ag_query_str(struct ag_iov v)
{
    char *out = ag_malloc(v.len + 1);
    size_t n = ag_url_decode(out, v.base, v.len, true);
    if (n == (size_t)-1 || memchr(out, 0, n)) {
        ag_free(out);
        return NULL;
    }
    out[n] = 0;
    return out;
}
