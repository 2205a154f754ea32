/* Schema migrations: the numbered SQL files of persist/migrations/, compiled into the binary and
 * applied in order inside one transaction under a Postgres advisory lock, so two agentd processes
 * starting together never both migrate. `schema_version` records what ran.
 *
 * The server runs them from a bootstrap thread (never a shard) that retries with backoff while the
 * database is unreachable; shards open their connections once ag_migrate_ready() is true.
 * `agentd migrate` runs them once in the foreground. */
#ifndef AG_PERSIST_MIGRATE_H
#define AG_PERSIST_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Seeding: rows every running server needs (the built-in assistants), written by the upper layers.
 * Called on the migration connection, inside the migration transaction, after the migrations; it
 * must be idempotent. Returns 0, or -1 after writing the reason to err. */
typedef int (*ag_migrate_seed_fn)(PGconn *pg, char *err, size_t errlen);
/* Installs the seed function (before ag_migrate_start / ag_migrate_run). */
void ag_migrate_set_seed(ag_migrate_seed_fn fn);

/* Applies the pending migrations on the database at conninfo (blocking). Returns 0, or -1 after
 * writing the reason to err (size errlen). */
int ag_migrate_run(const char *conninfo, char *err, size_t errlen);
/* Starts the bootstrap thread for conninfo. */
void ag_migrate_start(const char *conninfo);
/* True once the schema is current (set by the bootstrap thread). */
bool ag_migrate_ready(void);
/* Stops and joins the bootstrap thread (it may still be retrying). */
void ag_migrate_stop(void);
/* The newest migration number compiled in. */
int ag_migrate_latest(void);

#endif
