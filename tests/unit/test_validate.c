/* Request validation: every problem reported with its path, Pydantic's types and messages. */
#include <jansson.h>
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "protocol/http.h"
#include "protocol/validate.h"

static const char *const if_exists[] = {"raise", "do_nothing", NULL};
static const struct ag_vfield fields[] = {
    {"graph_id", AG_V_STRING, AG_VF_REQUIRED, 0, 0, NULL},
    {"name", AG_V_STRING, AG_VF_NULLABLE, 0, 5, NULL},
    {"limit", AG_V_INT, 0, 1, 1000, NULL},
    {"if_exists", AG_V_ENUM, 0, 0, 0, if_exists},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"ids", AG_V_STRING_ARRAY, 0, 0, 0, NULL},
};

static json_t *check(const char *body, struct ag_verr *e, unsigned *bad)
{
    struct ag_req r;
    memset(&r, 0, sizeof r);
    r.body.base = (char *)body;
    r.body.len = strlen(body);
    json_t *v = ag_req_json(&r, e);
    if (v) {
        struct ag_vpath p = {.key = {"body"}, .n = 1};
        *bad = ag_validate_object(v, fields, AG_ARRAY_LEN(fields), false, &p, e);
    }
    return v;
}

static char *render(struct ag_verr *e)
{
    struct ag_buf b = {0};
    ag_verr_render(e, &b);
    ag_buf_append(&b, "", 1);
    return b.base;
}

int main(void)
{
    struct ag_verr e = {0};
    unsigned bad = 0;
    json_t *v = check("{\"graph_id\":\"echo\",\"name\":null,\"limit\":10,\"if_exists\":\"raise\",\"ids\":[\"a\"]}", &e,
                      &bad);
    CHECK(v && bad == 0 && e.count == 0);
    json_decref(v);

    /* fields the table does not know (an SDK's camelCase twins, a newer SDK's additions) are no problem */
    v = check("{\"graph_id\":\"echo\",\"graphId\":\"echo\",\"zz\":{\"deep\":[1]}}", &e, &bad);
    CHECK(v && bad == 0 && e.count == 0);
    json_decref(v);

    v = check("{\"name\":\"toolong\",\"limit\":0,\"if_exists\":\"maybe\",\"metadata\":[],\"ids\":[1,\"x\"],\"zz\":1}", &e,
              &bad);
    /* six problems; "zz", a field the table does not know, is ignored (clients add fields) */
    CHECK(bad == 6);
    char *out = render(&e);
    json_t *j = json_loads(out, 0, NULL);
    CHECK(j != NULL);
    json_t *d = json_object_get(j, "detail");
    CHECK(json_array_size(d) == 6);
    const char *types[] = {"missing", "string_too_long", "greater_than_equal", "literal_error", "dict_type",
                           "string_type"};
    for (size_t i = 0; i < 6 && i < json_array_size(d); i++)
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(d, i), "type")), types[i]);
    /* loc carries the path, with array indexes as integers */
    json_t *loc = json_object_get(json_array_get(d, 5), "loc");
    CHECK(json_array_size(loc) == 3 && json_integer_value(json_array_get(loc, 2)) == 0);
    CHECK_STREQ(json_string_value(json_array_get(loc, 1)), "ids");
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(d, 3), "msg")),
                "Input should be 'raise' or 'do_nothing'");
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(d, 0), "msg")), "Field required");
    json_decref(j);
    ag_free(out);
    json_decref(v);
    ag_verr_free(&e);

    /* malformed JSON: json_invalid at ["body", offset] */
    v = check("{\"graph_id\": ", &e, &bad);
    CHECK(v == NULL && e.count == 1);
    out = render(&e);
    CHECK(strstr(out, "\"json_invalid\"") && strstr(out, "[\"body\",13]"));
    ag_free(out);
    ag_verr_free(&e);

    /* empty body: missing body */
    v = check("", &e, &bad);
    CHECK(v == NULL && e.count == 1);
    ag_verr_free(&e);

    /* nesting beyond the bound is refused before jansson recurses */
    char deep[2000];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    deep[1200] = 0;
    v = check(deep, &e, &bad);
    CHECK(v == NULL && e.count == 1);
    ag_verr_free(&e);

    /* a top-level non-object */
    v = check("[1,2]", &e, &bad);
    CHECK(v && bad == 1);
    out = render(&e);
    CHECK(strstr(out, "model_attributes_type") != NULL);
    ag_free(out);
    json_decref(v);
    ag_verr_free(&e);
    return CHECK_DONE();
}
