/* A streaming JSON writer into an ag_buf: commas and escaping handled, no intermediate tree.
 * Usage: ag_jw_obj(w); ag_jw_key(w, "ok"); ag_jw_bool(w, true); ag_jw_end(w); */
#ifndef AG_PROTOCOL_JSONW_H
#define AG_PROTOCOL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define AG_JW_MAX_DEPTH 64

struct ag_jw {
    struct ag_buf *out;
    int depth;
    bool need_comma[AG_JW_MAX_DEPTH];
    char closer[AG_JW_MAX_DEPTH];
    bool after_key;
};

static inline void ag_jw_init(struct ag_jw *w, struct ag_buf *out)
{
    w->out = out;
    w->depth = 0;
    w->need_comma[0] = false;
    w->after_key = false;
}
void ag_jw_obj(struct ag_jw *w);
void ag_jw_arr(struct ag_jw *w);
/* Closes the innermost object or array. */
void ag_jw_end(struct ag_jw *w);
/* An object key (escaped). */
void ag_jw_key(struct ag_jw *w, const char *k);
void ag_jw_str(struct ag_jw *w, const char *s);
void ag_jw_strn(struct ag_jw *w, const char *s, size_t n);
void ag_jw_int(struct ag_jw *w, int64_t v);
void ag_jw_uint(struct ag_jw *w, uint64_t v);
void ag_jw_bool(struct ag_jw *w, bool v);
void ag_jw_null(struct ag_jw *w);
/* Already-encoded JSON text inserted as one value. */
void ag_jw_raw(struct ag_jw *w, const char *json, size_t n);
/* Appends s escaped as the inside of a JSON string (no quotes) to out. Bytes that are not well-formed
 * UTF-8 become U+FFFD, so the output is always valid JSON whatever s holds. */
void ag_json_escape(struct ag_buf *out, const char *s, size_t n);
/* Appends s[0..n) to out as is, except that bytes which are not well-formed UTF-8 become U+FFFD: the
 * text a JSON reader gets back from what ag_json_escape wrote. */
void ag_utf8_clean(struct ag_buf *out, const char *s, size_t n);

#endif
