/*
 * test_chgsrc.c: chgsrc_timestamp_ms, the time in Discovery's
 * api_timestamp.  The pickles are CPython's pickle.dumps(1764681600.123,
 * protocol=P) for P = 2 to 5, as Django's cache backends write them;
 * anything else (an int, a string, a float that is no time, garbage, a
 * pickle cut short) is -1, never a guess.
 */
#include <string.h>

#include "chgsrc.h"
#include "t.h"

#define TS(s)	chgsrc_timestamp_ms(s, sizeof s - 1)

static void
test_django_pickles(void)
{
	/* protocols 2 and 3: PROTO, BINFLOAT, STOP */
	T_INTEQ(TS("\x80\x02\x47\x41\xda\x4b\xb9\xe0\x07\xdf\x3b\x2e"),
	    1764681600123LL);
	T_INTEQ(TS("\x80\x03\x47\x41\xda\x4b\xb9\xe0\x07\xdf\x3b\x2e"),
	    1764681600123LL);
	/* protocols 4 and 5: a FRAME before it */
	T_INTEQ(TS("\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00"
	    "\x47\x41\xda\x4b\xb9\xe0\x07\xdf\x3b\x2e"), 1764681600123LL);
	T_INTEQ(TS("\x80\x05\x95\x0a\x00\x00\x00\x00\x00\x00\x00"
	    "\x47\x41\xda\x4b\xb9\xe0\x07\xdf\x3b\x2e"), 1764681600123LL);
}

static void
test_not_a_time(void)
{
	/* pickle.dumps(1764681600, protocol=5): an int */
	T_INTEQ(TS("\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00"
	    "\x4a\x80\xe7\x2e\x69\x2e"), -1);
	/* pickle.dumps(1.5, protocol=2): a float, but 1970 */
	T_INTEQ(TS("\x80\x02\x47\x3f\xf8\x00\x00\x00\x00\x00\x00\x2e"), -1);
	/* pickle.dumps('x', protocol=2) */
	T_INTEQ(TS("\x80\x02\x58\x01\x00\x00\x00\x78\x71\x00\x2e"), -1);
	/* cut short, and no STOP */
	T_INTEQ(TS("\x80\x02\x47\x41\xda\x4b\xb9"), -1);
	T_INTEQ(TS("\x80\x02\x47\x41\xda\x4b\xb9\xe0\x07\xdf\x3b"), -1);
	/* not a pickle, with NUL bytes; nothing at all */
	T_INTEQ(chgsrc_timestamp_ms("\x00\xffnot\x00", 6), -1);
	T_INTEQ(chgsrc_timestamp_ms("", 0), -1);
}

int
main(void)
{
	test_django_pickles();
	test_not_a_time();
	return t_done();
}
