#include "metrics.h"

#include <stdlib.h>
#include <string.h>

bool al_metrics_parse_sum(const char *text, size_t len, const char *name, double *out)
{
    size_t nl = strlen(name);
    const char *p = text, *end = text + len;
    double sum = 0;
    bool found = false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        size_t ll = (size_t)(eol - p);
        if (ll > nl && *p != '#' && !memcmp(p, name, nl) && (p[nl] == ' ' || p[nl] == '{')) {
            const char *v = p + nl;
            if (*v == '{') {
                v = memchr(v, '}', (size_t)(eol - v));
                v = v ? v + 1 : eol;
            }
            while (v < eol && *v == ' ') v++;
            char num[64];
            size_t vl = 0;
            while (v + vl < eol && v[vl] != ' ' && vl < sizeof num - 1) vl++;
            memcpy(num, v, vl);
            num[vl] = 0;
            char *e;
            double d = strtod(num, &e);
            if (vl && *e == 0) {
                sum += d;
                found = true;
            }
        }
        if (eol == end) break;
        p = eol + 1;
    }
    if (found) *out = sum;
    return found;
}
