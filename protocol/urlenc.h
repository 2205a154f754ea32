/* URL decoding: percent-escapes in paths and query strings, and query-string iteration. */
#ifndef AG_PROTOCOL_URLENC_H
#define AG_PROTOCOL_URLENC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

/* Decodes src[0..len) into dst (room for len bytes; may be src itself). %XX escapes become bytes and,
 * with plus_space (query strings), '+' becomes ' '. Returns the decoded length, or (size_t)-1 for a
 * malformed escape. The result may contain NUL bytes and is not NUL-terminated. */
size_t ag_url_decode(char *dst, const char *src, size_t len, bool plus_space);

/* Iterates "a=1&b=2" pairs: each call takes the next pair off the front of *q and returns true with
 * its raw (still encoded) name and value (empty when there is no '='); false when *q is empty.
 * Empty pairs ("a=1&&b") are skipped. */
bool ag_query_next(struct ag_iov *q, struct ag_iov *name, struct ag_iov *value);

/* Decodes a query name or value into a new NUL-terminated string (ag_free it), or NULL when it is
 * badly encoded or contains a NUL byte. */
char *ag_query_str(struct ag_iov v);

#endif
