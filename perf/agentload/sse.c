#include "sse.h"

#include <stdlib.h>
#include <string.h>

void al_sse_init(struct al_sse *s)
{
    memset(s, 0, sizeof *s);
}

void al_sse_free(struct al_sse *s)
{
    free(s->line);
    al_sse_init(s);
}

static int reserve(struct al_sse *s, size_t more)
{
    if (s->len + more <= s->cap) return 0;
    if (s->len + more > AL_SSE_LINE_MAX) {
        s->error = "SSE line too long";
        return -1;
    }
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + more)
        cap *= 2;
    char *n = realloc(s->line, cap);
    if (!n) {
        s->error = "out of memory";
        return -1;
    }
    s->line = n;
    s->cap = cap;
    return 0;
}

static void dispatch(struct al_sse *s, al_sse_frame_cb cb, void *ud)
{
    if (s->has_data || s->event_len) {
        struct al_sse_frame f = {
            .event = s->event_len ? s->event : "message",
            .event_len = s->event_len ? s->event_len : 7,
            .data = s->line ? s->line : "",
            .data_len = s->data_len,
            .id = s->id,
            .id_len = s->id_len,
        };
        cb(ud, &f);
    }
    s->has_data = false;
    s->data_len = 0;
    s->len = 0;
    s->event_len = 0;
    s->id_len = 0;
}

/* The current line is s->line[data_len .. len). */
static void end_line(struct al_sse *s, al_sse_frame_cb cb, void *ud)
{
    char *l = s->line + s->data_len;
    size_t n = s->len - s->data_len;
    s->len = s->data_len;
    if (n == 0) {
        dispatch(s, cb, ud);
        return;
    }
    if (l[0] == ':') {
        s->comments++;
        return;
    }
    char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen && *v == ' ') v++, vlen--;
    if (flen == 4 && !memcmp(l, "data", 4)) {
        /* The value moves down to the end of the data so far (memmove: it may overlap). */
        if (s->has_data) s->line[s->len++] = '\n';
        memmove(s->line + s->len, v, vlen);
        s->len += vlen;
        s->data_len = s->len;
        s->has_data = true;
    } else if (flen == 5 && !memcmp(l, "event", 5)) {
        s->event_len = vlen < sizeof s->event ? vlen : sizeof s->event - 1;
        memcpy(s->event, v, s->event_len);
    } else if (flen == 2 && !memcmp(l, "id", 2)) {
        s->id_len = vlen < sizeof s->id ? vlen : sizeof s->id - 1;
        memcpy(s->id, v, s->id_len);
    }
}

int al_sse_feed(struct al_sse *s, const char *p, size_t n, al_sse_frame_cb cb, void *ud)
{
    size_t i = 0;
    while (i < n) {
        if (s->cr) {
            s->cr = false;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        /* Copy up to the next line end in one go. */
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (j > i) {
            if (reserve(s, j - i + 1) < 0) return -1;
            memcpy(s->line + s->len, p + i, j - i);
            s->len += j - i;
        }
        if (j == n) break;
        if (reserve(s, 1) < 0) /* room for the LF joining data lines */
            return -1;
        s->cr = p[j] == '\r';
        end_line(s, cb, ud);
        i = j + 1;
    }
    return 0;
}
