/*
 * tstamp.c: ISO 8601 timestamps, digit by digit (no sscanf, no locale).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tstamp.h"

/* Exactly n decimal digits at *p (advanced past them), or -1. */
static int
ts_digits(const char **p, int n)
{
	int	v = 0;

	for (; n > 0; n--, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* One of the characters of set at *p (advanced past it). */
static bool
ts_char(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return false;
	(*p)++;
	return true;
}

/*
 * A timestamp as Discovery writes it (ISO 8601: date, 'T', time, optional
 * fraction, 'Z' or an offset) in microseconds since the epoch; false if it
 * is not one.
 */
bool
tstamp_parse(const char *s, int64_t *us)
{
	struct tm	 tm;
	const char	*p = s;
	int		 y, mo, dd, h, mi, sec, oh = 0, om = 0, sign = 1;
	int64_t		 frac = 0, scale = 1000000;
	time_t		 t;

	if ((y = ts_digits(&p, 4)) < 0 || !ts_char(&p, "-") ||
	    (mo = ts_digits(&p, 2)) < 0 || !ts_char(&p, "-") ||
	    (dd = ts_digits(&p, 2)) < 0 || !ts_char(&p, "T ") ||
	    (h = ts_digits(&p, 2)) < 0 || !ts_char(&p, ":") ||
	    (mi = ts_digits(&p, 2)) < 0 || !ts_char(&p, ":") ||
	    (sec = ts_digits(&p, 2)) < 0)
		return false;
	if (ts_char(&p, ".")) {
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if ((oh = ts_digits(&p, 2)) < 0)
			return false;
		(void)ts_char(&p, ":");
		if ((om = ts_digits(&p, 2)) < 0)
			return false;
	} else if (!ts_char(&p, "Z") && *p != '\0')
		return false;
	if (*p != '\0' || mo < 1 || mo > 12 || dd < 1 || dd > 31 ||
	    h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59 || y < 1970)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return false;
	*us = ((int64_t)t - sign * ((int64_t)oh * 3600 + om * 60)) * 1000000 +
	    frac;
	return true;
}

/* Microseconds since the epoch as an ISO 8601 UTC timestamp ('Z'). */
void
tstamp_format(int64_t us, char *out, size_t len)
{
	struct tm	tm;
	time_t		t;
	int64_t		frac;

	if (us < 0)
		us = 0;
	t = (time_t)(us / 1000000);
	frac = us % 1000000;
	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long long)frac);
}
