#include "server/graphs_file.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "graph/plugin.h"

/* dir (ending in '/', or "") joined with p unless p is absolute (a new string). */
static char *relative_to(const char *dir, const char *p)
{
    struct ag_buf b = {0};
    ag_buf_printf(&b, "%s%s", p[0] == '/' ? "" : dir, p);
    ag_buf_append(&b, "", 1);
    return b.base;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Applies a .env file: KEY=VALUE per line, blank lines and '#' comments skipped, an optional `export `,
 * values optionally in single quotes (taken as they are) or double quotes (\n, \", \\ understood); an
 * unquoted value ends at " #". */
static int apply_dotenv(const char *file, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "graphs file %s: env file %s: %s", file, path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        if (!strncmp(s, "export ", 7)) s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "graphs file %s: env file %s line %d: expected KEY=VALUE", file, path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *v = trim(eq + 1);
        if (!*key || strpbrk(key, " \t")) {
            snprintf(err, errlen, "graphs file %s: env file %s line %d: bad variable name", file, path, lineno);
            rc = -1;
            break;
        }
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
            v[n - 1] = '\0';
            v++;
        } else if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v[n - 1] = '\0';
            v++;
            char *w = v;
            for (char *r = v; *r; r++) {
                if (*r == '\\' && r[1]) {
                    r++;
                    *w++ = *r == 'n' ? '\n' : *r;
                } else {
                    *w++ = *r;
                }
            }
            *w = '\0';
        } else {
            char *hash = strstr(v, " #");
            if (hash) *hash = '\0';
            v = trim(v);
        }
        setenv(key, v, 1);
    }
    fclose(f);
    return rc;
}

static int apply_env(const char *file, const char *dir, json_t *env, char *err, size_t errlen)
{
    if (json_is_string(env)) {
        char *p = relative_to(dir, json_string_value(env));
        int rc = apply_dotenv(file, p, err, errlen);
        ag_free(p);
        return rc;
    }
    if (!json_is_object(env)) {
        snprintf(err, errlen, "graphs file %s: \"env\" must be an object or the path of a .env file", file);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "graphs file %s: env.%s must be a string", file, k);
            return -1;
        }
        if (!*k || strchr(k, '=')) {
            snprintf(err, errlen, "graphs file %s: env: bad variable name '%s'", file, k);
            return -1;
        }
        setenv(k, json_string_value(v), 1);
    }
    return 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

static int load_graph(const char *file, const char *dir, const char *id, json_t *spec, char *err, size_t errlen)
{
    if (!*id) {
        snprintf(err, errlen, "graphs file %s: a graph id must not be empty", file);
        return -1;
    }
    if (json_is_object(spec)) spec = json_object_get(spec, "path");
    const char *text = json_string_value(spec);
    if (!text) {
        snprintf(err, errlen, "graphs file %s: graph '%s' must be a string \"<path>:<symbol>\"", file, id);
        return -1;
    }
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || !colon[1]) {
        snprintf(err, errlen, "graphs file %s: graph '%s': '%s' is not \"<path>:<symbol>\"", file, id, text);
        return -1;
    }
    size_t plen = (size_t)(colon - text);
    if (!ends_with(text, plen, ".so")) {
        snprintf(err, errlen,
                 "graphs file %s: graph '%s': '%s': only graph plugins (shared libraries, .so) can be served; "
                 "JavaScript and Python graphs are not supported yet",
                 file, id, text);
        return -1;
    }
    char *rel = ag_strndup(text, plen);
    char *path = relative_to(dir, rel);
    char why[1024];
    int rc = ag_graph_plugin_load(id, path, colon + 1, why, sizeof why);
    if (rc < 0) snprintf(err, errlen, "graphs file %s: graph '%s': %s", file, id, why);
    ag_free(path);
    ag_free(rel);
    return rc;
}

int ag_graphs_file_load(const char *file, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "graphs file %s: %s (line %d, column %d)", file, je.text, je.line, je.column);
        return -1;
    }
    const char *slash = strrchr(file, '/');
    char *dir = slash ? ag_strndup(file, (size_t)(slash - file + 1)) : ag_strdup("");
    json_t *graphs = json_object_get(root, "graphs"), *env = json_object_get(root, "env");
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "graphs file %s: the top level must be a JSON object", file);
        rc = -1;
    } else if (!json_is_object(graphs)) {
        snprintf(err, errlen, "graphs file %s: \"graphs\" must be an object of graph id to \"<path>:<symbol>\"", file);
        rc = -1;
    } else if (env && !json_is_null(env)) {
        rc = apply_env(file, dir, env, err, errlen);
    }
    const char *id;
    json_t *spec;
    if (rc == 0) {
        json_object_foreach(graphs, id, spec)
        {
            if ((rc = load_graph(file, dir, id, spec, err, errlen)) < 0) break;
        }
    }
    ag_free(dir);
    json_decref(root);
    return rc;
}
