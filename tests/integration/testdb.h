/* A throwaway database for a C integration test, on the server DATABASE_URL names: created empty at the
 * start, dropped at the end, so that nothing else touches its rows. Blocking libpq, for the test's main
 * thread before and after its shards run (never on a shard). */
#ifndef AG_TESTS_TESTDB_H
#define AG_TESTS_TESTDB_H

/* CREATE DATABASE name on the server at base (a libpq connection string); returns base's connection
 * parameters with dbname set to name (a key='value' string, freed with ag_free), or NULL after saying
 * why on stderr (nothing is left behind). */
char *testdb_create(const char *base, const char *name);
/* DROP DATABASE IF EXISTS name WITH (FORCE); 0, or -1 after saying why on stderr. */
int testdb_drop(const char *base, const char *name);

#endif
