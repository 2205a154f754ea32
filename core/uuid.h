/* UUIDs: minting random (v4), name-based (v5) and time-ordered (v6, v7) ids, and reading the text form.
 * Every text form written is 36 lowercase hex-and-dash characters (8-4-4-4-12) plus a NUL. Random bits
 * come from a per-thread xorshift128+ seeded from the kernel: ids must not repeat, they need not be
 * secret. Any thread may call these. */
#ifndef AG_CORE_UUID_H
#define AG_CORE_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The next 64 bits of the per-thread generator UUID4s come from (xorshift128+, seeded from the kernel):
 * unpredictable enough for ids and jitter, not for secrets. */
uint64_t ag_uuid_random_u64(void);
/* Writes a random UUID4 into out. */
void ag_uuid4(char out[37]);
/* Writes UUID5(ns, name[0..name_len)) (RFC 9562 §5.5: SHA-1, version 5, variant 10) into out. ns is a
 * UUID in its 36-character text form (either case). Returns 0, or -1 when ns is not a well-formed
 * UUID (out is then untouched). */
int ag_uuid5(const char *ns, const char *name, size_t name_len, char out[37]);
/* Writes a UUID6 (RFC 9562 §5.6) into out: its time fields come from the real-time clock at 100 ns
 * resolution and strictly increase per calling thread, so the text of a later id compares greater;
 * the 16 bits after them are `seq` exactly as given (the caller sets the variant bits); the node
 * field is random. */
void ag_uuid6(uint16_t seq, char out[37]);
/* Writes a time-ordered UUID7 (RFC 9562: 48-bit Unix milliseconds, then a per-thread counter and
 * random bits) into out, strictly increasing on the calling thread, so ids sort in creation order. */
void ag_uuid7(char out[37]);
/* True when s[0..len) is a UUID in 8-4-4-4-12 hex form (any case); then writes it lowercased (36
 * chars + NUL) into out. False leaves out in an unspecified state. */
bool ag_uuid_canon(const char *s, size_t len, char out[37]);

#endif
