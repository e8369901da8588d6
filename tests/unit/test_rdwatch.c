/*
 * test_rdwatch.c: which notify-keyspace-events letters each feature needs,
 * from the setting as Redis 7.0 prints it.
 */
#include <string.h>

#include "rdwatch.h"
#include "t.h"

/* What is on and what to add for want, given flags. */
static void
check(const char *flags, unsigned want, unsigned have, const char *add)
{
	unsigned	h;
	char		a[16];

	rdw_flags_needed(flags, want, &h, a);
	T_INTEQ(h, have);
	T_STREQ(a, add);
}

int
main(void)
{
	const unsigned	reader = RDW_MISSES | RDW_EVICTIONS;
	const unsigned	all = reader | RDW_CHANGE;

	check("", reader, 0, "Eem");
	check("", RDW_MISSES, 0, "Em");
	check("", RDW_CHANGE, 0, "K$");
	check("", all, 0, "KE$em");
	check("Em", reader, RDW_MISSES, "e");
	check("Eme", reader, reader, "");
	/* A is g$lshzxetd: evictions and strings, not misses */
	check("AKE", all, RDW_EVICTIONS | RDW_CHANGE, "m");
	check("AKEm", all, all, "");
	/* K alone is not enough for misses (keyevent channels are used) */
	check("Km", reader, 0, "Ee");
	check("g$xK", RDW_CHANGE, RDW_CHANGE, "");
	check("g$xK", reader, RDW_CHANGE, "Eem");	/* have: whatever is on */
	check("Ex", 0, 0, "");
	return t_done();
}
