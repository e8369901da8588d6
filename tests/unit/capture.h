/*
 * capture.h: run a statement with stderr redirected to a file, and keep
 * what it wrote in captured[] (the unit tests of the logger).
 */
#ifndef PCD_CAPTURE_H
#define PCD_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

static char	captured[8192];

#define CAPTURE(stmt) do {						\
	FILE	*tmp_ = tmpfile();					\
	int	 save_ = dup(2);					\
	size_t	 n_;							\
	fflush(stderr);							\
	dup2(fileno(tmp_), 2);						\
	stmt;								\
	dup2(save_, 2);							\
	close(save_);							\
	rewind(tmp_);							\
	n_ = fread(captured, 1, sizeof captured - 1, tmp_);		\
	captured[n_] = '\0';						\
	fclose(tmp_);							\
} while (0)

#endif
