/*
 * logfmt.c: walking printf-style field lists (see logfmt.h): the values
 * are formatted by the C library, one conversion at a time, and only
 * conversions whose argument size is known are read.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"

/*
 * One conversion of a field list, as parsed: what the walker supports is
 * exactly what conv_parse accepts (and logfmt_check checks).
 */
struct conv {
	char	 c;		/* d i u x c f g e s */
	int	 lng;		/* number of 'l' */
	int	 zsz, jmx;
	int	 prec;		/* -1 none, -2 '*' (an int argument) */
	char	 spec[16];	/* '%', width and precision digits */
	size_t	 n;
};

/*
 * Parse the conversion at *fmtp (pointing at '%') and advance past it.
 * Supported: an optional width and precision in digits, a precision '*'
 * for %s, the length modifiers l, ll, z and j, and the conversions
 * d i u x c f g e s.  -1 (and why) for anything else: flags, a width '*',
 * h, hh, L, t, %p, %n, ...
 */
static int
conv_parse(const char **fmtp, struct conv *cv, const char **why)
{
	const char	*f = *fmtp + 1;

	memset(cv, 0, sizeof *cv);
	cv->prec = -1;
	cv->spec[cv->n++] = '%';
	while (isdigit((unsigned char)*f)) {
		if (cv->n < sizeof cv->spec - 4)
			cv->spec[cv->n++] = *f;
		f++;
	}
	if (*f == '.') {
		f++;
		if (*f == '*') {
			cv->prec = -2;
			f++;
		} else {
			cv->prec = 0;
			if (cv->n < sizeof cv->spec - 4)
				cv->spec[cv->n++] = '.';
			while (isdigit((unsigned char)*f)) {
				cv->prec = cv->prec * 10 + (*f - '0');
				if (cv->n < sizeof cv->spec - 4)
					cv->spec[cv->n++] = *f;
				f++;
			}
		}
	}
	for (;; f++) {
		if (*f == 'l' && cv->lng < 2)
			cv->lng++;
		else if (*f == 'z')
			cv->zsz = 1;
		else if (*f == 'j')
			cv->jmx = 1;
		else
			break;
	}
	cv->c = *f;
	*fmtp = *f != '\0' ? f + 1 : f;
	if (cv->c == '\0' || strchr("diuxcfges", cv->c) == NULL) {
		*why = "unsupported conversion";
		return -1;
	}
	if (cv->prec == -2 && cv->c != 's') {
		*why = "a '*' precision is for %s only";
		return -1;
	}
	if ((cv->c == 'c' || cv->c == 's' || strchr("fge", cv->c) != NULL) &&
	    (cv->lng > 0 || cv->zsz || cv->jmx)) {
		*why = "a length modifier on a conversion that takes none";
		return -1;
	}
	return 0;
}

/* Consume the argument of a parsed conversion; append its text to sb. */
static enum logfmt_kind
take_value(const struct conv *cv, va_list *ap, struct buf *sb)
{
	char		 spec[24];
	enum logfmt_kind	 kind = LOGFMT_NUMBER;

	memcpy(spec, cv->spec, cv->n);
	switch (cv->c) {
	case 'd':
	case 'i':
		if (cv->zsz)
			buf_printf(sb, "%zd", va_arg(*ap, ssize_t));
		else if (cv->jmx)
			buf_printf(sb, "%jd", va_arg(*ap, intmax_t));
		else if (cv->lng >= 2)
			buf_printf(sb, "%lld", va_arg(*ap, long long));
		else if (cv->lng == 1)
			buf_printf(sb, "%ld", va_arg(*ap, long));
		else
			buf_printf(sb, "%d", va_arg(*ap, int));
		break;
	case 'u':
	case 'x':
		if (cv->c == 'x')
			kind = LOGFMT_STRING;	/* hex is an identifier */
		spec[cv->n] = 'j';
		spec[cv->n + 1] = cv->c;
		spec[cv->n + 2] = '\0';
		/* The types differ by platform, even where they do not here. */
		/* NOLINTBEGIN(bugprone-branch-clone) */
		if (cv->zsz)
			buf_printf(sb, spec, (uintmax_t)va_arg(*ap, size_t));
		else if (cv->jmx)
			buf_printf(sb, spec, va_arg(*ap, uintmax_t));
		else if (cv->lng >= 2)
			buf_printf(sb, spec,
			    (uintmax_t)va_arg(*ap, unsigned long long));
		else if (cv->lng == 1)
			buf_printf(sb, spec,
			    (uintmax_t)va_arg(*ap, unsigned long));
		else
			buf_printf(sb, spec, (uintmax_t)va_arg(*ap, unsigned));
		/* NOLINTEND(bugprone-branch-clone) */
		break;
	case 'f':
	case 'g':
	case 'e':
		spec[cv->n] = cv->c;
		spec[cv->n + 1] = '\0';
		buf_printf(sb, spec, va_arg(*ap, double));
		break;
	case 'c':
		kind = LOGFMT_STRING;
		buf_addc(sb, (unsigned char)va_arg(*ap, int));
		break;
	default: {	/* 's', the only one left after conv_parse */
		int		 prec = cv->prec;
		const char	*s;

		if (prec == -2)
			prec = va_arg(*ap, int);
		s = va_arg(*ap, const char *);
		if (s == NULL)
			kind = LOGFMT_NULL;
		else {
			kind = LOGFMT_STRING;
			if (prec >= 0)
				buf_add(sb, s, strnlen(s, (size_t)prec));
			else
				buf_adds(sb, s);
		}
		break;
	}
	}
	return kind;
}

/*
 * Read one value (literal text and conversions up to the next space) at
 * *pp into sb and fd's kind; -1 at a conversion the walker does not
 * support, with *at pointing at it and *why saying why.
 */
static int
walk_value(const char **pp, va_list *aq, struct logfmt_field *fd,
    struct buf *sb, const char **at, const char **why)
{
	const char		*p = *pp;
	size_t			 nconv = 0, nlit = 0;
	enum logfmt_kind	 kind;
	struct conv		 cv;
	int			 rc = 0;

	fd->off = sb->len;
	fd->kind = LOGFMT_STRING;
	while (*p != '\0' && *p != ' ') {
		if (*p == '%' && p[1] != '%') {
			*at = p;
			if (conv_parse(&p, &cv, why) == -1) {
				buf_printf(sb, "?%s", *why);
				nlit++;
				rc = -1;
				break;
			}
			kind = take_value(&cv, aq, sb);
			if (kind == LOGFMT_NULL && (nconv + nlit > 0 ||
			    (*p != '\0' && *p != ' ')))
				buf_adds(sb, "null");
			fd->kind = kind;
			nconv++;
		} else {
			if (*p == '%')
				p++;
			buf_addc(sb, (unsigned char)*p++);
			nlit++;
		}
	}
	/* A lone conversion keeps its kind (number, null). */
	if (nconv != 1 || nlit != 0)
		fd->kind = LOGFMT_STRING;
	fd->len = sb->len - fd->off;
	*pp = p;
	return rc;
}

void
logfmt_add(struct logfmt_field *fv, size_t *nf, struct buf *sb,
    const char *name, const char *value)
{
	struct logfmt_field	*fd = &fv[(*nf)++];

	snprintf(fd->name, sizeof fd->name, "%s", name);
	fd->kind = LOGFMT_STRING;
	fd->off = sb->len;
	buf_adds(sb, value);
	fd->len = sb->len - fd->off;
}

/*
 * A conversion the walker does not support stops it there (no argument
 * after it is read, since its size is unknown): the field says so, and a
 * last field log_error names the conversion.
 */
size_t
logfmt_walk(const char *fields, va_list ap, struct logfmt_field *fv,
    struct buf *sb)
{
	const char	*p = fields, *at = NULL, *why = NULL;
	size_t		 nf = 0, nlen;
	va_list		 aq;
	bool		 broken = false;
	char		*msg;

	if (p == NULL)
		return 0;
	va_copy(aq, ap);
	while (*p != '\0' && !broken) {
		struct logfmt_field	*fd;
		const char	*eq;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		eq = strchr(p, '=');
		if (eq == NULL || nf == LOGFMT_MAX_FIELDS)
			break;
		fd = &fv[nf++];
		nlen = (size_t)(eq - p);
		if (nlen >= sizeof fd->name)
			nlen = sizeof fd->name - 1;
		memcpy(fd->name, p, nlen);
		fd->name[nlen] = '\0';
		p = eq + 1;
		broken = walk_value(&p, &aq, fd, sb, &at, &why) == -1;
	}
	if (broken) {
		msg = xasprintf("%s: \"%.*s\" (the fields after it are lost)",
		    why, (int)(p - at), at);
		logfmt_add(fv, &nf, sb, "log_error", msg);
		free(msg);
	}
	va_end(aq);
	return nf;
}

int
logfmt_check(const char *fields, char *why, size_t len)
{
	const char	*p = fields, *eq, *at, *w;
	struct conv	 cv;
	size_t		 nf = 0;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			snprintf(why, len, "no name=value at \"%s\"", p);
			return -1;
		}
		if (!logfmt_name_ok(p, (size_t)(eq - p))) {
			snprintf(why, len, "field name \"%.*s\" is not "
			    "[a-z0-9_]", (int)(eq - p), p);
			return -1;
		}
		if (++nf > LOGFMT_MAX_FIELDS) {
			snprintf(why, len, "more than %d fields",
			    LOGFMT_MAX_FIELDS);
			return -1;
		}
		for (p = eq + 1; *p != '\0' && *p != ' '; ) {
			if (*p == '%' && p[1] == '%')
				p += 2;
			else if (*p == '%') {
				at = p;
				if (conv_parse(&p, &cv, &w) == -1) {
					snprintf(why, len, "%s: \"%.*s\"", w,
					    (int)(p - at), at);
					return -1;
				}
			} else
				p++;
		}
	}
	return 0;
}

bool
logfmt_name_ok(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (!islower((unsigned char)name[i]) &&
		    !isdigit((unsigned char)name[i]) && name[i] != '_')
			return false;
	return len > 0;
}
