#include "protocol/router.h"

#include <llhttp.h>
#include <stdbool.h>
#include <string.h>

#include "protocol/agent/assistants.h"
#include "protocol/agent/crons.h"
#include "protocol/agent/runs.h"
#include "protocol/agent/v2.h"
#include "protocol/agent/state.h"
#include "protocol/agent/store.h"
#include "protocol/agent/system.h"
#include "protocol/agent/threads.h"

#define MAX_SEGS 12

struct seg {
    const char *text; /* literal, or the parameter name */
    size_t len;
    bool param;
};

struct compiled {
    struct ag_route route;
    struct seg segs[MAX_SEGS];
    int nsegs;
    char pnames[AG_ROUTE_MAX_PARAMS][32]; /* the parameter names, NUL-terminated (m->param_names) */
};

static const struct ag_route table[] = {
#define AG_ROUTE(m, p, f) {m, p, f, p, false},
#define AG_TROUTE(m, p, f) {m, p, f, p, true},
#include "protocol/routes.def"
#undef AG_TROUTE
#undef AG_ROUTE
};

static struct compiled routes[AG_ARRAY_LEN(table)];

/* Splits "/a/b/c" into segments; returns the count or -1 if more than max. */
static int split(const char *p, size_t len, struct seg *out, int max)
{
    int n = 0;
    size_t i = 0;
    if (len == 0 || p[0] != '/')
        return -1;
    while (i < len) {
        i++; /* the slash */
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        if (n == max)
            return -1;
        out[n].text = p + start;
        out[n].len = i - start;
        out[n].param = false;
        n++;
    }
    return n;
}

void ag_router_init(void)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(table); i++) {
        struct compiled *c = &routes[i];
        c->route = table[i];
        c->nsegs = split(table[i].pattern, strlen(table[i].pattern), c->segs, MAX_SEGS);
        AG_BUG_ON(c->nsegs < 0);
        int nparams = 0;
        for (int k = 0; k < c->nsegs; k++) {
            struct seg *s = &c->segs[k];
            if (s->len >= 2 && s->text[0] == '{' && s->text[s->len - 1] == '}') {
                AG_BUG_ON(nparams >= AG_ROUTE_MAX_PARAMS || s->len - 2 >= sizeof c->pnames[0]);
                memcpy(c->pnames[nparams], s->text + 1, s->len - 2);
                c->pnames[nparams][s->len - 2] = 0;
                s->param = true;
                s->text = c->pnames[nparams];
                s->len -= 2;
                nparams++;
            }
        }
        AG_BUG_ON(nparams > AG_ROUTE_MAX_PARAMS);
    }
}

static bool match_segs(const struct compiled *c, const struct seg *segs, int n, struct ag_route_match *m)
{
    if (c->nsegs != n)
        return false;
    int np = 0;
    for (int k = 0; k < n; k++) {
        const struct seg *p = &c->segs[k];
        if (p->param) {
            if (segs[k].len == 0)
                return false;
            if (m) {
                m->params[np].base = (char *)segs[k].text;
                m->params[np].len = segs[k].len;
                m->param_names[np] = p->text;
            }
            np++;
        } else if (p->len != segs[k].len || memcmp(p->text, segs[k].text, p->len) != 0) {
            return false;
        }
    }
    if (m)
        m->nparams = np;
    return true;
}

int ag_router_match(int method, const char *path, size_t len, struct ag_route_match *m)
{
    struct seg segs[MAX_SEGS];
    m->route = NULL;
    m->allow[0] = 0;
    m->nparams = 0;
    int n = split(path, len, segs, MAX_SEGS);
    if (n < 0)
        return 404;
    bool path_known = false;
    for (size_t i = 0; i < AG_ARRAY_LEN(routes); i++) {
        const struct compiled *c = &routes[i];
        if (c->route.method != method)
            continue;
        if (match_segs(c, segs, n, m)) {
            m->route = &c->route;
            return 200;
        }
    }
    size_t alen = 0;
    for (size_t i = 0; i < AG_ARRAY_LEN(routes); i++) {
        const struct compiled *c = &routes[i];
        if (!match_segs(c, segs, n, NULL))
            continue;
        const char *name = llhttp_method_name((llhttp_method_t)c->route.method);
        if (strstr(m->allow, name))
            continue;
        size_t nl = strlen(name);
        if (alen + nl + 3 > sizeof m->allow)
            break;
        if (alen) {
            memcpy(m->allow + alen, ", ", 2);
            alen += 2;
        }
        memcpy(m->allow + alen, name, nl);
        alen += nl;
        m->allow[alen] = 0;
        path_known = true;
    }
    return path_known ? 405 : 404;
}
