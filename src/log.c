/*
 * log.c: the logger's settings and context, and the output of events
 * (see log.h): each event is looked up in the table (events.c), its fields
 * walked (logfmt.c), then written as a JSON line or text on stderr, or
 * sent to journald (journal.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "journal.h"
#include "log.h"
#include "logfmt.h"

/* Room for the most fields, log_error and the context. */
#define LOG_FIELDS	(LOGFMT_MAX_FIELDS + 2)

static enum log_format	log_fmt = LOG_FORMAT_AUTO;
static enum log_format	log_active = LOG_FORMAT_TEXT;
static int		log_level = LOG_INFO;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"
};

/*
 * A field added to every event while it is set (log_context).  Only the
 * loop thread logs (pool.h: background jobs never do, their results are
 * logged on the loop), so nothing here is shared between threads.
 */
static char		*ctx_name;
static char		*ctx_value;

/* Turn auto into a concrete format, once per log_setup. */
static void
resolve_format(void)
{
	enum log_format	active = log_fmt;

	if (log_fmt == LOG_FORMAT_AUTO) {
		if (journal_is_stderr())
			active = LOG_FORMAT_JOURNAL;
		else if (isatty(STDERR_FILENO))
			active = LOG_FORMAT_TEXT;
		else
			active = LOG_FORMAT_JSON;
	}
	if (active == LOG_FORMAT_JOURNAL && journal_open() == -1)
		active = LOG_FORMAT_JSON;
	log_active = active;
}

void
log_setup(enum log_format fmt, int level)
{
	log_fmt = fmt;
	log_level = level;
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

const char *
log_level_name(int prio)
{
	return prio >= 0 && prio <= LOG_DEBUG ? level_names[prio] : "error";
}

int
log_enabled(int prio)
{
	return prio <= log_level;
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

/* The event as text: "event k=v ...", values quoted where needed. */
static void
render_text(struct buf *out, const char *event,
    const struct logfmt_field *fv, size_t nf, const struct buf *sb)
{
	size_t	i;

	buf_adds(out, event);
	for (i = 0; i < nf; i++) {
		const unsigned char *v = sb->data + fv[i].off;

		buf_printf(out, " %s=", fv[i].name);
		if (fv[i].kind == LOGFMT_NULL)
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

/*
 * Whether a field's value goes into JSON as it is: a number (inf and nan
 * stay strings), or true or false (a boolean).
 */
static bool
is_bare(const struct logfmt_field *f, const unsigned char *v)
{
	if (f->kind == LOGFMT_NUMBER)
		return f->len > 0 && strspn((const char *)v,
		    "0123456789-+.eE") >= f->len;
	return f->kind == LOGFMT_STRING && ((f->len == 4 &&
	    memcmp(v, "true", 4) == 0) || (f->len == 5 &&
	    memcmp(v, "false", 5) == 0));
}

/* The event as one JSON object. */
static void
render_json(struct buf *out, const char *ts, int prio, const char *event,
    const struct logfmt_field *fv, size_t nf, const struct buf *sb)
{
	size_t	i;

	buf_printf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"",
	    ts, level_names[prio]);
	json_escape(out, (const unsigned char *)event, strlen(event));
	buf_addc(out, '"');
	for (i = 0; i < nf; i++) {
		const unsigned char *v = sb->data + fv[i].off;

		buf_printf(out, ",\"%s\":", fv[i].name);
		if (fv[i].kind == LOGFMT_NULL)
			buf_adds(out, "null");
		else if (is_bare(&fv[i], v))
			buf_add(out, v, fv[i].len);
		else {
			/* inf/nan and the like stay strings. */
			buf_addc(out, '"');
			json_escape(out, v, fv[i].len);
			buf_addc(out, '"');
		}
	}
	buf_adds(out, "}");
}

/*
 * To journald; if it cannot take the entry (gone, too big), the line goes
 * to stderr with the "<N>" prefix journald reads a priority from.
 */
static void
send_journal(int prio, const char *event, const struct event *ev,
    const struct logfmt_field *fv, size_t nf, const struct buf *sb)
{
	struct buf	 msg, line;
	char		 id[33];

	if (ev != NULL)
		snprintf(id, sizeof id, "%s", events_message_id(ev));
	else
		events_hash_id(event, id);
	buf_init(&msg);
	render_text(&msg, event, fv, nf, sb);
	if (journal_send(prio, event, id, &msg, fv, nf, sb) == -1) {
		buf_init(&line);
		buf_printf(&line, "<%d>", prio);
		buf_add(&line, msg.data, msg.len);
		buf_addc(&line, '\n');
		write_all(STDERR_FILENO, line.data, line.len);
		buf_free(&line);
	}
	buf_free(&msg);
}

#ifdef PCD_DEBUG
/*
 * A debug build stops at an event, or a field of one, that the table
 * does not have (log.h), saying which.
 */
static PCD_NORETURN void
not_in_table(const char *event, const char *field)
{
	char	line[256];

	if (field == NULL)
		snprintf(line, sizeof line, "programs-cached: log_event: event "
		    "\"%s\" is not in the table (src/events.c)\n", event);
	else
		snprintf(line, sizeof line, "programs-cached: log_event: event "
		    "%s has no field %s in the table (src/events.c)\n", event,
		    field);
	write_all(STDERR_FILENO, (const unsigned char *)line, strlen(line));
	abort();
}

/* Each field is one of the row's (log_error is the walker's own). */
static void
check_fields(const struct event *ev, const struct logfmt_field *fv,
    size_t nf)
{
	size_t	i;

	for (i = 0; i < nf; i++)
		if (strcmp(fv[i].name, "log_error") != 0 &&
		    events_field_index(ev, fv[i].name,
		    strlen(fv[i].name)) == -1)
			not_in_table(ev->name, fv[i].name);
}
#endif

void
log_eventv(int prio, const char *event, const char *fields, va_list ap)
{
	const struct event	*ev = events_find(event);
	struct logfmt_field	 fv[LOG_FIELDS];
	struct buf		 sb, out;
	size_t			 nf;
	char			 ts[80];
	int			 saved_errno = errno;

#ifdef PCD_DEBUG
	if (ev == NULL)
		not_in_table(event, NULL);
#endif
	if (!log_enabled(prio))
		return;
	if (prio < 0 || prio > LOG_DEBUG)
		prio = LOG_ERR;
	buf_init(&sb);
	buf_init(&out);
	nf = logfmt_walk(fields, ap, fv, &sb);
#ifdef PCD_DEBUG
	check_fields(ev, fv, nf);
#endif
	/* The context (refresh_id) rides on every event. */
	if (ctx_name != NULL)
		logfmt_add(fv, &nf, &sb, ctx_name, ctx_value);

	switch (log_active) {
	case LOG_FORMAT_JOURNAL:
		send_journal(prio, event, ev, fv, nf, &sb);
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
		render_json(&out, ts, prio, event, fv, nf, &sb);
		buf_addc(&out, '\n');
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
	free(ctx_name);
	free(ctx_value);
	ctx_name = ctx_value = NULL;
	if (name != NULL && value != NULL) {
		ctx_name = xstrdup(name);
		ctx_value = xstrdup(value);
	}
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
