/*
 * config.c: read and validate the INI configuration.
 *
 * inih does the parsing.  A reader of our own feeds it one line at a time so
 * that every key can be reported with its line number (Debian's inih is
 * built without INI_HANDLER_LINENO) and so that lines longer than inih's
 * buffer are refused instead of silently split.  Which keys exist, their
 * types, ranges and defaults come from the table in settings.c.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "settings.h"
#include "store.h"

/* What the line reader and the handler share. */
struct loader {
	struct cfg	*cfg;
	enum cfg_secrets secrets;
	const char	*data;
	size_t		 len;
	size_t		 pos;
	int		 line;		/* line last handed to inih */
	int		 errors;
	int		*key_line;	/* per setting: where set, 0 = not */
	bool		*site_seen;	/* per site and setting */
	char		*why;		/* the first error, for the caller */
	size_t		 whylen;
};

static void
cfg_error(struct loader *ld, int line, const char *key, const char *fmt, ...)
    PCD_ATTR_PRINTF(4, 5);
static void
cfg_warning(struct loader *ld, int line, const char *key, const char *fmt,
    ...) PCD_ATTR_PRINTF(4, 5);

/* Log one problem with the file, and remember that the load failed. */
static void
cfg_error(struct loader *ld, int line, const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_event(LOG_ERR, "config_error", "file=%s line=%d key=%s error=%s",
	    ld->cfg->path, line, key, msg);
	/* The first one, as one line: "FILE line N: KEY: ERROR". */
	if (ld->errors == 0 && ld->why != NULL && ld->whylen > 0) {
		char	at[32] = "";

		if (line > 0)
			snprintf(at, sizeof at, " line %d", line);
		snprintf(ld->why, ld->whylen, "%s%s: %s%s%s", ld->cfg->path,
		    at, key != NULL ? key : "", key != NULL ? ": " : "", msg);
	}
	free(msg);
	ld->errors++;
}

/* Log a problem that does not make the load fail. */
static void
cfg_warning(struct loader *ld, int line, const char *key, const char *fmt,
    ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_event(LOG_WARNING, "config_warning", "file=%s line=%d key=%s "
	    "warning=%s", ld->cfg->path, line, key, msg);
	free(msg);
}

static int	parse_duration(const char *, long long *) PCD_WUR;
static int	parse_size(const char *, long long *) PCD_WUR;
static int	parse_int(const char *, long long *) PCD_WUR;
static int	parse_bool(const char *, bool *) PCD_WUR;
static int	parse_fraction(const char *, double *) PCD_WUR;
static int	parse_servers(struct cfg *, const char *, char *, size_t)
		    PCD_WUR;
static int	parse_listen(struct cfg *, const char *, char *, size_t)
		    PCD_WUR;

/* fgets for inih over our buffer, counting lines and refusing long ones. */
static char *
cfg_readline(char *str, int num, void *stream)
{
	struct loader	*ld = stream;
	const char	*p, *nl;
	size_t		 n, room = (size_t)num - 1;

	if (ld->pos >= ld->len)
		return NULL;
	p = ld->data + ld->pos;
	nl = memchr(p, '\n', ld->len - ld->pos);
	n = nl != NULL ? (size_t)(nl - p) : ld->len - ld->pos;
	ld->pos += n + (nl != NULL);
	ld->line++;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (memchr(p, '\0', n) != NULL) {
		cfg_error(ld, ld->line, NULL, "line contains a NUL byte");
		n = 0;
	} else if (n > room) {
		cfg_error(ld, ld->line, NULL,
		    "line longer than %zu characters", room);
		n = 0;
	}
	memcpy(str, p, n);
	str[n] = '\0';
	return str;
}

/* Parse "250ms", "5s", "15m", "1h" or a bare number of seconds. */
static int
parse_duration(const char *s, long long *ms)
{
	char		*end;
	double		 v;
	long long	 unit = 1000;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || v < 0 || !isfinite(v))
		return -1;
	if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		unit = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		unit = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * 1000;
	else
		return -1;
	if (v * (double)unit > (double)LLONG_MAX / 2)
		return -1;
	*ms = llround(v * (double)unit);
	return 0;
}

/* Parse "64M", "1K", "1G" or a bare number of bytes. */
static int
parse_size(const char *s, long long *bytes)
{
	char			*end;
	unsigned long long	 v, unit = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'K' || *end == 'k')
		unit = 1024;
	else if (*end == 'M' || *end == 'm')
		unit = 1024 * 1024;
	else if (*end == 'G' || *end == 'g')
		unit = 1024 * 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0' && strcmp(end + 1, "B") != 0 &&
	    strcmp(end + 1, "iB") != 0)
		return -1;
	if (v > (unsigned long long)LLONG_MAX / unit)
		return -1;
	*bytes = (long long)(v * unit);
	return 0;
}

static int
parse_int(const char *s, long long *out)
{
	char	*end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return -1;
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

/* "10%" or "0.1". */
static int
parse_fraction(const char *s, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || !isfinite(v))
		return -1;
	if (strcmp(end, "%") == 0)
		v /= 100;
	else if (*end != '\0')
		return -1;
	if (v < 0 || v > 1)
		return -1;
	*out = v;
	return 0;
}

/*
 * Servers as in Django's LOCATION: "host:port" (port defaults to 11211, as
 * pymemcache's normalize_server_spec), separated by spaces or commas;
 * "[v6]:port" for IPv6.
 */
static int
parse_servers(struct cfg *cfg, const char *s, char *err, size_t errlen)
{
	char	*copy = xstrdup(s), *tok, *save = NULL;
	size_t	 i;

	for (i = 0; i < cfg->nservers; i++) {
		free(cfg->servers[i].host);
		free(cfg->servers[i].name);
	}
	cfg->nservers = 0;
	for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
	    tok = strtok_r(NULL, " ,\t", &save)) {
		struct cfg_server	 sv;
		char			*colon, *end, *host = tok;
		long			 port = 11211;

		if (*tok == '[') {
			if ((end = strchr(tok, ']')) == NULL)
				goto bad;
			host = tok + 1;
			*end = '\0';
			colon = end[1] == ':' ? end + 1 : NULL;
			if (end[1] != '\0' && colon == NULL)
				goto bad;
		} else
			colon = strrchr(tok, ':');
		if (colon != NULL) {
			*colon = '\0';
			errno = 0;
			port = strtol(colon + 1, &end, 10);
			if (*end != '\0' || colon[1] == '\0' || errno != 0 ||
			    port < 1 || port > 65535)
				goto bad;
		}
		if (*host == '\0')
			goto bad;
		if (cfg->nservers == STORE_MAX_SERVERS) {
			snprintf(err, errlen, "more than %d servers",
			    STORE_MAX_SERVERS);
			free(copy);
			return -1;
		}
		sv.host = xstrdup(host);
		sv.port = (int)port;
		sv.name = xasprintf("%s:%ld", host, port);
		cfg->servers = xreallocarray(cfg->servers, cfg->nservers + 1,
		    sizeof *cfg->servers);
		cfg->servers[cfg->nservers++] = sv;
		continue;
bad:
		snprintf(err, errlen, "bad server \"%s\" (want host:port)",
		    tok);
		free(copy);
		return -1;
	}
	free(copy);
	if (cfg->nservers == 0) {
		snprintf(err, errlen, "no servers");
		return -1;
	}
	return 0;
}

/*
 * The HTTP listener's address: "host:port", "[v6]:port", or a bare port
 * on 127.0.0.1 (loopback unless the operator says otherwise); port 0 takes
 * any free one.  Empty turns the listener off.
 */
static int
parse_listen(struct cfg *cfg, const char *s, char *err, size_t errlen)
{
	char		*copy, *colon, *end, *portstr;
	const char	*host;
	long		 port;

	free(cfg->listen);
	free(cfg->listen_host);
	cfg->listen = cfg->listen_host = NULL;
	cfg->listen_port = 0;
	if (*s == '\0')
		return 0;
	copy = xstrdup(s);
	if (*copy == '[') {
		if ((end = strchr(copy, ']')) == NULL || end[1] != ':')
			goto bad;
		*end = '\0';
		host = copy + 1;
		portstr = end + 2;
	} else if ((colon = strrchr(copy, ':')) == NULL) {
		host = "127.0.0.1";
		portstr = copy;
	} else {
		if (strchr(copy, ':') != colon)
			goto bad;	/* a bare v6 address needs brackets */
		*colon = '\0';
		host = copy;
		portstr = colon + 1;
	}
	errno = 0;
	port = strtol(portstr, &end, 10);
	if (*portstr < '0' || *portstr > '9' || *end != '\0' || errno != 0 ||
	    port > 65535 || *host == '\0')
		goto bad;
	cfg->listen_host = xstrdup(host);
	cfg->listen_port = (int)port;
	cfg->listen = strchr(host, ':') != NULL ?
	    xasprintf("[%s]:%ld", host, port) : xasprintf("%s:%ld", host, port);
	free(copy);
	return 0;
bad:
	snprintf(err, errlen, "bad address \"%s\" (want host:port, "
	    "[v6]:port or a port)", s);
	free(copy);
	return -1;
}

/* "want a, b or c": the choices of a setting, for an error. */
static void
want_choices(const struct setting *st, char *out, size_t len)
{
	size_t	i, n, used = 0;

	for (n = 0; st->choices[n] != NULL; n++)
		;
	out[0] = '\0';
	for (i = 0; i < n && used < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ", st->choices[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Store a number in its field, which is an int, a long or a size_t. */
static void
set_number(const struct setting *st, void *field, long long n)
{
	switch (st->ctype) {
	case SETTING_C_INT:
		*(int *)field = (int)n;
		break;
	case SETTING_C_LONG:
		*(long *)field = (long)n;
		break;
	case SETTING_C_SIZE:
		*(size_t *)field = (size_t)n;
		break;
	case SETTING_C_OTHER:
		fatalx("setting %s has a field that holds no number", st->name);
	}
}

/* A catalog_api_url: http(s), any trailing / removed. */
static void
set_url(struct loader *ld, const struct setting *st, char **field,
    const char *value)
{
	size_t	i;

	if (*value == '\0')
		return;		/* explicitly unconfigured */
	if (strncmp(value, "http://", 7) != 0 &&
	    strncmp(value, "https://", 8) != 0) {
		cfg_error(ld, ld->line, st->name, "bad URL \"%s\" "
		    "(want http:// or https://)", value);
		return;
	}
	free(*field);
	*field = xstrdup(value);
	/* urljoin(f"{base}/", ...) treats a trailing / the same. */
	i = strlen(*field);
	while (i > 0 && (*field)[i - 1] == '/')
		(*field)[--i] = '\0';
}

/*
 * Set the field of one setting, in base (a struct cfg or a struct
 * cfg_site), from its text; a bad value is logged and counted.
 */
static void
set_value(struct loader *ld, const struct setting *st, void *base,
    const char *value)
{
	struct cfg	*cfg = ld->cfg;
	void		*field = (char *)base + st->off;
	long long	 n;
	char		 err[256];
	int		 v;
	size_t		 i;

	switch (st->type) {
	case SETTING_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return;
	case SETTING_DURATION:
		if (parse_duration(value, &n) == -1) {
			cfg_error(ld, ld->line, st->name, "bad duration \"%s\" "
			    "(want a number with ms, s, m or h)", value);
			return;
		}
		if (n < st->min || n > st->max) {
			cfg_error(ld, ld->line, st->name,
			    "%s out of range (%lldms to %lldms)", value,
			    st->min, st->max);
			return;
		}
		set_number(st, field, n);
		return;
	case SETTING_SIZE:
		if (parse_size(value, &n) == -1 || n < st->min ||
		    n > st->max) {
			cfg_error(ld, ld->line, st->name, "bad size \"%s\" "
			    "(want %lld to %lld bytes; K, M, G allowed)",
			    value, st->min, st->max);
			return;
		}
		set_number(st, field, n);
		return;
	case SETTING_INT:
		/* "auto" is -1 where -1 is allowed (workers). */
		if (st->min == -1 && strcmp(value, "auto") == 0)
			n = -1;
		else if (parse_int(value, &n) == -1 || n < st->min ||
		    n > st->max) {
			cfg_error(ld, ld->line, st->name, "bad number \"%s\" "
			    "(want %san integer from %lld to %lld)", value,
			    st->min == -1 ? "auto or " : "", st->min == -1 ?
			    0 : st->min, st->max);
			return;
		}
		set_number(st, field, n);
		return;
	case SETTING_BOOL:
		if (parse_bool(value, (bool *)field) == -1)
			cfg_error(ld, ld->line, st->name, "bad boolean \"%s\" "
			    "(want true or false)", value);
		return;
	case SETTING_FRACTION:
		if (parse_fraction(value, (double *)field) == -1)
			cfg_error(ld, ld->line, st->name, "bad fraction \"%s\" "
			    "(want 0%% to 100%%, or 0 to 1)", value);
		return;
	case SETTING_CHOICE:
	case SETTING_LOGFORMAT:
	case SETTING_LOGLEVEL:
		v = -1;
		if (st->type == SETTING_LOGFORMAT)
			v = log_format_parse(value);
		else if (st->type == SETTING_LOGLEVEL)
			v = log_level_parse(value);
		else {
			for (i = 0; st->choices[i] != NULL; i++)
				if (strcmp(value, st->choices[i]) == 0)
					v = (int)i;
		}
		if (v == -1) {
			want_choices(st, err, sizeof err);
			cfg_error(ld, ld->line, st->name, "bad value \"%s\" "
			    "(want %s)", value, err);
			return;
		}
		/* Enums and priorities are int-sized. */
		*(int *)field = v;
		return;
	case SETTING_SERVERS:
		if (parse_servers(cfg, value, err, sizeof err) == -1)
			cfg_error(ld, ld->line, st->name, "%s", err);
		return;
	case SETTING_LISTEN:
		if (parse_listen(cfg, value, err, sizeof err) == -1)
			cfg_error(ld, ld->line, st->name, "%s", err);
		return;
	case SETTING_SITE_ID:
		if (parse_int(value, &n) == -1 || n < 0 || n > LONG_MAX) {
			cfg_error(ld, ld->line, st->name, "bad site id \"%s\" "
			    "(want the Site's integer id)", value);
			return;
		}
		*(long *)field = (long)n;
		return;
	case SETTING_URL:
		set_url(ld, st, (char **)field, value);
		return;
	}
}

/* The site of a "[site DOMAIN]" section, added on its first key. */
static struct cfg_site *
site_for(struct loader *ld, const char *domain)
{
	struct cfg	*cfg = ld->cfg;
	size_t		 i;

	for (i = 0; i < cfg->nsites; i++)
		if (strcmp(cfg->sites[i].domain, domain) == 0)
			return &cfg->sites[i];
	cfg->sites = xreallocarray(cfg->sites, cfg->nsites + 1,
	    sizeof *cfg->sites);
	cfg->sites[cfg->nsites] = (struct cfg_site){
		.domain = xstrdup(domain),
		.site_id = -1,
		.line = ld->line,
	};
	ld->site_seen = xreallocarray(ld->site_seen,
	    (cfg->nsites + 1) * settings_count, sizeof *ld->site_seen);
	memset(ld->site_seen + cfg->nsites * settings_count, 0,
	    settings_count * sizeof *ld->site_seen);
	return &cfg->sites[cfg->nsites++];
}

/* One key of a "[site DOMAIN]" section. */
static void
site_key(struct loader *ld, const char *domain, const char *name,
    const char *value)
{
	const struct setting	*st;
	struct cfg_site		*site;
	bool			*seen;
	size_t			 i;

	for (i = 0; domain[i] != '\0'; i++) {
		if (isspace((unsigned char)domain[i]) ||
		    iscntrl((unsigned char)domain[i])) {
			cfg_error(ld, ld->line, "site",
			    "bad domain \"%s\" in section name", domain);
			return;
		}
	}
	if (*domain == '\0') {
		cfg_error(ld, ld->line, "site", "section [site] needs a domain");
		return;
	}
	site = site_for(ld, domain);
	if ((st = settings_find("site", name)) == NULL) {
		cfg_error(ld, ld->line, name, "unknown key in [site %s]",
		    domain);
		return;
	}
	seen = &ld->site_seen[(size_t)(site - ld->cfg->sites) *
	    settings_count + (size_t)(st - settings_table)];
	if (*seen) {
		cfg_error(ld, ld->line, name, "duplicate key");
		return;
	}
	*seen = true;
	set_value(ld, st, site, value);
}

/* inih's callback: one key of one section. */
static int
cfg_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct loader		*ld = user;
	const struct setting	*st;
	size_t			 i;

	if (strncmp(section, "site", 4) == 0 &&
	    (section[4] == ' ' || section[4] == '\0')) {
		const char *d = section + 4;

		while (*d == ' ')
			d++;
		site_key(ld, d, name, value);
		return 1;
	}
	if ((st = settings_find(section, name)) != NULL &&
	    st->scope == SETTING_GLOBAL) {
		i = (size_t)(st - settings_table);
		if (ld->key_line[i] != 0) {
			cfg_error(ld, ld->line, name, "duplicate key (values "
			    "that continue on the next line count too)");
			return 1;
		}
		ld->key_line[i] = ld->line;
		set_value(ld, st, ld->cfg, value);
		return 1;
	}
	if (!settings_section_known(section))
		cfg_error(ld, ld->line, name, "unknown section [%s]", section);
	else
		cfg_error(ld, ld->line, name, "unknown key in [%s]", section);
	return 1;
}

/* Every default of the table, parsed as if it were in the file. */
static void
cfg_defaults(struct loader *ld)
{
	const struct setting	*st;
	size_t			 i;

	for (i = 0; i < settings_count; i++) {
		st = &settings_table[i];
		if (st->scope != SETTING_GLOBAL || st->dflt == NULL)
			continue;
		set_value(ld, st, ld->cfg, st->dflt);
		if (ld->errors != 0)
			fatalx("the default of %s.%s does not parse: %s",
			    st->section, st->name, st->dflt);
	}
}

static int
site_cmp(const void *a, const void *b)
{
	const struct cfg_site *sa = a, *sb = b;

	return strcmp(sa->domain, sb->domain);
}

/* The line where a key of the table was set, or 0. */
static int
key_line(const struct loader *ld, const char *section, const char *name)
{
	const struct setting	*st = settings_find(section, name);

	return st != NULL ? ld->key_line[st - settings_table] : 0;
}

/*
 * A file holding a secret (the client secret or a token), as the caller
 * may read it now.  The daemon must; --check-config warns, since the unit
 * may have what the operator's shell has not (LoadCredential); --verify
 * never needs one.
 */
static void
check_secret(struct loader *ld, const char *key, const char *path,
    const char *what)
{
	const char	*hint = "the daemon reads it when it needs a token";

	if (ld->secrets == CFG_SECRETS_SKIP || access(path, R_OK) == 0)
		return;
	if (ld->secrets == CFG_SECRETS_READ)
		cfg_error(ld, key_line(ld, "discovery", key), key,
		    "cannot read %s%s: %s", what, path, strerror(errno));
	else
		cfg_warning(ld, key_line(ld, "discovery", key), key,
		    "cannot read %s%s here: %s (%s: check it can)", what,
		    path, strerror(errno), hint);
}

/* Where the client secret comes from, and whether it can be read. */
static void
check_secrets(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	const char	*dir = getenv("CREDENTIALS_DIRECTORY");
	char		*path;

	if (cfg->client_secret_file != NULL)
		check_secret(ld, "client_secret_file", cfg->client_secret_file,
		    "");
	else if (cfg->client_id != NULL && dir != NULL) {
		path = xasprintf("%s/client-secret", dir);
		check_secret(ld, "client_secret_file", path,
		    "$CREDENTIALS_DIRECTORY/client-secret ");
		free(path);
	} else if (cfg->client_id != NULL &&
	    ld->secrets == CFG_SECRETS_READ)
		cfg_error(ld, 0, "client_secret_file", "client_id needs "
		    "client_secret_file (or systemd's "
		    "LoadCredential=client-secret:...)");
	else if (cfg->client_id != NULL && ld->secrets == CFG_SECRETS_WARN)
		cfg_warning(ld, 0, "client_secret_file", "no "
		    "client_secret_file, and no $CREDENTIALS_DIRECTORY here: "
		    "the daemon needs systemd's LoadCredential=client-secret:"
		    "... (or client_secret_file)");
	if (cfg->token_file != NULL)
		check_secret(ld, "token_file", cfg->token_file, "");
}

/* Whether any key of this section was in the file (or this key, if any). */
static bool
cfg_seen(const struct loader *ld, const char *section, const char *name)
{
	size_t	i;

	for (i = 0; i < settings_count; i++)
		if (ld->key_line[i] != 0 &&
		    strcmp(settings_table[i].section, section) == 0 &&
		    (name == NULL || strcmp(settings_table[i].name, name) == 0))
			return true;
	return false;
}

/* %XX-decode s in place (a URL's user and password, as redis-py does). */
static void
url_unquote(char *s)
{
	char	*o = s, hex[3] = { 0, 0, 0 };

	for (; *s != '\0'; s++) {
		if (*s == '%' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			hex[0] = s[1];
			hex[1] = s[2];
			*o++ = (char)strtol(hex, NULL, 16);
			s += 2;
		} else
			*o++ = *s;
	}
	*o = '\0';
}

/*
 * [redis] url: redis://[user[:password]@]host[:port][/db] or
 * unix://[user[:password]@]/path[?db=N], as redis-py's from_url reads
 * them (port 6379, db 0 by default).  Fills the redis_* fields and the
 * one server; -1 with err set.
 */
static int
parse_redis_url(struct cfg *cfg, const char *url, char *err, size_t errlen)
{
	char		*copy = NULL, *p, *at, *end, *q, *colon, *dbs = NULL;
	const char	*host;
	long		 n;
	struct cfg_server sv;
	size_t		 i;
	bool		 v6;

	if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(err, errlen, "rediss:// (TLS) is not supported: "
		    "Debian 12's hiredis is built without TLS; use redis:// "
		    "on a trusted network, a unix:// socket, or a local TLS "
		    "tunnel");
		return -1;
	}
	if (strncmp(url, "redis://", 8) == 0)
		p = copy = xstrdup(url + 8);
	else if (strncmp(url, "unix://", 7) == 0)
		p = copy = xstrdup(url + 7);
	else {
		snprintf(err, errlen, "bad url (want redis://host:port/db or "
		    "unix:///path?db=N)");
		return -1;
	}
	if ((at = strrchr(p, '@')) != NULL) {
		*at = '\0';
		if ((colon = strchr(p, ':')) != NULL) {
			*colon = '\0';
			cfg->redis_password = xstrdup(colon + 1);
			url_unquote(cfg->redis_password);
		}
		if (*p != '\0') {
			cfg->redis_user = xstrdup(p);
			url_unquote(cfg->redis_user);
		}
		p = at + 1;
	}
	if ((q = strchr(p, '?')) != NULL) {
		*q++ = '\0';
		if (strncmp(q, "db=", 3) != 0)
			goto bad;
		dbs = q + 3;
	}
	if (url[0] == 'u') {
		if (*p != '/')
			goto bad;
		cfg->redis_socket = xstrdup(p);
	} else {
		if ((end = strchr(p, '/')) != NULL) {
			*end = '\0';
			if (end[1] != '\0')
				dbs = end + 1;
		}
		cfg->redis_port = 6379;
		if (*p == '[') {
			if ((end = strchr(p, ']')) == NULL)
				goto bad;
			*end = '\0';
			colon = end[1] == ':' ? end + 1 : NULL;
			p++;
		} else if ((colon = strrchr(p, ':')) != NULL)
			*colon = '\0';
		if (colon != NULL) {
			errno = 0;
			n = strtol(colon + 1, &end, 10);
			if (colon[1] == '\0' || *end != '\0' || errno != 0 ||
			    n < 1 || n > 65535)
				goto bad;
			cfg->redis_port = (int)n;
		}
		if (*p == '\0')
			goto bad;
		cfg->redis_host = xstrdup(p);
	}
	if (dbs != NULL) {
		errno = 0;
		n = strtol(dbs, &end, 10);
		if (*dbs == '\0' || *end != '\0' || errno != 0 || n < 0 ||
		    n > 100000)
			goto bad;
		cfg->redis_db = (int)n;
	}
	/* The one server, named without its password. */
	for (i = 0; i < cfg->nservers; i++) {
		free(cfg->servers[i].host);
		free(cfg->servers[i].name);
	}
	host = cfg->redis_host != NULL ? cfg->redis_host : cfg->redis_socket;
	v6 = cfg->redis_host != NULL && strchr(cfg->redis_host, ':') != NULL;
	sv.host = xstrdup(host);
	sv.port = cfg->redis_port;
	if (cfg->redis_socket != NULL)
		sv.name = xasprintf("unix://%s%s%s?db=%d",
		    cfg->redis_user != NULL ? cfg->redis_user : "",
		    cfg->redis_user != NULL ? "@" : "", host, cfg->redis_db);
	else
		sv.name = xasprintf("redis://%s%s%s%s%s:%d/%d",
		    cfg->redis_user != NULL ? cfg->redis_user : "",
		    cfg->redis_user != NULL ? "@" : "", v6 ? "[" : "", host,
		    v6 ? "]" : "", cfg->redis_port, cfg->redis_db);
	cfg->servers = xreallocarray(cfg->servers, 1, sizeof *cfg->servers);
	cfg->servers[0] = sv;
	cfg->nservers = 1;
	free(copy);
	return 0;
bad:
	snprintf(err, errlen, "bad url (want redis://[user@]host:port/db or "
	    "unix:///path?db=N)");
	free(copy);
	return -1;
}

/* [redis] instead of [memcached]: the URL, the password, the defaults. */
static void
cfg_redis(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	char		 err[256];
	int		 line = key_line(ld, "redis", "url");

	if (cfg_seen(ld, "memcached", NULL)) {
		cfg_error(ld, line, "redis", "both [memcached] and [redis]: "
		    "configure exactly one cache");
		return;
	}
	cfg->backend = BACKEND_REDIS;
	if (cfg->redis_url == NULL) {
		cfg_error(ld, 0, "url", "[redis] needs url (redis://host:"
		    "port/db or unix:///path?db=N)");
		return;
	}
	if (parse_redis_url(cfg, cfg->redis_url, err, sizeof err) == -1) {
		cfg_error(ld, line, "url", "%s", err);
		return;
	}
	line = key_line(ld, "redis", "password_file");
	if (cfg->redis_password != NULL && cfg->redis_password_file != NULL)
		cfg_error(ld, line, "password_file", "a password in url and "
		    "password_file: give only one");
	if (cfg->redis_password_file != NULL &&
	    ld->secrets != CFG_SECRETS_SKIP &&
	    access(cfg->redis_password_file, R_OK) != 0) {
		if (ld->secrets == CFG_SECRETS_READ)
			cfg_error(ld, line, "password_file", "cannot read %s: "
			    "%s", cfg->redis_password_file, strerror(errno));
		else
			cfg_warning(ld, line, "password_file", "cannot read "
			    "%s here: %s (the daemon reads it at every "
			    "connection: check it can)",
			    cfg->redis_password_file, strerror(errno));
	}
	/* Django's default key function, as Tutor's LMS uses; any byte. */
	if (!cfg_seen(ld, "redis", "key_function") ||
	    cfg->key_function == KEYFN_DJANGO)
		cfg->key_function = KEYFN_DJANGO_ANY;
}

/* Checks that need the whole file. */
static void
cfg_validate(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	size_t		 i, j;

	if (cfg_seen(ld, "redis", NULL))
		cfg_redis(ld);

	if (cfg->nsites == 0)
		cfg_error(ld, 0, "site", "no [site DOMAIN] section: nothing "
		    "to cache");
	for (i = 0; i < cfg->nsites; i++) {
		if (cfg->sites[i].site_id == -1)
			cfg_error(ld, cfg->sites[i].line, "site_id",
			    "[site %s] needs site_id", cfg->sites[i].domain);
		for (j = 0; j < i; j++)
			if (cfg->sites[j].site_id == cfg->sites[i].site_id &&
			    cfg->sites[i].site_id != -1)
				cfg_error(ld, cfg->sites[i].line, "site_id",
				    "site_id %ld is used by [site %s] too",
				    cfg->sites[i].site_id,
				    cfg->sites[j].domain);
	}
	if (cfg->client_id != NULL && cfg->oauth_url == NULL)
		cfg_error(ld, 0, "oauth_url", "client_id needs oauth_url");
	check_secrets(ld);
	if (cfg->client_id != NULL && cfg->token_file != NULL)
		cfg_error(ld, 0, "token_file",
		    "use either client_id (OAuth2) or token_file, not both");
	if (cfg->retry_backoff_max_ms < cfg->retry_backoff_ms)
		cfg_error(ld, 0, "retry_backoff_max",
		    "smaller than retry_backoff");
	for (i = 0; i < cfg->nservers; i++)
		for (j = 0; j < i; j++)
			if (strcmp(cfg->servers[i].name,
			    cfg->servers[j].name) == 0)
				cfg_error(ld, 0, "servers",
				    "server %s is listed twice",
				    cfg->servers[i].name);
	if (cfg->nsites > 1)
		qsort(cfg->sites, cfg->nsites, sizeof *cfg->sites, site_cmp);
}

/* What a file that is not a regular one is, for an error. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/*
 * Read the whole file, which must be a regular file of at most
 * CFG_MAX_SIZE bytes: never block on a FIFO (O_NONBLOCK, then fstat) nor
 * read a device without end.  NULL, logged, on failure.
 */
static char *
slurp(struct loader *ld, const char *path, size_t *len)
{
	struct stat	 sb;
	char		*data = NULL;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		cfg_error(ld, 0, NULL, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1) {
		cfg_error(ld, 0, NULL, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		cfg_error(ld, 0, NULL, "not a regular file: %s",
		    file_kind(sb.st_mode));
		goto fail;
	}
	if (sb.st_size > CFG_MAX_SIZE) {
		cfg_error(ld, 0, NULL, "too large: %lld bytes (at most %d)",
		    (long long)sb.st_size, CFG_MAX_SIZE);
		goto fail;
	}
	/* One byte more than allowed: a file still growing is seen. */
	data = xmalloc((size_t)CFG_MAX_SIZE + 2);
	while (got <= CFG_MAX_SIZE) {
		n = read(fd, data + got, (size_t)CFG_MAX_SIZE + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			cfg_error(ld, 0, NULL, "cannot read: %s",
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > CFG_MAX_SIZE) {
		cfg_error(ld, 0, NULL, "too large: over %d bytes",
		    CFG_MAX_SIZE);
		goto fail;
	}
	close(fd);
	data[got] = '\0';
	*len = got;
	return data;
fail:
	free(data);
	close(fd);
	return NULL;
}

struct cfg *
cfg_load(const char *path)
{
	return cfg_load_with(path, CFG_SECRETS_READ, NULL, 0);
}

struct cfg *
cfg_load_with(const char *path, enum cfg_secrets secrets, char *why,
    size_t whylen)
{
	struct loader	 ld;
	struct cfg	*cfg;
	char		*text;
	size_t		 len;
	int		 r;

	memset(&ld, 0, sizeof ld);
	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = xstrdup(path);
	ld.cfg = cfg;
	ld.secrets = secrets;
	ld.key_line = xcalloc(settings_count, sizeof *ld.key_line);
	ld.why = why;
	ld.whylen = whylen;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	cfg_defaults(&ld);

	if ((text = slurp(&ld, path, &len)) == NULL)
		goto fail;
	ld.data = text;
	ld.len = len;
	r = ini_parse_stream(cfg_readline, &ld, cfg_handler, &ld);
	free(text);
	if (r > 0)
		cfg_error(&ld, r, NULL, "syntax error (want [section] or "
		    "key = value)");
	else if (r < 0)
		cfg_error(&ld, 0, NULL, "cannot parse (inih error %d)", r);
	if (ld.errors == 0)
		cfg_validate(&ld);
	if (ld.errors != 0)
		goto fail;
	free(ld.key_line);
	free(ld.site_seen);
	return cfg;
fail:
	free(ld.key_line);
	free(ld.site_seen);
	cfg_free(cfg);
	return NULL;
}

void
cfg_free(struct cfg *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->oauth_url);
	free(cfg->client_id);
	free(cfg->client_secret_file);
	free(cfg->token_file);
	for (i = 0; i < cfg->nservers; i++) {
		free(cfg->servers[i].host);
		free(cfg->servers[i].name);
	}
	free(cfg->servers);
	free(cfg->key_prefix);
	free(cfg->key_version);
	free(cfg->redis_url);
	free(cfg->redis_host);
	free(cfg->redis_socket);
	free(cfg->redis_user);
	if (cfg->redis_password != NULL)
		explicit_bzero(cfg->redis_password,
		    strlen(cfg->redis_password));
	free(cfg->redis_password);
	free(cfg->redis_password_file);
	free(cfg->state_dir);
	free(cfg->lease_key);
	free(cfg->listen);
	free(cfg->listen_host);
	for (i = 0; i < cfg->nsites; i++) {
		free(cfg->sites[i].domain);
		free(cfg->sites[i].catalog_api_url);
	}
	free(cfg->sites);
	free(cfg);
}

const struct cfg_site *
cfg_site(const struct cfg *cfg, const char *domain)
{
	size_t	i;

	for (i = 0; i < cfg->nsites; i++)
		if (strcmp(cfg->sites[i].domain, domain) == 0)
			return &cfg->sites[i];
	return NULL;
}
