#define _GNU_SOURCE
#include "jscan.h"

#include <stdlib.h>
#include <string.h>

/* The first byte after `"key"`, optional blanks and ':', or NULL. */
static const char *value_of(const char *json, size_t n, const char *key)
{
    size_t klen = strlen(key);
    const char *end = json + n, *p = json;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q || (size_t)(end - q) < klen + 2) return NULL;
        if (!memcmp(q + 1, key, klen) && q[klen + 1] == '"') {
            const char *v = q + klen + 2;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                v++;
            if (v < end && *v == ':') {
                v++;
                while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                    v++;
                return v < end ? v : NULL;
            }
        }
        p = q + 1;
    }
    return NULL;
}

bool al_jscan_str(const char *json, size_t n, const char *key, char *out, size_t outsz)
{
    const char *end = json + n, *v = value_of(json, n, key);
    if (!v || *v != '"') return false;
    v++;
    size_t i = 0;
    while (v < end && *v != '"') {
        if (*v == '\\' && v + 1 < end) {
            if (i + 2 >= outsz) return false;
            out[i++] = *v++;
        }
        if (i + 1 >= outsz) return false;
        out[i++] = *v++;
    }
    if (v >= end) return false;
    out[i] = 0;
    return true;
}

bool al_jscan_num(const char *json, size_t n, const char *key, double *out)
{
    const char *end = json + n, *v = value_of(json, n, key);
    if (!v || !(*v == '-' || (*v >= '0' && *v <= '9'))) return false;
    char tmp[64];
    size_t i = 0;
    while (v < end && i + 1 < sizeof tmp && strchr("0123456789+-.eE", *v))
        tmp[i++] = *v++;
    tmp[i] = 0;
    char *e;
    *out = strtod(tmp, &e);
    return e != tmp;
}

bool al_jscan_has(const char *json, size_t n, const char *s)
{
    return memmem(json, n, s, strlen(s)) != NULL;
}
