/* Small definitions every module uses: return codes, the byte span, likely/unlikely, invariants. */
#ifndef AG_CORE_COMMON_H
#define AG_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Handler results. Syscall-like functions return 0 / -errno instead. */
enum ag_result {
    AG_OK = 0,     /* done, synchronously */
    AG_AGAIN = 1,  /* started; completes later from a callback */
    AG_DONE = 2,   /* finished and the caller should stop (e.g. connection closing) */
    AG_ERROR = -1, /* failed; the caller answers or closes */
};

/* One byte span. Owned by whoever produced it unless a function says otherwise. */
struct ag_iov {
    char *base;
    size_t len;
};

#define AG_LIKELY(x) __builtin_expect(!!(x), 1)
#define AG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AG_CACHELINE 64
#define AG_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define AG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AG_MAX(a, b) ((a) > (b) ? (a) : (b))
#define AG_STRLIT(s) (s), (sizeof(s) - 1)

/* An invariant that, if broken, means a bug in agentd: report where and abort. */
#define AG_BUG_ON(cond)                                                                                                \
    do {                                                                                                               \
        if (AG_UNLIKELY(cond)) {                                                                                       \
            fprintf(stderr, "agentd: BUG at %s:%d: %s\n", __FILE__, __LINE__, #cond);                                  \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* The value of hex digit c (either case), or -1 when c is not one. */
static inline int ag_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
