#include "core/civil.h"

bool ag_civil_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int ag_civil_mdays(int64_t year, int mon)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mon == 2 && ag_civil_leap(year) ? 29 : n[mon - 1];
}

/* Counting years from March makes the leap day the last day of a "year", so a day's offset inside
 * its year is a fixed function of the month (153 days per five months). */
int64_t ag_civil_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int ag_civil_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void ag_civil_split(int64_t t, struct ag_civil *c)
{
    int64_t days = floordiv(t, 86400);
    int64_t rem = t - days * 86400;
    from_days(days, &c->year, &c->mon, &c->day);
    c->hour = (int)(rem / 3600);
    c->min = (int)(rem / 60 % 60);
    c->sec = (int)(rem % 60);
}

int64_t ag_civil_join(const struct ag_civil *c)
{
    return ag_civil_days(c->year, c->mon, c->day) * 86400 + c->hour * 3600 + c->min * 60 + c->sec;
}

/* Reads exactly w digits at s[*i]. */
static bool digits(const char *s, size_t n, size_t *i, int w, int *out)
{
    int v = 0;
    for (int k = 0; k < w; k++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (s[*i] - '0');
    }
    *out = v;
    return true;
}

bool ag_civil_parse_rfc3339(const char *s, size_t n, int64_t *t)
{
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &mo) || i >= n ||
        s[i++] != '-' || !digits(s, n, &i, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > ag_civil_mdays(y, mo))
        return false;
    int64_t off = 0;
    if (i < n) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        i++;
        if (!digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &mi))
            return false;
        if (i < n && s[i] == ':') {
            i++;
            if (!digits(s, n, &i, 2, &sec))
                return false;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                size_t f = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == f)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return false;
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i++] == '-' ? -1 : 1, oh, om;
            if (!digits(s, n, &i, 2, &oh))
                return false;
            if (i < n && s[i] == ':')
                i++;
            if (!digits(s, n, &i, 2, &om) || oh > 23 || om > 59)
                return false;
            off = sign * (oh * 3600 + om * 60);
        }
        if (i != n)
            return false;
    }
    struct ag_civil c = {y, mo, d, h, mi, sec};
    *t = ag_civil_join(&c) - off;
    return true;
}
