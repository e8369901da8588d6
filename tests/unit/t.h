/*
 * t.h: the smallest test harness that reports what failed and where.
 * Each test program includes it once, calls T_CHECK and friends, and ends
 * main with `return t_done();`.  The counts are atomic: some tests check
 * from several threads (make check-tsan runs them).
 */
#ifndef PCD_T_H
#define PCD_T_H

#include <stdio.h>
#include <string.h>

static int t_failed, t_run;

#define T_CHECK(cond) do {						\
	__atomic_add_fetch(&t_run, 1, __ATOMIC_RELAXED);							\
	if (!(cond)) {							\
		__atomic_add_fetch(&t_failed, 1, __ATOMIC_RELAXED);						\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
	}								\
} while (0)

#define T_STREQ(got, want) do {						\
	const char *t_g = (got), *t_w = (want);				\
	__atomic_add_fetch(&t_run, 1, __ATOMIC_RELAXED);							\
	if (t_g == NULL || strcmp(t_g, t_w) != 0) {			\
		__atomic_add_fetch(&t_failed, 1, __ATOMIC_RELAXED);						\
		fprintf(stderr, "%s:%d: %s\n  got:  %s\n  want: %s\n",	\
		    __FILE__, __LINE__, #got, t_g ? t_g : "(null)", t_w);\
	}								\
} while (0)

#define T_INTEQ(got, want) do {						\
	long long t_g = (long long)(got), t_w = (long long)(want);	\
	__atomic_add_fetch(&t_run, 1, __ATOMIC_RELAXED);							\
	if (t_g != t_w) {						\
		__atomic_add_fetch(&t_failed, 1, __ATOMIC_RELAXED);						\
		fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n",	\
		    __FILE__, __LINE__, #got, t_g, t_w);		\
	}								\
} while (0)

static inline int
t_done(void)
{
	fprintf(stderr, "%d checks, %d failed\n", t_run, t_failed);
	return t_failed ? 1 : 0;
}

#endif
