/* The route table (protocol/routes.def): method + path pattern with {params} → handler.
 * AG_TROUTE marks a thread-scoped route: its pattern has a {thread_id} parameter and the handler runs
 * on that thread's owner shard (runtime/owner.h); the HTTP layer forwards the request there.
 * Matching is by path segments; a path that matches some pattern with another method is a 405. */
#ifndef AG_PROTOCOL_ROUTER_H
#define AG_PROTOCOL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

#define AG_ROUTE_MAX_PARAMS 4

struct ag_req;
/* A route handler: answers synchronously and returns AG_OK, or returns AG_AGAIN and answers later. */
typedef int (*ag_handler_fn)(struct ag_req *req);

struct ag_route {
    int method; /* llhttp method number */
    const char *pattern;
    ag_handler_fn fn;
    const char *name;   /* the pattern, for logs and metrics */
    bool thread_scoped; /* runs on the owner shard of its {thread_id} parameter (AG_TROUTE) */
};

struct ag_route_match {
    const struct ag_route *route;
    struct ag_iov params[AG_ROUTE_MAX_PARAMS]; /* spans into the matched path, in pattern order */
    const char *param_names[AG_ROUTE_MAX_PARAMS];
    int nparams;
    char allow[96]; /* on 405: the methods the path accepts, "GET, POST" */
};

/* Compiles the table; aborts on a malformed pattern (a bug). Call once at start-up. */
void ag_router_init(void);
/* Matches method and path[0..len) (no query). Returns 200 (m->route set), 404 or 405 (m->allow set). */
int ag_router_match(int method, const char *path, size_t len, struct ag_route_match *m);

#endif
