/* The graphs a user serves: a LangGraph CLI config file (langgraph.json) named by --graphs, the config
 * key graphs_file or AGENTD_GRAPHS.
 *
 * Read: "graphs", an object mapping each graph id to "<path>:<symbol>" (or {"path": "<path>:<symbol>"}),
 * paths relative to the file; "env", an object of variables or the path of a .env file (KEY=VALUE
 * lines, '#' comments, optional `export ` and quotes), applied to the process environment (over what
 * is set) before any graph loads, as the LangGraph CLI applies it. Every other key is ignored. A path
 * ending in .so is a graph plugin (graph/plugin.h); other kinds are refused for now.
 * Main thread, before the server starts (its system assistants are seeded from the registry). */
#ifndef AG_SERVER_GRAPHS_FILE_H
#define AG_SERVER_GRAPHS_FILE_H

#include <stddef.h>

/* Loads every graph of the file at path. Returns 0, or -1 with err naming the file, the entry and
 * what is wrong with it (nothing loaded after the first bad entry; agentd then exits 2). */
int ag_graphs_file_load(const char *path, char *err, size_t errlen);

#endif
