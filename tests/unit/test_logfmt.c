/*
 * test_logfmt.c: every log_event in src/ has a field list log.c's walker
 * formats (SPEC §6; the walker refuses what it does not support instead of
 * reading the wrong argument), and the walker handles %.*s and refuses
 * the rest loudly.  Run from the top of the tree (make check-unit).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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

static int	nchecked;

/* Every event name found, for the man page's list of MESSAGE_IDs. */
static char	events[256][128];
static size_t	nevents;

/* Remember an event name once. */
static void
add_event(const char *ev)
{
	size_t	i;

	for (i = 0; i < nevents; i++)
		if (strcmp(events[i], ev) == 0)
			return;
	if (nevents < sizeof events / sizeof events[0])
		snprintf(events[nevents++], sizeof events[0], "%s", ev);
}

/* No field name of a list is one of journald's own. */
static void
check_names(const char *path, int line, const char *ev, const char *fields)
{
	const char	*p = fields, *eq;
	char		 name[64];
	size_t		 n;

	while ((eq = strchr(p, '=')) != NULL) {
		while (*p == ' ')
			p++;
		n = (size_t)(eq - p);
		if (n >= sizeof name)
			n = sizeof name - 1;
		memcpy(name, p, n);
		name[n] = '\0';
		if (log_field_collides(name)) {
			fprintf(stderr, "%s:%d: %s: field %s is journald's\n",
			    path, line, ev, name);
			T_CHECK(!"no field collides with journald's own");
		}
		if ((p = strchr(eq, ' ')) == NULL)
			break;
	}
}

/*
 * Field lists built at run time, each only from conversions the walker
 * supports (the event, and what builds it).
 */
static const char *const built[] = {
	"cache_diverged",	/* monitor.c: " diverged_%s=%%zu" per family */
	"cache_miss",		/* monitor.c: " missing_%s=%%zu" per family */
};

/* Whether an event's field list is known to be built at run time. */
static int
is_built(const char *ev)
{
	size_t	i;

	for (i = 0; i < sizeof built / sizeof built[0]; i++)
		if (strcmp(built[i], ev) == 0)
			return 1;
	return 0;
}

/* Check every log_event(prio, "event", "fields", ...) of one file. */
static void
check_file(const char *path)
{
	char		*src = slurp(path), ev[128], fields[1024], why[256];
	const char	*p, *q;
	int		 line;

	T_CHECK(src != NULL);
	if (src == NULL)
		return;
	for (p = src; (p = strstr(p, "log_event(")) != NULL; p++) {
		if (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		line = 1;
		for (q = src; q < p; q++)
			line += *q == '\n';
		/* The definition and the prototype, not calls. */
		if (strncmp(skip_space(p + 10), "int prio", 8) == 0)
			continue;
		q = skip_arg(p + 10);
		if (*q != ',' || (q = literals(q + 1, ev, sizeof ev)) == NULL) {
			fprintf(stderr, "%s:%d: event name is not a literal\n",
			    path, line);
			T_CHECK(!"event name is a literal");
			continue;
		}
		add_event(ev);
		q = skip_space(q);
		if (*q == ',' && is_built(ev))
			continue;
		if (*q != ',' ||
		    (q = literals(q + 1, fields, sizeof fields)) == NULL) {
			fprintf(stderr, "%s:%d: %s: fields are not a literal\n",
			    path, line, ev);
			T_CHECK(!"fields are a literal");
			continue;
		}
		nchecked++;
		check_names(path, line, ev, fields);
		if (log_check_format(fields, why, sizeof why) == -1) {
			fprintf(stderr, "%s:%d: %s: %s\n", path, line, ev, why);
			T_CHECK(!"every field list is one the walker formats");
		}
	}
	free(src);
}

/* Every log_event in src/. */
static void
test_sources(void)
{
	DIR		*d = opendir("src");
	struct dirent	*de;
	char		 path[512];
	size_t		 n;

	T_CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 3 || strcmp(de->d_name + n - 2, ".c") != 0)
			continue;
		snprintf(path, sizeof path, "src/%s", de->d_name);
		check_file(path);
	}
	closedir(d);
	/* The scan found the calls (there are dozens). */
	T_CHECK(nchecked > 40);
}

/* programs-cached(8) lists every event with its MESSAGE_ID. */
static void
test_message_ids(void)
{
	char	*man = slurp("man/programs-cached.8"), id[33];
	size_t	 i;

	T_CHECK(man != NULL);
	if (man == NULL)
		return;
	for (i = 0; i < nevents; i++) {
		if (strcmp(events[i], "debug") == 0)
			continue;
		log_message_id(events[i], id);
		if (strstr(man, id) == NULL) {
			fprintf(stderr, "programs-cached(8) lacks %s %s\n",
			    events[i], id);
			T_CHECK(!"the man page lists every MESSAGE_ID");
		}
	}
	free(man);
}

/* The checker's own rules. */
static void
test_checker(void)
{
	char	why[128];

	T_INTEQ(log_check_format("a=%s b=%zu c=%.*s d=%.17g e=%04x f=%lld "
	    "g=%8zu h=SIG%s i=%d%%", why, sizeof why), 0);
	T_INTEQ(log_check_format("a=%p", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%-8s", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%hd", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%*d", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%.*d", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%n", why, sizeof why), -1);
	T_INTEQ(log_check_format("a=%", why, sizeof why), -1);
	T_INTEQ(log_check_format("Bad=%s", why, sizeof why), -1);
	T_INTEQ(log_check_format("nothing", why, sizeof why), -1);
}

/* %.*s takes its length; an unsupported conversion stops the walker. */
static void
test_walker(void)
{
	static const char key[4] = { 'a', 'b', 'c', 'd' };	/* no NUL */
	void	*volatile ptr = &captured;

	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(log_event(LOG_ERR, "memcached_error",
	    "op=set key=%.*s error=%s n=%d", 3, key, "NOT STORED", 7));
	T_CHECK(strstr(captured, "\"op\":\"set\",\"key\":\"abc\","
	    "\"error\":\"NOT STORED\",\"n\":7}") != NULL);
	CAPTURE(log_event(LOG_ERR, "x", "a=%d b=%p c=%s", 1, ptr, "never"));
	T_CHECK(strstr(captured, "\"a\":1,\"b\":\"?unsupported conversion\","
	    "\"log_error\":\"unsupported conversion: \\\"%p\\\" (the fields "
	    "after it are lost)\"}") != NULL);
	T_CHECK(strstr(captured, "never") == NULL);
}

int
main(void)
{
	test_checker();
	test_walker();
	test_sources();
	test_message_ids();
	return t_done();
}
