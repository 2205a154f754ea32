/* JSON text of jansson values without jansson's growing buffer: json_dumps starts a buffer at 16
 * bytes and doubles it, so a 2 kB value costs eight allocations. These encode into a scratch buffer
 * of the calling thread (kept between calls, up to AG_JSON_SCRATCH_KEEP) and hand out the text with
 * one allocation, or append it to the caller's buffer with none of their own. Output is byte for byte
 * json_dumps' with the same flags. */
#ifndef AG_CORE_JSONTEXT_H
#define AG_CORE_JSONTEXT_H

#include <jansson.h>
#include <stddef.h>

struct ag_buf;

/* What the scratch buffer keeps between calls; beyond, it is freed after use. */
#define AG_JSON_SCRATCH_KEEP (256u << 10)

/* v as text (NUL-terminated, freed with ag_free), its length in *len when len is not NULL; NULL when
 * v cannot be encoded (as json_dumps: a non-container without JSON_ENCODE_ANY, NULL v). */
char *ag_json_text(const json_t *v, size_t flags, size_t *len);
/* The same in the scratch buffer itself, for a caller that copies it at once: valid until the thread's
 * next call here; not NUL-terminated; NULL when v cannot be encoded. */
const char *ag_json_scratch_text(const json_t *v, size_t flags, size_t *len);
/* Appends v's text to b; returns its length, or -1 (b unchanged) when v cannot be encoded. */
long ag_json_append(struct ag_buf *b, const json_t *v, size_t flags);
/* Appends s[0..n) as a JSON string (quoted, escaped as json_dumps escapes it); returns its length, or
 * -1 (b unchanged) when s is not valid UTF-8. */
long ag_json_append_str(struct ag_buf *b, const char *s, size_t n);
/* Frees the calling thread's scratch buffer (at thread exit). */
void ag_json_scratch_free(void);

#endif
