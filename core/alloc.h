/* The one allocator wrapper. Everything allocates through these; nothing else calls mi_* or malloc.
 * Release builds use mimalloc; sanitizer builds (AG_ALLOC_LIBC) use libc so ASan/LSan see every block.
 * jansson is routed through these too (json_dumps output is freed with ag_free).
 * Allocation never fails: out of memory aborts with a message, as a server cannot answer without it. */
#ifndef AG_CORE_ALLOC_H
#define AG_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *ag_malloc(size_t n);
void *ag_calloc(size_t count, size_t size);
/* Resizes p (may be NULL) to n bytes; the contents up to min(old, n) are kept. */
void *ag_realloc(void *p, size_t n);
/* Frees p; NULL is fine. */
void ag_free(void *p);
/* Copies n bytes of s and adds a NUL. */
char *ag_strndup(const char *s, size_t n);
char *ag_strdup(const char *s);
/* Gives the memory the calling thread freed back to the system (mimalloc keeps a thread's free pages
 * until that thread allocates or collects; nothing with libc). Walks the thread's heap: for quiet
 * moments, not every request. */
void ag_alloc_collect(void);
/* Allocations made by the calling thread since it started (for allocations-per-operation figures). */
uint64_t ag_alloc_count(void);

#endif
