/* The route table: literal and parameter segments, 404 versus 405 with the Allow list. */
#include <llhttp.h>
#include <string.h>

#include "check.h"
#include "protocol/router.h"

static int match(int method, const char *path, struct ag_route_match *m)
{
    return ag_router_match(method, path, strlen(path), m);
}

int main(void)
{
    struct ag_route_match m;
    ag_router_init();
    CHECK(match(HTTP_GET, "/ok", &m) == 200);
    CHECK(m.route && !strcmp(m.route->pattern, "/ok"));
    CHECK(match(HTTP_POST, "/ok", &m) == 405);
    CHECK_STREQ(m.allow, "GET");
    CHECK(match(HTTP_GET, "/ok/", &m) == 404);
    CHECK(match(HTTP_GET, "/okay", &m) == 404);
    CHECK(match(HTTP_GET, "/", &m) == 404);
    CHECK(match(HTTP_GET, "", &m) == 404);
    CHECK(match(HTTP_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", &m) == 404);
    CHECK(match(HTTP_GET, "/metrics", &m) == 200);
    /* A parameter in the middle of a pattern: its name is NUL-terminated, its value spans the segment. */
    CHECK(match(HTTP_POST, "/threads/abc/copy", &m) == 200);
    CHECK(m.nparams == 1 && m.params[0].len == 3 && !memcmp(m.params[0].base, "abc", 3));
    CHECK_STREQ(m.param_names[0], "thread_id");
    return CHECK_DONE();
}
