#include "protocol/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

static void before_value(struct ag_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        ag_buf_append(w->out, ",", 1);
    w->need_comma[w->depth] = true;
}

void ag_jw_obj(struct ag_jw *w)
{
    before_value(w);
    ag_buf_append(w->out, "{", 1);
    AG_BUG_ON(w->depth + 1 >= AG_JW_MAX_DEPTH);
    w->need_comma[++w->depth] = false;
    w->closer[w->depth] = '}';
}

void ag_jw_arr(struct ag_jw *w)
{
    before_value(w);
    ag_buf_append(w->out, "[", 1);
    AG_BUG_ON(w->depth + 1 >= AG_JW_MAX_DEPTH);
    w->need_comma[++w->depth] = false;
    w->closer[w->depth] = ']';
}

void ag_jw_end(struct ag_jw *w)
{
    AG_BUG_ON(w->depth == 0);
    ag_buf_append(w->out, &w->closer[w->depth], 1);
    w->depth--;
}

void ag_jw_key(struct ag_jw *w, const char *k)
{
    before_value(w);
    ag_buf_append(w->out, "\"", 1);
    ag_json_escape(w->out, k, strlen(k));
    ag_buf_append(w->out, "\":", 2);
    w->after_key = true;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

void ag_json_escape(struct ag_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80) {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
            /* Not UTF-8 (raw client bytes quoted in an error message): U+FFFD keeps the output JSON. */
            ag_buf_append(out, s + start, i - start);
            ag_buf_append(out, "\\ufffd", 6);
            start = i + 1;
            continue;
        }
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        ag_buf_append(out, s + start, i - start);
        start = i + 1;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        }
        ag_buf_append(out, esc, elen);
    }
    ag_buf_append(out, s + start, n - start);
}

void ag_utf8_clean(struct ag_buf *out, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x80)
            continue;
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len) {
            i += len - 1;
            continue;
        }
        ag_buf_append(out, s + start, i - start);
        ag_buf_append(out, "\xef\xbf\xbd", 3);
        start = i + 1;
    }
    ag_buf_append(out, s + start, n - start);
}

void ag_jw_strn(struct ag_jw *w, const char *s, size_t n)
{
    before_value(w);
    ag_buf_append(w->out, "\"", 1);
    ag_json_escape(w->out, s, n);
    ag_buf_append(w->out, "\"", 1);
}

void ag_jw_str(struct ag_jw *w, const char *s)
{
    ag_jw_strn(w, s, strlen(s));
}

void ag_jw_int(struct ag_jw *w, int64_t v)
{
    before_value(w);
    ag_buf_printf(w->out, "%" PRId64, v);
}

void ag_jw_uint(struct ag_jw *w, uint64_t v)
{
    before_value(w);
    ag_buf_printf(w->out, "%" PRIu64, v);
}

void ag_jw_bool(struct ag_jw *w, bool v)
{
    before_value(w);
    if (v)
        ag_buf_append(w->out, "true", 4);
    else
        ag_buf_append(w->out, "false", 5);
}

void ag_jw_null(struct ag_jw *w)
{
    before_value(w);
    ag_buf_append(w->out, "null", 4);
}

void ag_jw_raw(struct ag_jw *w, const char *json, size_t n)
{
    before_value(w);
    ag_buf_append(w->out, json, n);
}
