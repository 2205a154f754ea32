#include "testdb.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/alloc.h"

/* base's connection parameters with dbname replaced (a key='value' string, to free), or NULL. */
static char *conninfo_with_db(const char *base, const char *dbname)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &perr);
    if (!opts) {
        fprintf(stderr, "testdb: DATABASE_URL does not parse: %s\n", perr ? perr : "?");
        PQfreemem(perr);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *out = ag_malloc(cap);
    out[0] = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = !strcmp(o->keyword, "dbname") ? dbname : o->val;
        if (!v)
            continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s='", n ? " " : "", o->keyword);
        for (const char *p = v; *p && n + 4 < cap; p++) {
            if (*p == '\'' || *p == '\\')
                out[n++] = '\\';
            out[n++] = *p;
        }
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "'");
    }
    PQconninfoFree(opts);
    if (n >= cap - 1) {
        fprintf(stderr, "testdb: DATABASE_URL is too long\n");
        ag_free(out);
        return NULL;
    }
    return out;
}

/* sql_fmt with name, run on the server at base; 0 or -1 (said on stderr). */
static int admin(const char *base, const char *sql_fmt, const char *name)
{
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "testdb: cannot connect to DATABASE_URL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    char sql[200];
    snprintf(sql, sizeof sql, sql_fmt, name);
    PGresult *res = PQexec(c, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "testdb: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
    return rc;
}

char *testdb_create(const char *base, const char *name)
{
    if (admin(base, "CREATE DATABASE %s", name))
        return NULL;
    char *url = conninfo_with_db(base, name);
    if (!url)
        testdb_drop(base, name);
    return url;
}

int testdb_drop(const char *base, const char *name)
{
    return admin(base, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
}
