/* core/uuid: the text form of each version, UUID5 against RFC/Python vectors, UUID6 and UUID7 sort in
 * creation order on one thread, and canonical parsing. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/uuid.h"

/* True when s is 36 lowercase 8-4-4-4-12 hex with version digit `version` and variant 10. */
static int is_uuid(const char *s, char version)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return s[14] == version && strchr("89ab", s[19]) != NULL;
}

int main(void)
{
    char a[37], b[37];
    for (int i = 0; i < 1000; i++) {
        ag_uuid4(a);
        CHECKF(is_uuid(a, '4'), "%s", a);
    }
    ag_uuid4(b);
    CHECKF(strcmp(a, b), "%s twice", a);

    /* Vectors from Python's uuid.uuid5. */
    CHECK(ag_uuid5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org", 10, a) == 0);
    CHECK_STREQ(a, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    CHECK(ag_uuid5("6BA7B821-9DAD-11D1-80B4-00C04FD430C8", "agent", 5, a) == 0);
    CHECK_STREQ(a, "fe096781-5601-53d2-b2f6-0d3403f7e9ca");
    CHECK(ag_uuid5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "", 0, a) == 0);
    CHECK_STREQ(a, "1b4db7eb-4057-5ddf-91e0-36dec72071f5");
    char name[100];
    memset(name, 'x', sizeof name); /* longer than one SHA-1 block */
    CHECK(ag_uuid5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", name, sizeof name, a) == 0);
    CHECK_STREQ(a, "c4956a8f-abe3-5d39-8dfa-4bf25e22e84b");
    snprintf(b, sizeof b, "unchanged");
    CHECK(ag_uuid5("6ba7b811-9dad-11d1-80b4-00c04fd430c", "x", 1, b) == -1);
    CHECK(ag_uuid5("6ba7b811x9dad-11d1-80b4-00c04fd430c8", "x", 1, b) == -1);
    CHECK(ag_uuid5("6ba7b811-9dad-11d1-80b4-00c04fd430cg", "x", 1, b) == -1);
    CHECK_STREQ(b, "unchanged");

    ag_uuid6(0x8001, a);
    CHECKF(is_uuid(a, '6') && !memcmp(a + 19, "8001", 4), "%s", a);
    ag_uuid6(0xffff, b); /* the field as given, even where it overwrites the variant bits */
    CHECKF(b[14] == '6' && !memcmp(b + 19, "ffff", 4), "%s", b);
    for (int i = 0; i < 1000; i++) {
        ag_uuid6(0x8000, b);
        CHECKF(memcmp(a, b, 18) < 0, "%s then %s", a, b);
        memcpy(a, b, sizeof a);
    }

    ag_uuid7(a);
    CHECKF(is_uuid(a, '7'), "%s", a);
    for (int i = 0; i < 10000; i++) { /* more than 4096 in a millisecond: the counter borrows the next one */
        ag_uuid7(b);
        CHECKF(is_uuid(b, '7') && strcmp(a, b) < 0, "%s then %s", a, b);
        memcpy(a, b, sizeof a);
    }

    CHECK(ag_uuid_canon("6BA7B810-9dad-11D1-80b4-00c04fd430c8", 36, a));
    CHECK_STREQ(a, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    CHECK(ag_uuid_canon("6ba7b810-9dad-11d1-80b4-00c04fd430c8 tail", 36, a));
    CHECK(!ag_uuid_canon("6ba7b810-9dad-11d1-80b4-00c04fd430c", 35, a));
    CHECK(!ag_uuid_canon("6ba7b8109dad-11d1-80b4-00c04fd430c8-", 36, a));
    CHECK(!ag_uuid_canon("6ba7b810-9dad-11d1-80b4-00c04fd430cg", 36, a));
    CHECK(!ag_uuid_canon("{ba7b810-9dad-11d1-80b4-00c04fd430c8", 36, a));
    return CHECK_DONE();
}
