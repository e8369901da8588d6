/*
 * log.c: structured events on stderr (JSON lines or text) or to journald.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

#define LOG_MAX_FIELDS	32
#define JOURNAL_SOCKET	"/run/systemd/journal/socket"

enum field_kind {
	FIELD_STRING,
	FIELD_NUMBER,
	FIELD_NULL
};

struct field {
	char		 name[32];
	enum field_kind	 kind;
	size_t		 off;		/* value in the scratch buffer */
	size_t		 len;
};

static enum log_format	log_fmt = LOG_FORMAT_AUTO;
static enum log_format	log_active = LOG_FORMAT_TEXT;
static int		log_level = LOG_INFO;
static int		journal_fd = -1;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"
};

/*
 * A field added to every event while it is set (log_context).  The loop
 * sets it; the snapshot saver thread logs too, hence the lock.
 */
static pthread_mutex_t	 ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static char		*ctx_name;
static char		*ctx_value;

static int	stderr_is_journal(void);
static void	resolve_format(void);

/* Whether stderr is the journal's stream socket (systemd.exec(5)). */
static int
stderr_is_journal(void)
{
	const char		*e = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			*end;

	if (e == NULL)
		return 0;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (*end != ':' || errno != 0)
		return 0;
	ino = strtoull(end + 1, &end, 10);
	if (*end != '\0' || errno != 0)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * Turn auto into a concrete format, once per log_setup.  The snapshot
 * saver thread logs too: the settings it reads are stored atomically.
 */
static void
resolve_format(void)
{
	enum log_format	active = log_fmt;
	int		fd;

	if (log_fmt == LOG_FORMAT_AUTO) {
		if (stderr_is_journal())
			active = LOG_FORMAT_JOURNAL;
		else if (isatty(STDERR_FILENO))
			active = LOG_FORMAT_TEXT;
		else
			active = LOG_FORMAT_JSON;
	}
	if (active == LOG_FORMAT_JOURNAL &&
	    __atomic_load_n(&journal_fd, __ATOMIC_ACQUIRE) == -1) {
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd == -1)
			active = LOG_FORMAT_JSON;
		else
			__atomic_store_n(&journal_fd, fd, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&log_active, active, __ATOMIC_RELEASE);
}

void
log_setup(enum log_format fmt, int level)
{
	log_fmt = fmt;
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
	resolve_format();
}

int
log_format_parse(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return LOG_FORMAT_AUTO;
	if (strcmp(s, "json") == 0)
		return LOG_FORMAT_JSON;
	if (strcmp(s, "journal") == 0)
		return LOG_FORMAT_JOURNAL;
	if (strcmp(s, "text") == 0)
		return LOG_FORMAT_TEXT;
	return -1;
}

int
log_level_parse(const char *s)
{
	if (strcmp(s, "error") == 0 || strcmp(s, "err") == 0)
		return LOG_ERR;
	if (strcmp(s, "warning") == 0 || strcmp(s, "warn") == 0)
		return LOG_WARNING;
	if (strcmp(s, "notice") == 0)
		return LOG_NOTICE;
	if (strcmp(s, "info") == 0)
		return LOG_INFO;
	if (strcmp(s, "debug") == 0)
		return LOG_DEBUG;
	return -1;
}

int
log_enabled(int prio)
{
	return prio <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/*
 * One conversion of a field list, as parsed: what the walker supports is
 * exactly what conv_parse accepts (and log_check_format checks).
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
static enum field_kind
take_value(const struct conv *cv, va_list *ap, struct buf *sb)
{
	char		 spec[24];
	enum field_kind	 kind = FIELD_NUMBER;

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
			kind = FIELD_STRING;	/* hex is an identifier */
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
		kind = FIELD_STRING;
		buf_addc(sb, (unsigned char)va_arg(*ap, int));
		break;
	default: {	/* 's', the only one left after conv_parse */
		int		 prec = cv->prec;
		const char	*s;

		if (prec == -2)
			prec = va_arg(*ap, int);
		s = va_arg(*ap, const char *);
		if (s == NULL)
			kind = FIELD_NULL;
		else {
			kind = FIELD_STRING;
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
 * Split the field list into fields, values into sb.  A conversion the
 * walker does not support stops it there (no argument after it is read,
 * since its size is unknown): the field says so, and a last field
 * log_error names the conversion.
 */
static size_t
parse_fields(const char *fmt, va_list ap, struct field *fv, struct buf *sb)
{
	const char	*p = fmt, *at = NULL, *why = NULL;
	size_t		 nf = 0, nlen, nconv, nlit;
	enum field_kind	 kind;
	struct conv	 cv;
	va_list		 aq;
	bool		 broken = false;

	if (p == NULL)
		return 0;
	va_copy(aq, ap);
	while (*p != '\0' && !broken) {
		struct field	*fd;
		const char	*eq;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		eq = strchr(p, '=');
		if (eq == NULL || nf == LOG_MAX_FIELDS - 1)
			break;
		fd = &fv[nf++];
		nlen = (size_t)(eq - p);
		if (nlen >= sizeof fd->name)
			nlen = sizeof fd->name - 1;
		memcpy(fd->name, p, nlen);
		fd->name[nlen] = '\0';
		p = eq + 1;
		fd->off = sb->len;
		/*
		 * A value is literal text and conversions up to the next
		 * space; a lone conversion keeps its kind (number, null).
		 */
		nconv = nlit = 0;
		fd->kind = FIELD_STRING;
		while (*p != '\0' && *p != ' ') {
			if (*p == '%' && p[1] != '%') {
				at = p;
				if (conv_parse(&p, &cv, &why) == -1) {
					buf_printf(sb, "?%s", why);
					broken = true;
					nlit++;
					break;
				}
				kind = take_value(&cv, &aq, sb);
				if (kind == FIELD_NULL && (nconv + nlit > 0 ||
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
		if (nconv != 1 || nlit != 0)
			fd->kind = FIELD_STRING;
		fd->len = sb->len - fd->off;
	}
	if (broken) {
		struct field	*fd = &fv[nf++];

		snprintf(fd->name, sizeof fd->name, "log_error");
		fd->kind = FIELD_STRING;
		fd->off = sb->len;
		buf_printf(sb, "%s: \"%.*s\" (the fields after it are lost)",
		    why, (int)(p - at), at);
		fd->len = sb->len - fd->off;
	}
	va_end(aq);
	return nf;
}

int
log_check_format(const char *fields, char *why, size_t len)
{
	const char	*p = fields, *eq, *at, *w;
	struct conv	 cv;
	size_t		 nf = 0, i;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			snprintf(why, len, "no name=value at \"%s\"", p);
			return -1;
		}
		for (i = 0; p + i < eq; i++)
			if (!islower((unsigned char)p[i]) &&
			    !isdigit((unsigned char)p[i]) && p[i] != '_') {
				snprintf(why, len, "field name \"%.*s\" is not "
				    "[a-z0-9_]", (int)(eq - p), p);
				return -1;
			}
		if (++nf >= LOG_MAX_FIELDS) {
			snprintf(why, len, "more than %d fields",
			    LOG_MAX_FIELDS - 1);
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

/* Append s as the body of a JSON string (without quotes). */
static void
json_escape(struct buf *b, const unsigned char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		switch (c) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(b, "\\u%04x", c);
			else
				buf_addc(b, c);
		}
	}
}

static void
timestamp(char *out, size_t len)
{
	uint64_t	ms = wall_ms();
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

/* Whether a text value needs quotes to stay one token. */
static int
needs_quotes(const unsigned char *s, size_t len)
{
	size_t	i;

	if (len == 0)
		return 1;
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == 0x7f)
			return 1;
	return 0;
}

static void
render_text(struct buf *out, const char *event, const struct field *fv,
    size_t nf, const struct buf *sb)
{
	size_t	i;

	buf_adds(out, event);
	for (i = 0; i < nf; i++) {
		const unsigned char *v = sb->data + fv[i].off;

		buf_printf(out, " %s=", fv[i].name);
		if (fv[i].kind == FIELD_NULL)
			buf_adds(out, "-");
		else if (needs_quotes(v, fv[i].len)) {
			buf_addc(out, '"');
			json_escape(out, v, fv[i].len);
			buf_addc(out, '"');
		} else
			buf_add(out, v, fv[i].len);
	}
}

static void
write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return;		/* nowhere left to complain */
		}
		p += n;
		len -= (size_t)n;
	}
}

/* One journal field; values with a newline use the binary form. */
static void
journal_field(struct buf *dg, const char *name, const void *v, size_t len)
{
	size_t		i;
	uint64_t	le;
	unsigned char	n8[8];

	for (i = 0; name[i] != '\0'; i++)
		buf_addc(dg, (unsigned char)toupper((unsigned char)name[i]));
	if (memchr(v, '\n', len) == NULL) {
		buf_addc(dg, '=');
		buf_add(dg, v, len);
	} else {
		buf_addc(dg, '\n');
		le = len;
		for (i = 0; i < 8; i++)
			n8[i] = (unsigned char)(le >> (8 * i));
		buf_add(dg, n8, 8);
		buf_add(dg, v, len);
	}
	buf_addc(dg, '\n');
}

void
log_message_id(const char *event, char out[33])
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		d[16];
	char			in[160];
	size_t			i;

	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	snprintf(in, sizeof in, "programs-cached:%s", event);
	crypto_generichash(d, sizeof d, (const unsigned char *)in, strlen(in),
	    NULL, 0);
	for (i = 0; i < sizeof d; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[32] = '\0';
}

/* journald's own fields, which ours must not overwrite (systemd.journal-fields(7)). */
static const char *const journal_own[] = {
	"message", "message_id", "priority", "code_file", "code_line",
	"code_func", "errno", "invocation_id", "user_invocation_id",
	"syslog_facility", "syslog_identifier", "syslog_pid",
	"syslog_timestamp", "syslog_raw", "documentation", "tid", "unit",
	"user_unit", "exit_code", "exit_status", "event", NULL
};

int
log_field_collides(const char *name)
{
	size_t	i;

	for (i = 0; journal_own[i] != NULL; i++)
		if (strcmp(journal_own[i], name) == 0)
			return 1;
	return 0;
}

static void
send_journal(int prio, const char *event, const struct field *fv, size_t nf,
    const struct buf *sb)
{
	struct sockaddr_un	 sa = { .sun_family = AF_UNIX };
	struct buf		 dg, msg;
	char			 p[4], id[33], name[40];
	size_t			 i;

	buf_init(&dg);
	buf_init(&msg);
	render_text(&msg, event, fv, nf, sb);
	journal_field(&dg, "MESSAGE", msg.data, msg.len);
	snprintf(p, sizeof p, "%d", prio);
	journal_field(&dg, "PRIORITY", p, strlen(p));
	journal_field(&dg, "EVENT", event, strlen(event));
	log_message_id(event, id);
	journal_field(&dg, "MESSAGE_ID", id, strlen(id));
	journal_field(&dg, "SYSLOG_IDENTIFIER", "programs-cached",
	    strlen("programs-cached"));
	for (i = 0; i < nf; i++) {
		if (fv[i].kind == FIELD_NULL)
			continue;
		/* Our own names never overwrite journald's (unit test). */
		if (log_field_collides(fv[i].name)) {
			snprintf(name, sizeof name, "pcd_%.31s", fv[i].name);
			journal_field(&dg, name, sb->data + fv[i].off,
			    fv[i].len);
			continue;
		}
		journal_field(&dg, fv[i].name, sb->data + fv[i].off,
		    fv[i].len);
	}
	memcpy(sa.sun_path, JOURNAL_SOCKET, sizeof JOURNAL_SOCKET);
	if (getenv("PCD_JOURNAL_SOCKET") != NULL) {
		/* Tests stand in for journald with their own socket. */
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s",
		    getenv("PCD_JOURNAL_SOCKET"));
	}
	if (sendto(__atomic_load_n(&journal_fd, __ATOMIC_ACQUIRE), dg.data,
	    dg.len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa) == -1) {
		/*
		 * Journal gone or entry too big: keep the line on stderr,
		 * with the "<N>" prefix journald reads a priority from.
		 */
		buf_truncate(&dg, 0);
		buf_printf(&dg, "<%d>", prio);
		buf_add(&dg, msg.data, msg.len);
		buf_addc(&dg, '\n');
		write_all(STDERR_FILENO, dg.data, dg.len);
	}
	buf_free(&dg);
	buf_free(&msg);
}

/*
 * Whether a field's value goes into JSON as it is: a number (inf and nan
 * stay strings), or true or false (a boolean).
 */
static bool
is_bare(const struct field *f, const unsigned char *v)
{
	if (f->kind == FIELD_NUMBER)
		return f->len > 0 && strspn((const char *)v,
		    "0123456789-+.eE") >= f->len;
	return f->kind == FIELD_STRING && ((f->len == 4 &&
	    memcmp(v, "true", 4) == 0) || (f->len == 5 &&
	    memcmp(v, "false", 5) == 0));
}

void
log_eventv(int prio, const char *event, const char *fields, va_list ap)
{
	struct field	 fv[LOG_MAX_FIELDS];
	struct buf	 sb, out;
	size_t		 nf, i;
	char		 ts[80];
	int		 saved_errno = errno;

	if (!log_enabled(prio))
		return;
	if (prio < 0 || prio > LOG_DEBUG)
		prio = LOG_ERR;
	buf_init(&sb);
	buf_init(&out);
	nf = parse_fields(fields, ap, fv, &sb);
	pthread_mutex_lock(&ctx_lock);
	if (ctx_name != NULL && nf < LOG_MAX_FIELDS) {
		/* The context (refresh_id) rides on every event. */
		snprintf(fv[nf].name, sizeof fv[nf].name, "%s", ctx_name);
		fv[nf].kind = FIELD_STRING;
		fv[nf].off = sb.len;
		buf_adds(&sb, ctx_value);
		fv[nf].len = sb.len - fv[nf].off;
		nf++;
	}
	pthread_mutex_unlock(&ctx_lock);

	switch (__atomic_load_n(&log_active, __ATOMIC_ACQUIRE)) {
	case LOG_FORMAT_JOURNAL:
		send_journal(prio, event, fv, nf, &sb);
		break;
	case LOG_FORMAT_TEXT:
		timestamp(ts, sizeof ts);
		buf_printf(&out, "%s %s ", ts, level_names[prio]);
		render_text(&out, event, fv, nf, &sb);
		buf_addc(&out, '\n');
		write_all(STDERR_FILENO, out.data, out.len);
		break;
	case LOG_FORMAT_AUTO:
	case LOG_FORMAT_JSON:
		timestamp(ts, sizeof ts);
		buf_printf(&out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"",
		    ts, level_names[prio]);
		json_escape(&out, (const unsigned char *)event, strlen(event));
		buf_addc(&out, '"');
		for (i = 0; i < nf; i++) {
			const unsigned char *v = sb.data + fv[i].off;

			buf_printf(&out, ",\"%s\":", fv[i].name);
			if (fv[i].kind == FIELD_NULL)
				buf_adds(&out, "null");
			else if (is_bare(&fv[i], v))
				buf_add(&out, v, fv[i].len);
			else {
				/* inf/nan and the like stay strings. */
				buf_addc(&out, '"');
				json_escape(&out, v, fv[i].len);
				buf_addc(&out, '"');
			}
		}
		buf_adds(&out, "}\n");
		write_all(STDERR_FILENO, out.data, out.len);
		break;
	}
	buf_free(&sb);
	buf_free(&out);
	errno = saved_errno;
}

void
log_context(const char *name, const char *value)
{
	pthread_mutex_lock(&ctx_lock);
	free(ctx_name);
	free(ctx_value);
	ctx_name = ctx_value = NULL;
	if (name != NULL && value != NULL) {
		ctx_name = xstrdup(name);
		ctx_value = xstrdup(value);
	}
	pthread_mutex_unlock(&ctx_lock);
}

void
log_event(int prio, const char *event, const char *fields, ...)
{
	va_list	ap;

	va_start(ap, fields);
	log_eventv(prio, event, fields, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (!log_enabled(LOG_DEBUG))
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_event(LOG_DEBUG, "debug", "msg=%s", msg);
	free(msg);
}

/* No allocation here: fatal may be reporting that malloc failed. */
static PCD_NORETURN void
fatal_common(int with_errno, const char *fmt, va_list ap)
{
	char	msg[512], line[1024];
	int	saved = errno;
	size_t	n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(saved));
	}
	if (log_active == LOG_FORMAT_JSON) {
		/* msg is ours; quotes in it are replaced, not escaped. */
		for (n = 0; msg[n] != '\0'; n++)
			if (msg[n] == '"' || msg[n] == '\\' ||
			    (unsigned char)msg[n] < 0x20)
				msg[n] = '\'';
		snprintf(line, sizeof line,
		    "{\"level\":\"crit\",\"event\":\"fatal\",\"error\":\"%s\"}\n",
		    msg);
	} else if (log_active == LOG_FORMAT_JOURNAL) {
		/* stderr is the journal: "<2>" sets PRIORITY (crit). */
		snprintf(line, sizeof line, "<2>fatal error=\"%s\"\n", msg);
	} else
		snprintf(line, sizeof line, "crit fatal error=\"%s\"\n", msg);
	write_all(STDERR_FILENO, (const unsigned char *)line, strlen(line));
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fatal_common(1, fmt, ap);
	va_end(ap);	/* not reached */
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fatal_common(0, fmt, ap);
	va_end(ap);	/* not reached */
}
