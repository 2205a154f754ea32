/* Query parameters of the resource routes: the items of a list-valued parameter however a client writes
 * the list (a JSON array, comma-separated, one item). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "protocol/query.h"

/* The items of v, joined with '|' ("!" when the value is refused). */
static const char *items(const char *v)
{
    static char out[256];
    char *copy = ag_strdup(v);
    struct ag_query_list l;
    size_t n = 0;
    out[0] = 0;
    if (!ag_query_list_init(&l, copy)) {
        snprintf(out, sizeof out, "!");
    } else {
        for (const char *it; (it = ag_query_list_next(&l)) && n < sizeof out;)
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "|" : "", it);
        CHECK(ag_query_list_next(&l) == NULL); /* stays at its end */
    }
    ag_query_list_free(&l);
    ag_free(copy);
    return out;
}

int main(void)
{
    CHECK_STREQ(items("run_id"), "run_id");
    CHECK_STREQ(items("run_id,status"), "run_id|status");             /* the Python SDK */
    CHECK_STREQ(items("[\"run_id\",\"status\"]"), "run_id|status");   /* the JS SDK 2.x */
    CHECK_STREQ(items("[\"a,b\"]"), "a,b");                           /* a JSON item keeps its comma */
    CHECK_STREQ(items("[]"), "");
    CHECK_STREQ(items(""), "");
    CHECK_STREQ(items(",a,,b,"), "a|b");
    CHECK_STREQ(items("[1]"), "!");
    CHECK_STREQ(items("[\"a\""), "!");
    CHECK_STREQ(items("[\"a\",null]"), "!");
    return CHECK_DONE();
}
