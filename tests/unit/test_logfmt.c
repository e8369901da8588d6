/*
 * test_logfmt.c: the table of events (events.c) and the log_event calls
 * in src/ agree: every call names a row, logs its priority and only its
 * fields, in its order, with every field it does not mark optional; every
 * row is logged somewhere; every field list is one the walker formats
 * (logfmt.c refuses what it does not support instead of reading the wrong
 * argument); and programs-cached(8) lists the table as it is.  Run from
 * the top of the tree (make check-unit).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "events.h"
#include "journal.h"
#include "log.h"
#include "logfmt.h"
#include "capture.h"
#include "t.h"

/* The whole of a file, NUL-terminated; NULL if it cannot be read. */
static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*s;
	long	 n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		fclose(f);
		return NULL;
	}
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Skip blanks and comments. */
static const char *
skip_space(const char *p)
{
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");

			p = e != NULL ? e + 2 : p + strlen(p);
		} else
			return p;
	}
}

/*
 * Read adjacent C string literals at p into out (escapes decoded enough
 * for format checking); the end, or NULL if p is not a literal.
 */
static const char *
literals(const char *p, char *out, size_t len)
{
	size_t	n = 0;
	int	any = 0;

	for (p = skip_space(p); *p == '"'; p = skip_space(p)) {
		any = 1;
		for (p++; *p != '"' && *p != '\0'; p++) {
			char c = *p;

			if (c == '\\') {
				p++;
				c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
			}
			if (n + 1 < len)
				out[n++] = c;
		}
		if (*p == '"')
			p++;
	}
	out[n] = '\0';
	return any ? p : NULL;
}

/* Skip one argument (to the next top-level comma or the closing paren). */
static const char *
skip_arg(const char *p)
{
	int	depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\'') {
			char q = *p;

			for (p++; *p != q && *p != '\0'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == '(')
			depth++;
		else if (*p == ')' && depth-- == 0)
			return p;
		else if (*p == ',' && depth == 0)
			return p;
	}
	return p;
}

/* How many call sites had a literal field list, and which rows were used. */
static int	nchecked;
static int	used[256];

static const struct {
	const char	*name;
	int		 prio;
} prio_names[] = {
	{ "LOG_EMERG", LOG_EMERG }, { "LOG_ALERT", LOG_ALERT },
	{ "LOG_CRIT", LOG_CRIT }, { "LOG_ERR", LOG_ERR },
	{ "LOG_WARNING", LOG_WARNING }, { "LOG_NOTICE", LOG_NOTICE },
	{ "LOG_INFO", LOG_INFO }, { "LOG_DEBUG", LOG_DEBUG },
};

/* The LOG_* constant that is the whole of the text [p, end), or -1. */
static int
literal_prio(const char *p, const char *end)
{
	size_t	i, n;

	p = skip_space(p);
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	n = (size_t)(end - p);
	for (i = 0; i < sizeof prio_names / sizeof prio_names[0]; i++)
		if (strlen(prio_names[i].name) == n &&
		    strncmp(prio_names[i].name, p, n) == 0)
			return prio_names[i].prio;
	return -1;
}

/* Whether a row has a pattern field (a field list built at run time). */
static int
has_pattern(const struct event *ev)
{
	const char		*spec = ev->fields;
	struct event_field	 f;

	while (events_field_next(&spec, &f))
		if (f.pattern)
			return 1;
	return 0;
}

/*
 * The fields of a call site against its row: each one the row's, in the
 * row's order (a pattern may repeat), and every field the row requires.
 */
static void
check_fields(const char *where, const struct event *ev, const char *fields)
{
	const char		*p = fields, *eq, *spec;
	struct event_field	 f;
	int			 last = -1, at, i, seen[64];

	memset(seen, 0, sizeof seen);
	while ((eq = strchr(p, '=')) != NULL) {
		while (*p == ' ')
			p++;
		at = events_field_index(ev, p, (size_t)(eq - p));
		if (at == -1) {
			fprintf(stderr, "%s: %s: field %.*s is not in the "
			    "table (src/events.c)\n", where, ev->name,
			    (int)(eq - p), p);
			T_CHECK(!"every field is one of its event's");
		} else if (at < last) {
			fprintf(stderr, "%s: %s: field %.*s is out of the "
			    "table's order (%s)\n", where, ev->name,
			    (int)(eq - p), p, ev->fields);
			T_CHECK(!"fields come in the table's order");
		} else if (at < 64) {
			seen[at] = 1;
			last = at;
		}
		if ((p = strchr(eq, ' ')) == NULL)
			break;
	}
	spec = ev->fields;
	for (i = 0; events_field_next(&spec, &f); i++)
		if (!f.optional && (i >= 64 || !seen[i])) {
			fprintf(stderr, "%s: %s: no field %.*s, which the table "
			    "does not mark optional\n", where, ev->name,
			    (int)f.len, f.name);
			T_CHECK(!"every required field is logged");
		}
}

/*
 * One call log_event(prio, "event", fields, ...) whose arguments start at
 * p: the event is a row, the priority the row's, the fields the row's.
 */
static void
check_call(const char *where, const char *p)
{
	const struct event	*ev;
	const char		*q;
	char			 name[128], fields[1024], why[256];
	int			 prio;

	q = skip_arg(p);
	prio = literal_prio(p, q);
	if (*q != ',' || (q = literals(q + 1, name, sizeof name)) == NULL) {
		fprintf(stderr, "%s: event name is not a literal\n", where);
		T_CHECK(!"event name is a literal");
		return;
	}
	if ((ev = events_find(name)) == NULL) {
		fprintf(stderr, "%s: event %s is not in the table "
		    "(src/events.c)\n", where, name);
		T_CHECK(!"every event is in the table");
		return;
	}
	used[ev - events_table] = 1;
	if (prio != ev->prio && (ev->flags & EVENT_PRIO_VARIES) == 0) {
		fprintf(stderr, "%s: %s is logged at another priority than "
		    "the table's %s\n", where, name, log_level_name(ev->prio));
		T_CHECK(!"every event is logged at its table priority");
	}
	q = skip_space(q);
	if (*q != ',') {
		T_CHECK(!"a call has a field list");
		return;
	}
	if (literals(q + 1, fields, sizeof fields) == NULL) {
		/* Built at run time: the row says so with a pattern. */
		if (!has_pattern(ev)) {
			fprintf(stderr, "%s: %s: fields are not a literal and "
			    "the table has no pattern for them\n", where, name);
			T_CHECK(!"fields are a literal");
		}
		return;
	}
	nchecked++;
	if (logfmt_check(fields, why, sizeof why) == -1) {
		fprintf(stderr, "%s: %s: %s\n", where, name, why);
		T_CHECK(!"every field list is one the walker formats");
	}
	check_fields(where, ev, fields);
}

/* Check every log_event(prio, "event", "fields", ...) of one file. */
static void
check_file(const char *path, int *fatals)
{
	char		*src = slurp(path), where[600];
	const char	*p, *q;
	int		 line;

	T_CHECK(src != NULL);
	if (src == NULL)
		return;
	for (p = src; (p = strstr(p, "log_event")) != NULL; p++) {
		if (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		line = 1;
		for (q = src; q < p; q++)
			line += *q == '\n';
		snprintf(where, sizeof where, "%s:%d", path, line);
		if (strncmp(p, "log_eventv(", 11) == 0 &&
		    strcmp(path, "src/log.c") != 0) {
			fprintf(stderr, "%s: log_eventv takes no literal event: "
			    "call log_event\n", where);
			T_CHECK(!"only log.c calls log_eventv");
		}
		if (strncmp(p, "log_event(", 10) != 0)
			continue;
		/* The definition, not a call. */
		if (strncmp(skip_space(p + 10), "int prio", 8) == 0)
			continue;
		check_call(where, p + 10);
	}
	for (p = src; (p = strstr(p, "fatal")) != NULL; p++)
		if ((p == src || (!isalnum((unsigned char)p[-1]) &&
		    p[-1] != '_')) && (strncmp(p, "fatal(", 6) == 0 ||
		    strncmp(p, "fatalx(", 7) == 0))
			(*fatals)++;
	free(src);
}

/* Every log_event in src/, and every row used by one. */
static void
test_sources(void)
{
	DIR		*d = opendir("src");
	struct dirent	*de;
	char		 path[512];
	size_t		 n, i;
	int		 fatals = 0;

	T_CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 3 || strcmp(de->d_name + n - 2, ".c") != 0)
			continue;
		snprintf(path, sizeof path, "src/%s", de->d_name);
		check_file(path, &fatals);
	}
	closedir(d);
	/* The scan found the calls (there are dozens). */
	T_CHECK(nchecked > 40);
	for (i = 0; i < events_count; i++) {
		const struct event *ev = &events_table[i];

		/* fatal()'s line is written by log.c itself. */
		if ((ev->flags & EVENT_FATAL) != 0 ? fatals > 0 : used[i])
			continue;
		fprintf(stderr, "src/events.c: %s is never logged\n", ev->name);
		T_CHECK(!"every row of the table is logged somewhere");
	}
}

/* The table itself: sorted, well-formed fields, none of journald's. */
static void
test_table(void)
{
	struct event_field	 f, g;
	const char		*spec, *rest;
	size_t			 i;

	T_CHECK(events_count <= sizeof used / sizeof used[0]);
	for (i = 0; i < events_count; i++) {
		const struct event *ev = &events_table[i];

		if (i > 0 && strcmp(events_table[i - 1].name, ev->name) >= 0) {
			fprintf(stderr, "src/events.c: %s is out of order\n",
			    ev->name);
			T_CHECK(!"the table is sorted by name");
		}
		T_CHECK(logfmt_name_ok(ev->name, strlen(ev->name)));
		T_CHECK(ev->prio >= LOG_EMERG && ev->prio <= LOG_DEBUG);
		T_CHECK(ev->help[0] != '\0' &&
		    ev->help[strlen(ev->help) - 1] != '.');
		T_CHECK(events_find(ev->name) == ev);
		for (spec = ev->fields; events_field_next(&spec, &f); ) {
			char name[64];

			snprintf(name, sizeof name, "%.*s", (int)f.prefix,
			    f.name);
			if (!logfmt_name_ok(f.name, f.prefix) ||
			    journal_field_collides(name) || (f.pattern &&
			    f.name[f.len - 1] != '>')) {
				fprintf(stderr, "src/events.c: %s: bad field "
				    "%.*s\n", ev->name, (int)f.len, f.name);
				T_CHECK(!"field names are [a-z0-9_], not "
				    "journald's");
			}
			for (rest = spec; events_field_next(&rest, &g); )
				if (g.len == f.len &&
				    memcmp(g.name, f.name, f.len) == 0)
					T_CHECK(!"no field twice in a row");
		}
	}
	T_CHECK(events_find("no_such_event") == NULL);
	T_CHECK(events_find("") == NULL);
}

/* The lookups a log line makes: fields, patterns, MESSAGE_IDs. */
static void
test_lookup(void)
{
	const struct event	*ev = events_find("refresh_failed");
	const struct event	*miss = events_find("cache_miss");
	char			 id[33];

	T_CHECK(ev != NULL && miss != NULL);
	if (ev == NULL || miss == NULL)
		return;
	T_INTEQ(events_field_index(ev, "site", 4), 0);
	T_INTEQ(events_field_index(ev, "stage", 5), 1);
	T_INTEQ(events_field_index(ev, "sit", 3), -1);
	T_INTEQ(events_field_index(ev, "sites", 5), -1);
	T_INTEQ(events_field_index(miss, "missing", 7), 1);
	T_INTEQ(events_field_index(miss, "missing_program", 15), 3);
	T_INTEQ(events_field_index(miss, "missing_", 8), -1);
	T_INTEQ(events_field_index(miss, "missing_X", 9), -1);
	/* The ids journal queries already use: BLAKE2b-128 of the name. */
	T_STREQ(events_message_id(ev), "9a0cd848f6f3af2b7112858e6585c181");
	events_hash_id("cache_miss", id);
	T_STREQ(id, "d554fef696253226d659646bb11526ee");
	T_STREQ(events_message_id(miss), id);
}

/*
 * programs-cached(8) lists the table as events_print_mdoc prints it: the
 * list after ".Ss Message IDs", up to its ".El".
 */
static void
test_man_page(void)
{
	char	*man = slurp("man/programs-cached.8"), *want = NULL;
	char	*start = NULL, *end = NULL;
	size_t	 wlen = 0;
	FILE	*f = open_memstream(&want, &wlen);

	T_CHECK(man != NULL && f != NULL);
	if (man == NULL || f == NULL)
		return;
	events_print_mdoc(f);
	fclose(f);
	if ((start = strstr(man, "\n.Ss Message IDs\n")) != NULL &&
	    (start = strstr(start, "\n.Bl ")) != NULL &&
	    (end = strstr(start, "\n.El\n")) != NULL) {
		start++;
		end += 5;
	}
	T_CHECK(start != NULL && end != NULL);
	if (start != NULL && end != NULL &&
	    ((size_t)(end - start) != wlen || memcmp(start, want, wlen) != 0)) {
		fprintf(stderr, "programs-cached(8): the list of events is not "
		    "the table's: run make man-events\n");
		T_CHECK(!"the man page lists the table as it is");
	}
	free(want);
	free(man);
}

/* The checker's own rules. */
static void
test_checker(void)
{
	char	why[128];

	T_INTEQ(logfmt_check("a=%s b=%zu c=%.*s d=%.17g e=%04x f=%lld "
	    "g=%8zu h=SIG%s i=%d%%", why, sizeof why), 0);
	T_INTEQ(logfmt_check("a=%p", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%-8s", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%hd", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%*d", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%.*d", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%n", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=%", why, sizeof why), -1);
	T_INTEQ(logfmt_check("Bad=%s", why, sizeof why), -1);
	T_INTEQ(logfmt_check("nothing", why, sizeof why), -1);
	T_INTEQ(logfmt_check("a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=1 "
	    "l=2 m=3 n=4 o=5 p=6 q=7 r=8 s=9 t=1 u=2 v=3 w=4 x=5 y=6 z=7 "
	    "aa=1 ab=2 ac=3 ad=4", why, sizeof why), 0);
	T_INTEQ(logfmt_check("a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=1 "
	    "l=2 m=3 n=4 o=5 p=6 q=7 r=8 s=9 t=1 u=2 v=3 w=4 x=5 y=6 z=7 "
	    "aa=1 ab=2 ac=3 ad=4 ae=5", why, sizeof why), -1);
}

/* %.*s takes its length; an unsupported conversion stops the walker. */
static void
test_walker(void)
{
	static const char key[4] = { 'a', 'b', 'c', 'd' };	/* no NUL */
	void	*volatile ptr = &captured;

	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(log_event(LOG_ERR, "memcached_error",
	    "op=set key=%.*s bytes=%d error=%s", 3, key, 7, "NOT STORED"));
	T_CHECK(strstr(captured, "\"op\":\"set\",\"key\":\"abc\","
	    "\"bytes\":7,\"error\":\"NOT STORED\"}") != NULL);
	CAPTURE(log_event(LOG_ERR, "memcached_error", "op=%d key=%p "
	    "error=%s", 1, ptr, "never"));
	T_CHECK(strstr(captured, "\"op\":1,\"key\":\"?unsupported "
	    "conversion\",\"log_error\":\"unsupported conversion: \\\"%p\\\" "
	    "(the fields after it are lost)\"}") != NULL);
	T_CHECK(strstr(captured, "never") == NULL);
}

int
main(void)
{
	test_checker();
	test_walker();
	test_table();
	test_lookup();
	test_sources();
	test_man_page();
	return t_done();
}
