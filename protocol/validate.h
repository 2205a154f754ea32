/* Request validation with field paths, for 422 answers shaped like LangGraph Platform's (FastAPI /
 * Pydantic): {"detail":[{"type","loc","msg","input"}, ...]}. A field table describes each body;
 * every problem found is collected, not just the first. */
#ifndef AG_PROTOCOL_VALIDATE_H
#define AG_PROTOCOL_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

struct ag_req;

enum ag_vkind {
    AG_V_ANY,          /* any JSON value */
    AG_V_STRING,       /* max: longest length in characters (0: no limit) */
    AG_V_INT,          /* min..max inclusive */
    AG_V_NUMBER,       /* integer or real */
    AG_V_BOOL,
    AG_V_OBJECT,
    AG_V_ARRAY,
    AG_V_STRING_ARRAY, /* array of strings */
    AG_V_ENUM,         /* one of choices (strings) */
};

enum {
    AG_VF_REQUIRED = 1u << 0,
    AG_VF_NULLABLE = 1u << 1, /* null is accepted (and treated as absent by the handler) */
};

struct ag_vfield {
    const char *name;
    enum ag_vkind kind;
    unsigned flags;
    int64_t min, max;
    const char *const *choices; /* AG_V_ENUM: NULL-terminated */
};

#define AG_VPATH_MAX 16

/* Where a value sits: "body" then keys and array indexes. */
struct ag_vpath {
    const char *key[AG_VPATH_MAX]; /* NULL: the segment is the index below */
    int64_t index[AG_VPATH_MAX];
    int n;
};

/* One segment of a recorded problem's location: a key, or (key NULL) an array index. */
struct ag_vseg {
    const char *key;
    int64_t index;
};

/* One recorded problem. Its strings are copies that live in the same allocation (text). */
struct ag_vproblem {
    const char *type;  /* Pydantic's name, e.g. "missing" */
    const char *msg;
    const char *input; /* the offending value as compact JSON text; NULL: null */
    int nloc;          /* segments in loc (at most AG_VPATH_MAX) */
    struct ag_vseg loc[AG_VPATH_MAX];
    char text[];
};

/* The collected problems, in the order they were found. {0} is an empty list. */
struct ag_verr {
    struct ag_vproblem **items; /* count of them, owned */
    unsigned count, cap;
};

static inline void ag_vpath_push_key(struct ag_vpath *p, const char *k)
{
    if (p->n < AG_VPATH_MAX) {
        p->key[p->n] = k;
        p->index[p->n] = 0;
    }
    p->n++;
}
static inline void ag_vpath_push_index(struct ag_vpath *p, int64_t i)
{
    if (p->n < AG_VPATH_MAX) {
        p->key[p->n] = NULL;
        p->index[p->n] = i;
    }
    p->n++;
}
static inline void ag_vpath_pop(struct ag_vpath *p)
{
    p->n--;
}

/* Records one problem at path p: type and msg as Pydantic names them, input the offending value
 * (NULL: the input is the parent object, as for "missing"). Copies what it keeps. */
void ag_verr_add(struct ag_verr *e, const struct ag_vpath *p, const char *type, const char *msg, const json_t *input);
/* ag_verr_add at p's child key (p is left as it was). */
void ag_verr_add_key(struct ag_verr *e, struct ag_vpath *p, const char *key, const char *type, const char *msg,
                     const json_t *input);
/* obj's member key when it is there and not null (borrowed), else NULL: absent and null both read as
 * "not given". */
static inline json_t *ag_v_present(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}
/* Frees every problem; e is an empty list afterwards. */
void ag_verr_free(struct ag_verr *e);
/* The 422 body: {"detail":[{"type","loc","msg","input"}, ...]} (appended to out). */
void ag_verr_render(const struct ag_verr *e, struct ag_buf *out);

/* A body field or query parameter at p that the server does not know. It is ignored, never an error
 * (clients add fields, and a new SDK release adds more): counted in agentd_unknown_fields_total and
 * logged at debug level with its path. A known field the server cannot honour is still a 422. */
void ag_verr_unknown(const struct ag_vpath *p);

/* Checks obj (at path p) against the n fields; other keys are unknown fields (ag_verr_unknown) unless
 * allow_extra (a free-form object). Returns the number of problems added. A non-object obj is one
 * "model_attributes_type" problem. */
unsigned ag_validate_object(const json_t *obj, const struct ag_vfield *fields, size_t n, bool allow_extra,
                            struct ag_vpath *p, struct ag_verr *e);

/* Length in characters (code points) of the valid UTF-8 text s[0..n), as Pydantic counts string
 * lengths. */
size_t ag_utf8_chars(const char *s, size_t n);

/* Parses the request body as JSON. Returns the value (the caller decrefs), or NULL after recording
 * why in e: an empty body is "missing" at ["body"], malformed JSON is "json_invalid" at
 * ["body", offset]. Nesting deeper than 256 levels is malformed. */
json_t *ag_req_json(struct ag_req *r, struct ag_verr *e);

/* Reads path parameter `name` of r as a UUID into out (lowercase). A malformed one is answered with
 * 422 uuid_parsing at ["path", name] and false is returned. */
bool ag_req_uuid_param(struct ag_req *r, const char *name, char out[37]);

/* Answers r with 422 and the collected problems. */
void ag_http_validation_error(struct ag_req *r, const struct ag_verr *e);

/* When e holds problems: answers r with 422 (ag_http_validation_error), frees e and returns true.
 * Otherwise returns false and does nothing. */
bool ag_http_validation_refuse(struct ag_req *r, struct ag_verr *e);

#endif
