/* The migrations compiled into the binary (generated from persist/migrations/NNN_name.sql by
 * cmake/embed_migrations.cmake), in ascending version order. */
#ifndef AG_PERSIST_MIGRATIONS_H
#define AG_PERSIST_MIGRATIONS_H

#include <stddef.h>

struct ag_migration {
    int version;      /* NNN */
    const char *name; /* the file name */
    const char *sql;
};

extern const struct ag_migration ag_migrations[];
extern const size_t ag_migrations_count;

#endif
