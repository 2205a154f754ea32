#include "graph/plugin.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

#include "graph/graph.h"
#include "graph/graph_internal.h"

typedef struct ag_graph_def *(*make_fn)(void);

int ag_graph_plugin_load(const char *graph_id, const char *path, const char *symbol, char *err, size_t errlen)
{
    /* RTLD_NOW: a symbol of graph/graph.h the library needs and this agentd lacks fails here, not in a run. */
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
        return -1;
    }
    const uint32_t *abi = dlsym(lib, AG_GRAPH_PLUGIN_ABI_SYMBOL);
    if (!abi) {
        snprintf(err, errlen,
                 "%s exports no graph ABI version (%s): build it against the installed agentd package "
                 "(CMake target agentd::graph or pkg-config agentd-graph, which define AG_GRAPH_PLUGIN)",
                 path, AG_GRAPH_PLUGIN_ABI_SYMBOL);
        dlclose(lib);
        return -1;
    }
    if (*abi != AG_GRAPH_ABI_VERSION) {
        snprintf(err, errlen, "%s was built for graph ABI version %u; this agentd has version %u: rebuild it", path,
                 (unsigned)*abi, (unsigned)AG_GRAPH_ABI_VERSION);
        dlclose(lib);
        return -1;
    }
    make_fn make;
    *(void **)&make = dlsym(lib, symbol);
    if (!make) {
        snprintf(err, errlen, "%s has no symbol %s", path, symbol);
        dlclose(lib);
        return -1;
    }
    struct ag_graph_def *g = make();
    if (!g) {
        snprintf(err, errlen, "%s:%s returned no graph definition", path, symbol);
        return -1; /* the library stays: its function ran and may have left state behind */
    }
    if (ag_graph__rename(g, graph_id) < 0) {
        snprintf(err, errlen, "%s:%s returned a compiled definition: return it uncompiled (agentd compiles it)", path,
                 symbol);
        ag_graph_def_free(g);
        return -1;
    }
    char why[512];
    if (ag_graph_register(g, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s:%s: %s", path, symbol, why);
        ag_graph_def_free(g);
        return -1;
    }
    return 0;
}
