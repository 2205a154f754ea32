#include "core/jsontext.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

static _Thread_local struct ag_buf scratch;

/* --- the encoder ---
 *
 * jansson's own (json_dump_callback) prints the address of every object and array it enters into a
 * hashtable of parents (its loop check): an allocation, a free and an snprintf per container, and one
 * more allocation per call for the table. This one walks containers itself and writes the same bytes
 * for the flags agentd uses (JSON_COMPACT or not, JSON_ENCODE_ANY, JSON_REAL_PRECISION); any other flag
 * goes to jansson. A string that is not valid UTF-8 fails as with jansson; reals are printed by
 * jansson (rare in what agentd encodes). */

/* Deeper than this fails (jansson's parser stops at 2048; values built in code stay far below). */
#define MAX_DEPTH 4096
#define OWN_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(31))

static int put(const char *p, size_t n, void *ud)
{
    ag_buf_append(ud, p, n);
    return 0;
}

/* The length of the UTF-8 sequence at s (at most n bytes) as jansson accepts it, or 0: invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4) return 0; /* a continuation byte, an overlong 2-byte lead, beyond U+10FFFF */
    if (c < 0xE0)
        len = 2, cp = c & 0x1F;
    else if (c < 0xF0)
        len = 3, cp = c & 0x0F;
    else
        len = 4, cp = c & 0x07;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int put_string(struct ag_buf *b, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
    ag_buf_append(b, "\"", 1);
    while (s < end) {
        unsigned char c = *s;
        if (c >= 0x20 && c != '"' && c != '\\') {
            size_t n = c < 0x80 ? 1 : utf8_len(s, (size_t)(end - s));
            if (!n) return -1;
            s += n;
            continue;
        }
        ag_buf_append(b, run, (size_t)(s - run));
        char seq[8];
        const char *text = seq;
        size_t tl = 2;
        switch (c) {
        case '\\':
            text = "\\\\";
            break;
        case '"':
            text = "\\\"";
            break;
        case '\b':
            text = "\\b";
            break;
        case '\f':
            text = "\\f";
            break;
        case '\n':
            text = "\\n";
            break;
        case '\r':
            text = "\\r";
            break;
        case '\t':
            text = "\\t";
            break;
        default:
            snprintf(seq, sizeof seq, "\\u%04X", c);
            tl = 6;
        }
        ag_buf_append(b, text, tl);
        run = ++s;
    }
    ag_buf_append(b, run, (size_t)(s - run));
    ag_buf_append(b, "\"", 1);
    return 0;
}

long ag_json_append_str(struct ag_buf *b, const char *s, size_t n)
{
    size_t before = b->len;
    if (put_string(b, s, n)) {
        b->len = before;
        return -1;
    }
    return (long)(b->len - before);
}

static int put_value(struct ag_buf *b, const json_t *v, size_t flags, int depth)
{
    bool compact = flags & JSON_COMPACT;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= MAX_DEPTH) return -1;
        ag_buf_append(b, "{", 1);
        for (void *it = json_object_iter((json_t *)v); it;) {
            if (put_string(b, json_object_iter_key(it), json_object_iter_key_len(it))) return -1;
            ag_buf_append(b, ": ", compact ? 1 : 2);
            if (put_value(b, json_object_iter_value(it), flags, depth + 1)) return -1;
            it = json_object_iter_next((json_t *)v, it);
            if (it) ag_buf_append(b, ", ", compact ? 1 : 2);
        }
        ag_buf_append(b, "}", 1);
        return 0;
    }
    case JSON_ARRAY: {
        if (depth >= MAX_DEPTH) return -1;
        ag_buf_append(b, "[", 1);
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i) ag_buf_append(b, ", ", compact ? 1 : 2);
            if (put_value(b, json_array_get(v, i), flags, depth + 1)) return -1;
        }
        ag_buf_append(b, "]", 1);
        return 0;
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        ag_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_REAL:
        return json_dump_callback(v, put, b, flags | JSON_ENCODE_ANY);
    case JSON_TRUE:
        ag_buf_append(b, "true", 4);
        return 0;
    case JSON_FALSE:
        ag_buf_append(b, "false", 5);
        return 0;
    case JSON_NULL:
        ag_buf_append(b, "null", 4);
        return 0;
    }
    return -1;
}

long ag_json_append(struct ag_buf *b, const json_t *v, size_t flags)
{
    size_t before = b->len;
    int rc;
    if (!v)
        rc = -1;
    else if (flags & ~(size_t)OWN_FLAGS)
        rc = json_dump_callback(v, put, b, flags);
    else if (!(flags & JSON_ENCODE_ANY) && !json_is_object(v) && !json_is_array(v))
        rc = -1;
    else
        rc = put_value(b, v, flags, 0);
    if (rc != 0) {
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
