/*
 * tstamp.h: timestamps as Discovery writes them (ISO 8601: a date, 'T' or
 * a space, a time, an optional fraction, 'Z' or an offset), to compare
 * and to send back in its timestamp filter (design.md: Incremental refresh).
 */
#ifndef PCD_TSTAMP_H
#define PCD_TSTAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* s in microseconds since the epoch; false if it is not one. */
bool	tstamp_parse(const char *s, int64_t *us);
/* Microseconds since the epoch as 2026-11-30T15:04:05.000000Z. */
void	tstamp_format(int64_t us, char *out, size_t len);

#endif
