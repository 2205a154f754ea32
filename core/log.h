/* Structured logging to stderr: one line per call, "ts=… level=… shard=… msg…".
 * On a shard thread lines are buffered and leave in one asynchronous write per loop turn (the shard
 * drives that through ag_log__take / ag_log__done); on any other thread they are written at once.
 * The per-thread buffer is bounded: lines past the bound are counted as dropped, never block. */
#ifndef AG_CORE_LOG_H
#define AG_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

enum ag_log_level { AG_LOG_ERROR = 0, AG_LOG_WARN, AG_LOG_INFO, AG_LOG_DEBUG };

/* The process-wide threshold; lines above it are not formatted. Set once at start-up. */
extern int ag_log_level;

/* Parses "error"/"warn"/"info"/"debug"; returns the level or -1. */
int ag_log_parse_level(const char *s);
/* Logs a line at level lvl; fmt is the message part ("key=value …" by convention). */
void ag_log(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ag_log_enabled(lvl) ((lvl) <= ag_log_level)

/* Copies src into dst (size n) as one log-safe line: newlines and tabs become spaces, double quotes
 * become single quotes, trailing spaces go. Returns dst. */
const char *ag_log_clean(char *dst, size_t n, const char *src);

/* Marks the calling thread as a shard thread with id `shard` (its lines are buffered). */
void ag_log__thread_init(int shard);
/* Shard side: hands out the buffered bytes to write (len 0 when none, or a write is in flight). */
struct ag_iov ag_log__take(void);
/* Shard side: the write of the span from ag_log__take finished (res = bytes or -errno). */
void ag_log__done(int res);
/* Frees the calling thread's buffers, writing what is left synchronously (at shard exit). */
void ag_log__thread_exit(void);

#endif
