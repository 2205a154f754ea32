/* jscan: finds one value in a JSON text without parsing all of it, for the few fields a load
 * client reads back (a thread id, a run id, an event's index or timestamp). It looks for the first
 * `"key":` at any depth, so callers only use it on keys that are unambiguous in the payload. */
#ifndef AL_JSCAN_H
#define AL_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the string value of the first "key" in json[0..n) into out (NUL-terminated, escapes kept
 * as they are). Returns false when absent, not a string, or longer than outsz - 1. */
bool al_jscan_str(const char *json, size_t n, const char *key, char *out, size_t outsz);

/* The number value of the first "key" (an integer or a decimal). Returns false when absent or not
 * a number. */
bool al_jscan_num(const char *json, size_t n, const char *key, double *out);

/* True when json[0..n) contains the exact bytes s. */
bool al_jscan_has(const char *json, size_t n, const char *s);

#endif
