#include "graph/registry.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "graph/builtin.h"
#include "graph/graph.h"

/* --- the table --- */

static const struct ag_graph_def **table;
static size_t ntable;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static int add(struct ag_graph_def *g, char *err, size_t errlen)
{
    if (ag_graph_def_compile(g, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < ntable; i++)
        if (!strcmp(ag_graph_def_id(table[i]), ag_graph_def_id(g))) {
            snprintf(err, errlen, "graph %s is registered twice", ag_graph_def_id(g));
            return -1;
        }
    table = ag_realloc(table, (ntable + 1) * sizeof *table);
    table[ntable++] = g;
    return 0;
}

static void register_builtins(void)
{
    struct ag_graph_def *(*const make[])(void) = {ag_graph_builtin_echo, ag_graph_builtin_stress,
                                                  ag_graph_builtin_interrupt};
    char err[256];
    for (size_t i = 0; i < AG_ARRAY_LEN(make); i++) {
        struct ag_graph_def *g = make[i]();
        if (add(g, err, sizeof err) < 0) {
            fprintf(stderr, "agentd: built-in graph: %s\n", err);
            abort();
        }
    }
}

int ag_graph_register(struct ag_graph_def *g, char *err, size_t errlen)
{
    pthread_once(&builtins_once, register_builtins);
    return add(g, err, errlen);
}

/* --- lookup --- */

size_t ag_graph_count(void)
{
    pthread_once(&builtins_once, register_builtins);
    return ntable;
}

const struct ag_graph_info *ag_graph_at(size_t i)
{
    pthread_once(&builtins_once, register_builtins);
    return i < ntable ? ag_graph_def_info(table[i]) : NULL;
}

const struct ag_graph_info *ag_graph_find_n(const char *id, size_t len)
{
    pthread_once(&builtins_once, register_builtins);
    for (size_t i = 0; i < ntable; i++) {
        const char *gid = ag_graph_def_id(table[i]);
        if (strlen(gid) == len && !memcmp(gid, id, len))
            return ag_graph_def_info(table[i]);
    }
    return NULL;
}

const struct ag_graph_info *ag_graph_find(const char *graph_id)
{
    return ag_graph_find_n(graph_id, strlen(graph_id));
}

const struct ag_graph_def *ag_graph_def_find(const char *graph_id)
{
    const struct ag_graph_info *g = ag_graph_find(graph_id);
    return g ? g->def : NULL;
}

const char *ag_graph_resolve_assistant(const char *id)
{
    const struct ag_graph_info *g = ag_graph_find(id);
    return g ? g->assistant_id : id;
}
