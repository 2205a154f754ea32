/* Query-string parameters of the resource routes: Pydantic's parsing of booleans and integers, and
 * the 422 problems at ["query", name] when a value does not parse or is out of range. (Iterating
 * and decoding the query string is protocol/urlenc.h.) */
#ifndef AG_PROTOCOL_QUERY_H
#define AG_PROTOCOL_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct ag_iov;
struct ag_verr;

/* The items of one value of a list-valued parameter, as each client writes a list: a JSON array of
 * strings (["a","b"]: the JS SDK 2.x), else comma-separated (a,b: the Python SDK); the JS SDK 1.x
 * repeats the parameter (one item per value). Usage:
 *     struct ag_query_list l;
 *     if (!ag_query_list_init(&l, v)) ...a value that opens a JSON array but is not one of strings...
 *     for (const char *item; (item = ag_query_list_next(&l));) ...
 *     ag_query_list_free(&l);
 * v is modified (comma-separated) and must outlive the iteration. */
struct ag_query_list {
    json_t *arr; /* the JSON array, or NULL */
    size_t i;
    char *rest, *save; /* the comma-separated form (strtok_r) */
};
bool ag_query_list_init(struct ag_query_list *l, char *v);
const char *ag_query_list_next(struct ag_query_list *l);
void ag_query_list_free(struct ag_query_list *l);

/* Pydantic's boolean words, any case: 1 on t true y yes → true, 0 off f false n no → false. Returns
 * false (and leaves *out) when s is none of them. */
bool ag_query_parse_bool(const char *s, bool *out);

/* A decimal integer (an optional '-', then digits only) that fits int64_t → *out. Returns false (and
 * leaves *out) otherwise. */
bool ag_query_parse_int(const char *s, int64_t *out);

/* Records a problem at ["query", name] with input value (NULL: null). */
void ag_query_error(struct ag_verr *e, const char *name, const char *type, const char *msg, const char *value);

/* Query parameter name is not one the route knows: ignored (ag_verr_unknown at ["query", name]). */
void ag_query_unknown(const char *name);

/* Every parameter of the query string is unknown (routes that take their input from the body alone). */
void ag_query_ignore_all(const struct ag_iov *query);

/* s, the value of query parameter name, as a boolean into *out; records bool_parsing otherwise. */
void ag_query_bool(struct ag_verr *e, const char *name, const char *s, bool *out);

/* s, the value of query parameter name, as an integer in [min, max] into *out; records int_parsing,
 * greater_than_equal or less_than_equal otherwise (and leaves *out). */
void ag_query_int(struct ag_verr *e, const char *name, const char *s, int64_t min, int64_t max, int64_t *out);

#endif
