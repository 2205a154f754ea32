/* sse: an incremental text/event-stream parser (the WHATWG framing): lines end in LF, CRLF or CR,
 * split anywhere across feeds; `event:`, `data:` (several are joined with LF) and `id:` fields; lines
 * starting with ':' are comments (heartbeats); a blank line dispatches the frame. A frame with
 * neither data nor an event name is not dispatched. */
#ifndef AL_SSE_H
#define AL_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define AL_SSE_LINE_MAX (8u << 20) /* a longer line is an error */

/* One dispatched frame; the pointers are valid only during the callback. `event` is "message" when
 * the frame named none; `id` is empty when it had none. */
struct al_sse_frame {
    const char *event, *data, *id;
    size_t event_len, data_len, id_len;
};

typedef void (*al_sse_frame_cb)(void *ud, const struct al_sse_frame *f);

struct al_sse {
    char *line; /* the line being read, then the frame's data (owned) */
    size_t len, cap;
    size_t data_len; /* the frame's data: line[0..data_len) while a new line is read after it */
    bool has_data, cr;
    char event[64], id[128];
    size_t event_len, id_len;
    unsigned long comments; /* comment lines seen (heartbeats) */
    const char *error;
};

/* Prepares s (no allocation until the first byte). */
void al_sse_init(struct al_sse *s);

/* Releases s's buffer; s can be initialized again. */
void al_sse_free(struct al_sse *s);

/* Parses n bytes, calling cb for every frame they complete. Returns 0, or -1 when a line exceeds
 * AL_SSE_LINE_MAX (s->error says so). */
int al_sse_feed(struct al_sse *s, const char *p, size_t n, al_sse_frame_cb cb, void *ud);

#endif
