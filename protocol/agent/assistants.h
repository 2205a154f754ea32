/* assistants endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_ASSISTANTS_H
#define AG_PROTOCOL_AGENT_ASSISTANTS_H

#include <stddef.h>

#include <libpq-fe.h>

struct ag_req;
struct ag_shard;

/* The migration seed (persist/migrate.h): inserts or refreshes the built-in assistant of every
 * registered graph. */
int ag_assistants_seed(PGconn *pg, char *err, size_t errlen);

#endif
