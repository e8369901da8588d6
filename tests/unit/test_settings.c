/*
 * test_settings.c: the settings table against what it must agree with:
 * the defaults applied (the values cfg_defaults() hard-coded before the
 * table), the example configuration and the man page (every key, in its
 * section, with its default, and no key that is not in the table), and
 * the checks of the file itself (a regular file of bounded size, at most
 * STORE_MAX_SERVERS servers), what a change of each key needs on SIGHUP
 * (settings_differ()), and the paths $CREDENTIALS_DIRECTORY resolves to.
 * Run from the top of the source tree.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "settings.h"
#include "store.h"
#include "t.h"

#define CONF_EXAMPLE	"conf/programs-cached.conf"
#define MAN_PAGE	"man/programs-cached.conf.5"

static char	tmpdir[] = "/tmp/pcd-test-settings.XXXXXX";

/* Write text to a file under tmpdir; its path (static). */
static const char *
write_tmp(const char *name, const char *text)
{
	static char	 path[512];
	FILE		*f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

/* A whole file, NUL-terminated (NULL if it cannot be read). */
static char *
read_all(const char *path)
{
	FILE	*f;
	char	*s;
	long	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	return s;
}

/* The index of section.name in the table, or -1. */
static int
row_of(const char *section, const char *name)
{
	const struct setting	*st = settings_find(section, name);

	return st != NULL ? (int)(st - settings_table) : -1;
}

/* The defaults are what cfg_defaults() set before the table. */
static void
test_defaults(void)
{
	struct cfg	*cfg;

	cfg = cfg_load(write_tmp("min.conf", "[site a]\nsite_id = 1\n"));
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	T_INTEQ(cfg->connect_timeout_ms, 5000);
	T_INTEQ(cfg->request_timeout_ms, 60000);
	T_INTEQ(cfg->low_speed_limit, 1024);
	T_INTEQ(cfg->low_speed_time_ms, 30000);
	T_INTEQ(cfg->refresh_deadline_ms, 30 * 60 * 1000);
	T_INTEQ(cfg->max_in_flight, 8);
	T_INTEQ(cfg->retries, 4);
	T_INTEQ(cfg->retry_backoff_ms, 250);
	T_INTEQ(cfg->retry_backoff_max_ms, 30000);
	T_INTEQ(cfg->max_response_size, 64 * 1024 * 1024);
	T_INTEQ(cfg->max_pages, 1000);
	T_INTEQ(cfg->nservers, 1);
	T_STREQ(cfg->servers[0].name, "127.0.0.1:11211");
	T_INTEQ(cfg->key_function, KEYFN_EDX);
	T_STREQ(cfg->key_prefix, "default");
	T_STREQ(cfg->key_version, "1");
	T_INTEQ(cfg->long_key_hash, KEYHASH_MD4);
	T_INTEQ(cfg->distribution, DIST_RENDEZVOUS);
	T_INTEQ(cfg->value_format, VALUE_PICKLE);
	T_INTEQ(cfg->pickle_protocol, 4);
	T_INTEQ(cfg->pathway_ids, PATHWAY_IDS_KEYS);
	T_INTEQ(cfg->mc_connect_timeout_ms, 500);
	T_INTEQ(cfg->mc_io_timeout_ms, 2000);
	T_INTEQ(cfg->refresh_interval_ms, 15 * 60 * 1000);
	T_INTEQ(cfg->check_interval_ms, 30 * 1000);
	T_INTEQ(cfg->verify_interval_ms, 10 * 60 * 1000);
	T_STREQ(cfg->state_dir, "/var/lib/programs-cached");
	T_CHECK(cfg->listen == NULL);
	T_INTEQ(cfg->log_format, LOG_FORMAT_AUTO);
	T_INTEQ(cfg->log_level, LOG_INFO);
	T_CHECK(cfg->max_shrink == 0.10);
	T_CHECK(!cfg->force_publish);
	T_INTEQ(cfg->stale_after, 3);
	T_INTEQ(cfg->workers, -1);
	T_CHECK(cfg->oauth_url == NULL && cfg->client_id == NULL &&
	    cfg->client_secret_file == NULL && cfg->token_file == NULL);
	T_INTEQ(cfg->nsites, 1);
	T_INTEQ(cfg->sites[0].site_id, 1);
	T_CHECK(cfg->sites[0].catalog_api_url == NULL);
	cfg_free(cfg);
}

/* Every row is complete: help, a sane range, choices where needed. */
static void
test_rows(void)
{
	const struct setting	*st;
	size_t			 i, j;

	for (i = 0; i < settings_count; i++) {
		st = &settings_table[i];
		T_CHECK(st->help != NULL && st->help[0] != '\0');
		T_CHECK(st->min <= st->max);
		if (st->type == SETTING_CHOICE ||
		    st->type == SETTING_LOGFORMAT ||
		    st->type == SETTING_LOGLEVEL)
			T_CHECK(st->choices != NULL && st->choices[0] != NULL);
		if (st->type == SETTING_DURATION ||
		    st->type == SETTING_SIZE || st->type == SETTING_INT)
			T_CHECK(st->ctype != SETTING_C_OTHER);
		T_CHECK((st->scope == SETTING_SITE) ==
		    (strcmp(st->section, "site") == 0));
		for (j = 0; j < i; j++)
			T_CHECK(strcmp(st->section,
			    settings_table[j].section) != 0 ||
			    strcmp(st->name, settings_table[j].name) != 0);
	}
}

/*
 * conf/programs-cached.conf: each key of the table once, in its section,
 * as "#key = default" (or "key = example"), and no other key.
 */
static void
test_example(void)
{
	char	*text = read_all(CONF_EXAMPLE), *line, *save = NULL;
	char	 section[64] = "";
	int	*count = calloc(settings_count, sizeof *count);
	size_t	 i;

	T_CHECK(text != NULL && count != NULL);
	if (text == NULL || count == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char	*p = line, *name, *value;
		int	 r;

		if (*p == '[') {
			/* "[site lms.example.com]" is the section "site". */
			p++;
			for (i = 0; i + 1 < sizeof section && p[i] != ']' &&
			    p[i] != ' ' && p[i] != '\0'; i++)
				section[i] = p[i];
			section[i] = '\0';
			continue;
		}
		if (*p == '#')
			p++;
		name = p;
		while (islower((unsigned char)*p) || isdigit((unsigned char)*p)
		    || *p == '_')
			p++;
		if (p == name || strncmp(p, " =", 2) != 0)
			continue;	/* prose */
		*p = '\0';
		value = p + 2;
		while (*value == ' ')
			value++;
		r = row_of(section, name);
		if (r == -1) {
			fprintf(stderr, "%s: [%s] %s is not a key\n",
			    CONF_EXAMPLE, section, name);
			T_CHECK(r != -1);
			continue;
		}
		count[r]++;
		if (line[0] == '#' && settings_table[r].dflt != NULL &&
		    strcmp(value, settings_table[r].dflt) != 0) {
			fprintf(stderr, "%s: [%s] %s = %s, default %s\n",
			    CONF_EXAMPLE, section, name, value,
			    settings_table[r].dflt);
			T_CHECK(!"the example shows the default");
		}
	}
	for (i = 0; i < settings_count; i++) {
		if (count[i] != 1)
			fprintf(stderr, "%s: [%s] %s appears %d times\n",
			    CONF_EXAMPLE, settings_table[i].section,
			    settings_table[i].name, count[i]);
		T_INTEQ(count[i], 1);
	}
	free(count);
	free(text);
}

/*
 * man/programs-cached.conf.5: under ".Ss [section]", each key of the
 * table in an ".It Ic key" entry whose text shows its default; no entry
 * for a key that is not in the table.
 */
static void
test_man(void)
{
	char	*text = read_all(MAN_PAGE), *line, *save = NULL;
	char	 section[64] = "", para[4096] = "";
	int	*count = calloc(settings_count, sizeof *count);
	int	 entry[8], nentry = 0, k;
	size_t	 i;

	T_CHECK(text != NULL && count != NULL);
	if (text == NULL || count == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); ; line = strtok_r(NULL,
	    "\n", &save)) {
		bool	 ends = line == NULL || strncmp(line, ".It", 3) == 0 ||
		    strncmp(line, ".El", 3) == 0 ||
		    strncmp(line, ".S", 2) == 0;

		/* The entry before ends here: its defaults are shown. */
		if (ends) {
			for (k = 0; k < nentry; k++) {
				const char *d = settings_table[entry[k]].dflt;

				if (d != NULL && strstr(para, d) == NULL) {
					fprintf(stderr, "%s: %s: no default "
					    "%s\n", MAN_PAGE,
					    settings_table[entry[k]].name, d);
					T_CHECK(!"the man page shows the "
					    "default");
				}
			}
			nentry = 0;
			para[0] = '\0';
		}
		if (line == NULL)
			break;
		if (strncmp(line, ".Sh ", 4) == 0) {
			section[0] = '\0';
			continue;
		}
		if (strncmp(line, ".Ss [", 5) == 0) {
			for (i = 0; i + 1 < sizeof section &&
			    line[5 + i] != ']' && line[5 + i] != ' ' &&
			    line[5 + i] != '\0'; i++)
				section[i] = line[5 + i];
			section[i] = '\0';
			continue;
		}
		if (section[0] != '\0' && strncmp(line, ".It Ic ", 7) == 0) {
			char	*w, *wsave = NULL;

			for (w = strtok_r(line + 4, " ", &wsave); w != NULL;
			    w = strtok_r(NULL, " ", &wsave)) {
				if (strcmp(w, "Ic") == 0 || strcmp(w, ",") == 0)
					continue;
				k = row_of(section, w);
				if (k == -1) {
					fprintf(stderr, "%s: [%s] %s is not "
					    "a key\n", MAN_PAGE, section, w);
					T_CHECK(k != -1);
					continue;
				}
				count[k]++;
				if (nentry < 8)
					entry[nentry++] = k;
			}
			continue;
		}
		if (strlen(para) + strlen(line) + 2 < sizeof para) {
			strcat(para, line);
			strcat(para, " ");
		}
	}
	for (i = 0; i < settings_count; i++) {
		if (count[i] != 1)
			fprintf(stderr, "%s: [%s] %s appears %d times\n",
			    MAN_PAGE, settings_table[i].section,
			    settings_table[i].name, count[i]);
		T_INTEQ(count[i], 1);
	}
	free(count);
	free(text);
}

/* Load path expecting failure; the first error, as cfg_load_with says. */
static const char *
load_fails(const char *path)
{
	static char	 why[512];
	struct cfg	*cfg;

	cfg = cfg_load_with(path, CFG_SECRETS_READ, why, sizeof why);
	T_CHECK(cfg == NULL);
	cfg_free(cfg);
	return why;
}

/* The file must be a regular file of at most CFG_MAX_SIZE bytes. */
static void
test_file_kinds(void)
{
	char	 path[512], *big;
	FILE	*f;
	size_t	 n = (size_t)CFG_MAX_SIZE + 1, i;

	T_CHECK(strstr(load_fails(tmpdir), "not a regular file: "
	    "a directory") != NULL);
	T_CHECK(strstr(load_fails("/dev/zero"), "not a regular file: "
	    "a character device") != NULL);
	T_CHECK(strstr(load_fails("/dev/null"), "a character device")
	    != NULL);
	snprintf(path, sizeof path, "%s/fifo", tmpdir);
	T_CHECK(mkfifo(path, 0600) == 0);
	/* No writer: a blocking open would never return. */
	T_CHECK(strstr(load_fails(path), "not a regular file: a FIFO")
	    != NULL);
	snprintf(path, sizeof path, "%s/big.conf", tmpdir);
	/* Lines of 64 bytes: comments, which inih skips. */
	big = malloc(n);
	memset(big, '#', n);
	for (i = 63; i < n; i += 64)
		big[i] = '\n';
	big[n - 1] = '\n';
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(big, 1, n, f);
	fclose(f);
	T_CHECK(strstr(load_fails(path), "too large: 1048577 bytes") != NULL);
	/* Exactly the limit is read (a file of comments and one site). */
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs("[site a]\nsite_id = 1\n", f);
	fwrite(big, 1, n - 1 - strlen("[site a]\nsite_id = 1\n") - 1, f);
	fputc('\n', f);
	fclose(f);
	{
		struct cfg	*cfg = cfg_load(path);

		T_CHECK(cfg != NULL);
		cfg_free(cfg);
	}
	free(big);
	T_CHECK(strstr(load_fails("/nonexistent/x.conf"), "/nonexistent/"
	    "x.conf: cannot read: No such file") != NULL);
}

/*
 * A servers line of n distinct hosts, short enough for one line: one
 * character each, then two.
 */
static const char *
servers_conf(int n)
{
	static const char	 one[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static char		 text[512];
	int			 i;

	strcpy(text, "[site a]\nsite_id = 1\n[memcached]\nservers =");
	for (i = 0; i < n; i++) {
		size_t	 k = (size_t)i % (sizeof one - 1);

		snprintf(text + strlen(text), sizeof text - strlen(text),
		    i < (int)sizeof one - 1 ? " %c" : " %c%c", one[k],
		    one[k]);
	}
	strcat(text, "\n");
	return write_tmp("servers.conf", text);
}

/* At most STORE_MAX_SERVERS servers, refused with the line of the key. */
static void
test_server_count(void)
{
	struct cfg	*cfg;

	cfg = cfg_load(servers_conf(STORE_MAX_SERVERS));
	T_CHECK(cfg != NULL);
	T_INTEQ(cfg != NULL ? cfg->nservers : 0, STORE_MAX_SERVERS);
	cfg_free(cfg);
	T_CHECK(strstr(load_fails(servers_conf(STORE_MAX_SERVERS + 1)),
	    "servers.conf line 4: servers: more than 64 servers") != NULL);
}

/* Every row has exactly one decision about what a change of it needs. */
static void
test_changes(void)
{
	static const struct {
		const char	*section, *name;
		unsigned	 change;
	} want[] = {
		{ "memcached", "servers", SETTING_NEW_STORE },
		{ "memcached", "key_prefix", SETTING_NEW_STORE },
		{ "memcached", "distribution", SETTING_NEW_STORE },
		{ "memcached", "io_timeout", SETTING_NEW_STORE },
		{ "memcached", "pathway_ids", SETTING_APPLIES },
		{ "redis", "url", SETTING_NEW_STORE },
		{ "redis", "password_file", SETTING_NEW_STORE },
		{ "discovery", "client_id", SETTING_NEW_TOKEN },
		{ "discovery", "oauth_url", SETTING_NEW_TOKEN },
		{ "discovery", "client_secret_file", SETTING_NEW_TOKEN },
		{ "discovery", "token_file", SETTING_APPLIES },
		{ "discovery", "request_timeout", SETTING_APPLIES },
		{ "daemon", "workers", SETTING_RESTART },
		{ "lease", "enabled", SETTING_RESTART },
		{ "lease", "ttl", SETTING_RESTART },
		{ "daemon", "state_dir", SETTING_RESTART },
		{ "lease", "key", SETTING_APPLIES },
		{ "daemon", "listen", SETTING_APPLIES },
		{ "site", "catalog_api_url", SETTING_APPLIES },
	};
	const struct setting	*st;
	size_t			 i;

	for (i = 0; i < settings_count; i++) {
		unsigned c = settings_table[i].change;

		if (c == 0 || (c & (c - 1)) != 0 || c > SETTING_RESTART)
			fprintf(stderr, "[%s] %s: change %#x is not one "
			    "decision\n", settings_table[i].section,
			    settings_table[i].name, c);
		T_CHECK(c != 0 && (c & (c - 1)) == 0 && c <= SETTING_RESTART);
	}
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		st = settings_find(want[i].section, want[i].name);
		T_CHECK(st != NULL);
		if (st != NULL)
			T_INTEQ(st->change, want[i].change);
	}
}

/* Change one setting's field in base (a struct cfg or cfg_site) in place. */
static void
mutate(const struct setting *st, struct cfg *cfg, void *base)
{
	void	*field = (char *)base + st->off;
	char	**sp = field;

	switch (st->type) {
	case SETTING_STRING:
	case SETTING_LISTEN:
	case SETTING_URL:
		if (*sp != NULL && strcmp(*sp, "changed") == 0) {
			free(*sp);
			*sp = strdup("changed again");
		} else {
			free(*sp);
			*sp = strdup("changed");
		}
		return;
	case SETTING_SERVERS:
		free(cfg->servers[0].name);
		cfg->servers[0].name = strdup("changed:1");
		return;
	case SETTING_BOOL:
		*(bool *)field = !*(bool *)field;
		return;
	case SETTING_FRACTION:
		*(double *)field += *(double *)field < 0.5 ? 0.5 : -0.5;
		return;
	case SETTING_SITE_ID:
		(*(long *)field)++;
		return;
	default:
		break;
	}
	switch (st->ctype) {
	case SETTING_C_LONG:
		(*(long *)field)++;
		return;
	case SETTING_C_SIZE:
		(*(size_t *)field)++;
		return;
	case SETTING_C_INT:
	case SETTING_C_OTHER:	/* choices: int-sized */
		(*(int *)field)++;
		return;
	}
}

/*
 * settings_differ() sees a change of every row under the row's decision,
 * and under no other: a key that applies as it is never makes a new store.
 */
static void
test_differ(void)
{
	const unsigned	 all = SETTING_APPLIES | SETTING_NEW_STORE |
	    SETTING_NEW_TOKEN | SETTING_RESTART;
	const char	*path = write_tmp("differ.conf", "[discovery]\n"
	    "auth = none\n[site a]\nsite_id = 1\ncatalog_api_url = "
	    "http://a\n[site b]\nsite_id = 2\n");
	struct cfg	*a, *b;
	size_t		 i;

	a = cfg_load(path);
	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	for (i = 0; i < settings_count; i++) {
		const struct setting *st = &settings_table[i];

		if ((b = cfg_load(path)) == NULL)
			abort();
		T_CHECK(!settings_differ(a, b, all));
		mutate(st, b, st->scope == SETTING_SITE ? (void *)&b->sites[0] :
		    (void *)b);
		if (!settings_differ(a, b, st->change) ||
		    settings_differ(a, b, all & ~st->change))
			fprintf(stderr, "[%s] %s: a change is not seen as "
			    "%#x alone\n", st->section, st->name, st->change);
		T_CHECK(settings_differ(a, b, st->change));
		T_CHECK(!settings_differ(a, b, all & ~st->change));
		cfg_free(b);
	}
	/* Another site, or one less, is a change of every site key. */
	b = cfg_load(write_tmp("differ2.conf", "[discovery]\nauth = none\n"
	    "[site a]\nsite_id = 1\ncatalog_api_url = http://a\n"));
	T_CHECK(b != NULL && settings_differ(a, b, SETTING_APPLIES));
	T_CHECK(b != NULL && !settings_differ(a, b, all & ~SETTING_APPLIES));
	cfg_free(b);
	cfg_free(a);
}

/*
 * What a reload keeps: settings_next_differ() names each key read at
 * start-up only that changed, and settings_keep() puts the running values
 * back, leaving every other change in place.
 */
static void
test_keep(void)
{
	const unsigned	 all = SETTING_APPLIES | SETTING_NEW_STORE |
	    SETTING_NEW_TOKEN | SETTING_RESTART;
	const char	*path = write_tmp("keep.conf", "[discovery]\n"
	    "auth = none\n[site a]\nsite_id = 1\n");
	const struct setting	*st, *other = settings_find("daemon",
	    "refresh_interval");
	struct cfg	*a, *b;
	size_t		 i, j, n = 0;

	a = cfg_load(path);
	b = cfg_load(path);
	T_CHECK(a != NULL && b != NULL && other != NULL);
	if (a == NULL || b == NULL || other == NULL)
		abort();
	for (i = 0; i < settings_count; i++)
		if (settings_table[i].change == SETTING_RESTART) {
			mutate(&settings_table[i], b, b);
			n++;
		}
	T_CHECK(n >= 4);	/* workers, state_dir, [lease] enabled, ttl */
	mutate(other, b, b);
	/* Each changed row once, in table order, then the end. */
	for (i = j = 0; (st = settings_next_differ(a, b, SETTING_RESTART,
	    &j)) != NULL; i++)
		T_INTEQ(st->change, SETTING_RESTART);
	T_INTEQ(i, n);
	T_CHECK(settings_next_differ(a, b, SETTING_RESTART, &j) == NULL);
	settings_keep(b, a, SETTING_RESTART);
	T_CHECK(!settings_differ(a, b, all & ~SETTING_APPLIES));
	T_CHECK(settings_differ(a, b, SETTING_APPLIES));
	T_STREQ(b->state_dir, a->state_dir);
	T_CHECK(b->state_dir != a->state_dir);	/* a copy: both are freed */
	cfg_free(a);
	cfg_free(b);
}

/* Two loads, one line apart: what a reload would compare. */
static bool
files_differ(const char *one, const char *two, unsigned changes)
{
	struct cfg	*a, *b;
	bool		 r;

	a = cfg_load_with(write_tmp("one.conf", one), CFG_SECRETS_SKIP, NULL,
	    0);
	b = cfg_load_with(write_tmp("two.conf", two), CFG_SECRETS_SKIP, NULL,
	    0);
	T_CHECK(a != NULL && b != NULL);
	r = a != NULL && b != NULL && settings_differ(a, b, changes);
	cfg_free(a);
	cfg_free(b);
	return r;
}

/* The fields derived from a key differ when the key does. */
static void
test_differ_derived(void)
{
	const char	*site = "[site a]\nsite_id = 1\n";
	char		 one[512], two[512];

	/* Another backend, a password in the URL: a new store. */
	snprintf(one, sizeof one, "%s", site);
	snprintf(two, sizeof two, "[redis]\nurl = redis://127.0.0.1:6379/1\n"
	    "%s", site);
	T_CHECK(files_differ(one, two, SETTING_NEW_STORE));
	snprintf(one, sizeof one, "[redis]\nurl = redis://:a@h/1\n%s", site);
	snprintf(two, sizeof two, "[redis]\nurl = redis://:b@h/1\n%s", site);
	T_CHECK(files_differ(one, two, SETTING_NEW_STORE));
	T_CHECK(!files_differ(one, two, SETTING_NEW_TOKEN |
	    SETTING_APPLIES | SETTING_RESTART));
	/* The same file twice: nothing at all. */
	T_CHECK(!files_differ(two, two, SETTING_APPLIES | SETTING_NEW_STORE |
	    SETTING_NEW_TOKEN | SETTING_RESTART));
	/* Another secret file: a new token, not a new store. */
	snprintf(one, sizeof one, "[discovery]\noauth_url = http://l\n"
	    "client_id = c\nclient_secret_file = /s1\n%s", site);
	snprintf(two, sizeof two, "[discovery]\noauth_url = http://l\n"
	    "client_id = c\nclient_secret_file = /s2\n%s", site);
	T_CHECK(files_differ(one, two, SETTING_NEW_TOKEN));
	T_CHECK(!files_differ(one, two, SETTING_NEW_STORE));
}

/*
 * $CREDENTIALS_DIRECTORY is resolved when the configuration is loaded,
 * into the paths the secrets are read from.
 */
static void
test_credentials(void)
{
	const char	*disc = "[discovery]\noauth_url = http://l\n"
	    "client_id = c\n[site a]\nsite_id = 1\n";
	char		 want[600];
	struct cfg	*cfg;

	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	cfg = cfg_load_with(write_tmp("cred.conf", disc), CFG_SECRETS_SKIP,
	    NULL, 0);
	T_CHECK(cfg != NULL);
	snprintf(want, sizeof want, "%s/client-secret", tmpdir);
	T_STREQ(cfg != NULL ? cfg->client_secret_path : NULL, want);
	T_CHECK(cfg != NULL && cfg->auth == AUTH_OAUTH2);
	cfg_free(cfg);
	cfg = cfg_load_with(write_tmp("cred.conf", "[redis]\nurl = "
	    "redis://h/1\n[site a]\nsite_id = 1\n"), CFG_SECRETS_SKIP,
	    NULL, 0);
	snprintf(want, sizeof want, "%s/redis-password", tmpdir);
	T_STREQ(cfg != NULL ? cfg->redis_password_path : NULL, want);
	T_CHECK(cfg != NULL && cfg->redis_password_optional);
	cfg_free(cfg);
	/* A password in the URL: no file is read. */
	cfg = cfg_load_with(write_tmp("cred.conf", "[redis]\nurl = "
	    "redis://:pw@h/1\n[site a]\nsite_id = 1\n"), CFG_SECRETS_SKIP,
	    NULL, 0);
	T_CHECK(cfg != NULL && cfg->redis_password_path == NULL);
	T_STREQ(cfg != NULL ? cfg->servers[0].name : NULL,
	    "redis://h:6379/1");
	cfg_free(cfg);
	/* password_file wins, and is not optional. */
	cfg = cfg_load_with(write_tmp("cred.conf", "[redis]\nurl = "
	    "redis://h/1\npassword_file = /pw\n[site a]\nsite_id = 1\n"),
	    CFG_SECRETS_SKIP, NULL, 0);
	T_STREQ(cfg != NULL ? cfg->redis_password_path : NULL, "/pw");
	T_CHECK(cfg != NULL && !cfg->redis_password_optional);
	cfg_free(cfg);
	unsetenv("CREDENTIALS_DIRECTORY");
	cfg = cfg_load_with(write_tmp("cred.conf", disc), CFG_SECRETS_SKIP,
	    NULL, 0);
	T_CHECK(cfg != NULL && cfg->client_secret_path == NULL);
	cfg_free(cfg);
}

int
main(void)
{
	log_setup(LOG_FORMAT_JSON, -1);
	if (mkdtemp(tmpdir) == NULL)
		abort();
	test_defaults();
	test_rows();
	test_example();
	test_man();
	test_file_kinds();
	test_server_count();
	test_changes();
	test_differ();
	test_differ_derived();
	test_keep();
	test_credentials();
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			T_CHECK(!"cleanup");
	}
	return t_done();
}
