/*
 * print-events: the table of events (src/events.c) as the man page lists
 * it, on stdout, for tools/man-events.py (make man-events).
 */
#include <stdio.h>

#include "events.h"

int
main(void)
{
	events_print_mdoc(stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
