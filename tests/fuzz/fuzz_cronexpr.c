/* libFuzzer target for cron schedules and their time zones: ag_cronexpr_parse on any bytes (its
 * message must be a NUL-terminated string within the buffer), then ag_cronexpr_next from instants
 * across the calendar in zones with and without DST (each result must be after its start), and
 * ag_tz_parse on the same bytes as TZif data. Nothing may crash, hang or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tz.h"
#include "runtime/cronexpr.h"

static const char *const zones[] = {"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia",
                                    "Asia/Kathmandu", "America/Santiago", "Europe/Dublin"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ag_tz_db_load("/usr/share/zoneinfo");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ag_cronexpr e;
    char err[96];
    memset(err, 'x', sizeof err);
    if (ag_cronexpr_parse((const char *)data, size, &e, err, sizeof err)) {
        const struct ag_tz *z = ag_tz_find(zones[size % (sizeof zones / sizeof zones[0])]);
        if (!z)
            z = ag_tz_utc();
        static const int64_t starts[] = {-2208988800LL, 0, 951782400LL, 1710054000LL, 1730613600LL, 4102444800LL};
        for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
            int64_t t = starts[i];
            for (int k = 0; k < 3; k++) {
                int64_t n = ag_cronexpr_next(&e, z, t);
                if (n < 0)
                    break;
                if (n <= t)
                    abort();
                t = n;
            }
        }
    } else if (!memchr(err, '\0', sizeof err)) {
        abort();
    }
    struct ag_tz *tz = ag_tz_parse("fuzz", data, size);
    if (tz) {
        struct ag_tz_span sp;
        ag_tz_span_at(tz, (int64_t)size * 7919 - 1000000, &sp);
        (void)ag_tz_local_to_utc(tz, (int64_t)size * 86400, size & 1);
        ag_tz_free(tz);
    }
    return 0;
}
