/* libFuzzer target for the request-body path every resource handler takes before the database:
 * ag_req_json (JSON parse with the nesting bound), ag_validate_object over a table with every field
 * kind, the 422 rendering, and the URL decoder and query iterator on the same bytes. Nothing may
 * crash, leak or produce output that is not valid JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "protocol/http.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

static const char *const colors[] = {"red", "green", NULL};

static const struct ag_vfield fields[] = {
    {"s", AG_V_STRING, AG_VF_REQUIRED, 0, 8, NULL},
    {"i", AG_V_INT, AG_VF_NULLABLE, -5, 1000, NULL},
    {"n", AG_V_NUMBER, 0, 0, 0, NULL},
    {"b", AG_V_BOOL, 0, 0, 0, NULL},
    {"o", AG_V_OBJECT, 0, 0, 0, NULL},
    {"a", AG_V_ARRAY, 0, 0, 0, NULL},
    {"sa", AG_V_STRING_ARRAY, 0, 0, 0, NULL},
    {"e", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, colors},
    {"any", AG_V_ANY, 0, 0, 0, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ag_req r;
    memset(&r, 0, sizeof r);
    r.body = (struct ag_iov){(char *)data, size};
    struct ag_verr e = {0};
    json_t *v = ag_req_json(&r, &e);
    if (v) {
        struct ag_vpath p = {.n = 0};
        ag_vpath_push_key(&p, "body");
        ag_validate_object(v, fields, AG_ARRAY_LEN(fields), (size & 1) != 0, &p, &e);
        json_t *o = json_object_get(v, "o");
        if (json_is_object(o)) {
            ag_vpath_push_key(&p, "o");
            ag_validate_object(o, fields, AG_ARRAY_LEN(fields), false, &p, &e);
        }
        json_decref(v);
    }
    struct ag_buf out = {0};
    ag_verr_render(&e, &out);
    if (e.count) {
        json_error_t je;
        json_t *back = json_loadb(out.base, out.len, 0, &je);
        if (!back)
            abort(); /* the 422 body must be JSON */
        json_decref(back);
    }
    ag_buf_free(&out);
    ag_verr_free(&e);

    char *dec = ag_malloc(size + 1);
    (void)ag_url_decode(dec, (const char *)data, size, (size & 2) != 0);
    ag_free(dec);
    struct ag_iov q = {(char *)data, size}, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *s = ag_query_str(value);
        if (s && strlen(s) > value.len)
            abort();
        ag_free(s);
    }
    return 0;
}
