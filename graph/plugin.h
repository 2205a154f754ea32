/* Graph plugins: a shared library that builds a graph through graph/graph.h, loaded with dlopen at
 * start-up (a langgraph.json entry "<path>.so:<symbol>", server/graphs_file.h).
 *
 * The library must export the ABI version it was built for (AG_GRAPH_PLUGIN_ABI_SYMBOL, defined by
 * graph/graph.h when AG_GRAPH_PLUGIN is) equal to this agentd's AG_GRAPH_ABI_VERSION, and the function
 * `struct ag_graph_def *<symbol>(void)` returning an uncompiled definition. Libraries stay loaded for
 * the life of the process. Main thread, before the shards start. */
#ifndef AG_GRAPH_PLUGIN_H
#define AG_GRAPH_PLUGIN_H

#include <stddef.h>

/* Loads the library at path, checks its ABI version, calls symbol and registers the definition it
 * returns as graph_id (its own id is replaced). Returns 0, or -1 with err saying what failed (the file,
 * the version, the symbol, the definition, a duplicate id) and naming path and symbol. */
int ag_graph_plugin_load(const char *graph_id, const char *path, const char *symbol, char *err, size_t errlen);

#endif
