#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>
#include <string.h>

#ifndef AG_ALLOC_LIBC
#include <mimalloc.h>
#define RAW_MALLOC mi_malloc
#define RAW_CALLOC mi_calloc
#define RAW_REALLOC mi_realloc
#define RAW_FREE mi_free
#else
#define RAW_MALLOC malloc
#define RAW_CALLOC calloc
#define RAW_REALLOC realloc
#define RAW_FREE free
#endif

static _Thread_local uint64_t tl_allocs;

/* jansson allocates through the same wrapper, so its blocks are freed with ag_free. */
__attribute__((constructor)) static void route_jansson(void)
{
    json_set_alloc_funcs(ag_malloc, ag_free);
}

static void *check(void *p, size_t n)
{
    if (!p && n) {
        fprintf(stderr, "agentd: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *ag_malloc(size_t n)
{
    tl_allocs++;
    return check(RAW_MALLOC(n ? n : 1), n);
}

void *ag_calloc(size_t count, size_t size)
{
    tl_allocs++;
    return check(RAW_CALLOC(count ? count : 1, size ? size : 1), count * size);
}

void *ag_realloc(void *p, size_t n)
{
    tl_allocs++;
    return check(RAW_REALLOC(p, n ? n : 1), n);
}

void ag_free(void *p)
{
    RAW_FREE(p);
}

char *ag_strndup(const char *s, size_t n)
{
    char *d = ag_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ag_strdup(const char *s)
{
    return ag_strndup(s, strlen(s));
}

uint64_t ag_alloc_count(void)
{
    return tl_allocs;
}

void ag_alloc_collect(void)
{
#ifndef AG_ALLOC_LIBC
    mi_collect(false);
#endif
}
