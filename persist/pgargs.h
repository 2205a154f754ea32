/* Parameter text of a statement: the strings a query's params[] point at, bump-allocated from one
 * small arena per query instead of one allocation per parameter, and freed together once the
 * statement's callback has run (or it was never submitted). Pointers stay valid until ag_pg_args_reset:
 * blocks never move. Shard-local, like the query that owns it. */
#ifndef AG_PERSIST_PGARGS_H
#define AG_PERSIST_PGARGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ag_pg_args_block;

/* Zero-initialised it is empty and owns nothing. */
struct ag_pg_args {
    struct ag_pg_args_block *head; /* newest block first */
};

/* s[0..len) copied into a's arena with a terminating NUL; never NULL (allocation failure aborts). */
const char *ag_pg_args_dup(struct ag_pg_args *a, const char *s, size_t len);
/* Room for len bytes and a terminating NUL in a's arena, for the caller to write; never NULL. */
char *ag_pg_args_alloc(struct ag_pg_args *a, size_t len);
/* The formatted text, in a's arena. */
const char *ag_pg_args_printf(struct ag_pg_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v (any JSON value) as compact text in a's arena; NULL for a NULL v (SQL NULL). */
const char *ag_pg_args_json(struct ag_pg_args *a, const json_t *v);
/* The Postgres text[] literal of the first n labels (JSON strings) in a's arena, each double-quoted and
 * escaped, with chr(1) appended to the last one when bump (the exclusive end of a prefix range: the
 * store's namespaces, persist/sql_store.def). */
const char *ag_pg_args_text_array(struct ag_pg_args *a, const json_t *labels, size_t n, bool bump);
/* Frees every string of a; a is empty again and may be reused. */
void ag_pg_args_reset(struct ag_pg_args *a);

#endif
