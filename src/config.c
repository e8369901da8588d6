/*
 * config.c: read and validate the INI configuration.
 *
 * inih does the parsing.  A reader of our own feeds it one line at a time so
 * that every key can be reported with its line number (Debian's inih is
 * built without INI_HANDLER_LINENO) and so that lines longer than inih's
 * buffer are refused instead of silently split.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"

enum opt_type {
	OPT_STRING,
	OPT_DURATION,
	OPT_SIZE,
	OPT_INT,
	OPT_BOOL,
	OPT_FRACTION,
	OPT_ENUM,
	OPT_SERVERS,
	OPT_LISTEN,
	OPT_LOGFORMAT,
	OPT_LOGLEVEL
};

struct opt {
	const char		*section;
	const char		*name;
	enum opt_type		 type;
	size_t			 off;
	long long		 min, max;	/* for numbers, in their unit */
	const char *const	*names;		/* OPT_ENUM */
};

static const char *const keyfn_names[] = { "edx", "django", NULL };
static const char *const keyhash_names[] = { "md4", "blake2b", NULL };
static const char *const dist_names[] = {
	"rendezvous", "ketama", "all", NULL
};
static const char *const valfmt_names[] = { "pickle", "json", NULL };
static const char *const pwids_names[] = { "keys", "ids", NULL };

#define O(s, n, t, f, lo, hi)	{ s, n, t, offsetof(struct cfg, f), lo, hi, NULL }
#define E(s, n, f, names)	{ s, n, OPT_ENUM, offsetof(struct cfg, f), 0, 0, names }
#define DAY_MS			(24LL * 3600 * 1000)

static const struct opt opts[] = {
	O("discovery", "oauth_url", OPT_STRING, oauth_url, 0, 0),
	O("discovery", "client_id", OPT_STRING, client_id, 0, 0),
	O("discovery", "client_secret_file", OPT_STRING, client_secret_file,
	    0, 0),
	O("discovery", "token_file", OPT_STRING, token_file, 0, 0),
	O("discovery", "connect_timeout", OPT_DURATION, connect_timeout_ms,
	    1, 600000),
	O("discovery", "request_timeout", OPT_DURATION, request_timeout_ms,
	    1, 3600000),
	O("discovery", "low_speed_limit", OPT_SIZE, low_speed_limit,
	    0, 1LL << 30),
	O("discovery", "low_speed_time", OPT_DURATION, low_speed_time_ms,
	    0, 3600000),
	O("discovery", "refresh_deadline", OPT_DURATION, refresh_deadline_ms,
	    1000, DAY_MS),
	O("discovery", "max_in_flight", OPT_INT, max_in_flight, 1, 256),
	O("discovery", "retries", OPT_INT, retries, 0, 20),
	O("discovery", "retry_backoff", OPT_DURATION, retry_backoff_ms,
	    1, 3600000),
	O("discovery", "retry_backoff_max", OPT_DURATION, retry_backoff_max_ms,
	    1, 3600000),
	O("discovery", "max_response_size", OPT_SIZE, max_response_size,
	    1024, 1LL << 32),
	O("discovery", "max_pages", OPT_INT, max_pages, 1, 1000000),

	O("memcached", "servers", OPT_SERVERS, servers, 0, 0),
	E("memcached", "key_function", key_function, keyfn_names),
	O("memcached", "key_prefix", OPT_STRING, key_prefix, 0, 0),
	O("memcached", "key_version", OPT_STRING, key_version, 0, 0),
	E("memcached", "long_key_hash", long_key_hash, keyhash_names),
	E("memcached", "distribution", distribution, dist_names),
	E("memcached", "value_format", value_format, valfmt_names),
	O("memcached", "pickle_protocol", OPT_INT, pickle_protocol, 2, 5),
	E("memcached", "pathway_ids", pathway_ids, pwids_names),
	O("memcached", "connect_timeout", OPT_DURATION, mc_connect_timeout_ms,
	    1, 600000),
	O("memcached", "io_timeout", OPT_DURATION, mc_io_timeout_ms,
	    1, 600000),

	O("redis", "url", OPT_STRING, redis_url, 0, 0),
	O("redis", "password_file", OPT_STRING, redis_password_file, 0, 0),
	E("redis", "key_function", key_function, keyfn_names),
	O("redis", "key_prefix", OPT_STRING, key_prefix, 0, 0),
	O("redis", "key_version", OPT_STRING, key_version, 0, 0),
	E("redis", "long_key_hash", long_key_hash, keyhash_names),
	O("redis", "pickle_protocol", OPT_INT, pickle_protocol, 2, 5),
	E("redis", "pathway_ids", pathway_ids, pwids_names),
	O("redis", "connect_timeout", OPT_DURATION, mc_connect_timeout_ms,
	    1, 600000),
	O("redis", "io_timeout", OPT_DURATION, mc_io_timeout_ms, 1, 600000),

	O("daemon", "refresh_interval", OPT_DURATION, refresh_interval_ms,
	    1000, 7 * DAY_MS),
	O("daemon", "check_interval", OPT_DURATION, check_interval_ms,
	    100, DAY_MS),
	O("daemon", "verify_interval", OPT_DURATION, verify_interval_ms,
	    100, 7 * DAY_MS),
	O("daemon", "state_dir", OPT_STRING, state_dir, 0, 0),
	O("daemon", "listen", OPT_LISTEN, listen, 0, 0),
	O("daemon", "log_format", OPT_LOGFORMAT, log_format, 0, 0),
	O("daemon", "log_level", OPT_LOGLEVEL, log_level, 0, 0),
	O("daemon", "max_shrink", OPT_FRACTION, max_shrink, 0, 0),
	O("daemon", "force_publish", OPT_BOOL, force_publish, 0, 0),
	O("daemon", "stale_after", OPT_INT, stale_after, 0, 1000000),
};

#define NOPTS	(sizeof opts / sizeof opts[0])

/* What the line reader and the handler share. */
struct loader {
	struct cfg	*cfg;
	const char	*data;
	size_t		 len;
	size_t		 pos;
	int		 line;		/* line last handed to inih */
	int		 errors;
	bool		 seen[NOPTS];
	struct cfg_site	*site;		/* site of the current section */
	unsigned	 site_seen;	/* bits: 1 site_id, 2 url */
};

static void
cfg_error(struct loader *ld, int line, const char *key, const char *fmt, ...)
    PCD_ATTR_PRINTF(4, 5);

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
	free(msg);
	ld->errors++;
}

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

/* Set one option of the table from its text. */
static void
set_opt(struct loader *ld, const struct opt *o, const char *value)
{
	struct cfg	*cfg = ld->cfg;
	void		*field = (char *)cfg + o->off;
	long long	 n;
	char		 err[256];
	int		 v;
	size_t		 i;

	switch (o->type) {
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return;
	case OPT_DURATION:
		if (parse_duration(value, &n) == -1) {
			cfg_error(ld, ld->line, o->name, "bad duration \"%s\" "
			    "(want a number with ms, s, m or h)", value);
			return;
		}
		if (n < o->min || n > o->max) {
			cfg_error(ld, ld->line, o->name,
			    "%s out of range (%lldms to %lldms)", value,
			    o->min, o->max);
			return;
		}
		*(long *)field = (long)n;
		return;
	case OPT_SIZE:
		if (parse_size(value, &n) == -1 || n < o->min || n > o->max) {
			cfg_error(ld, ld->line, o->name, "bad size \"%s\" "
			    "(want %lld to %lld bytes; K, M, G allowed)",
			    value, o->min, o->max);
			return;
		}
		if (o->off == offsetof(struct cfg, max_response_size))
			*(size_t *)field = (size_t)n;
		else
			*(long *)field = (long)n;
		return;
	case OPT_INT:
		if (parse_int(value, &n) == -1 || n < o->min || n > o->max) {
			cfg_error(ld, ld->line, o->name, "bad number \"%s\" "
			    "(want an integer from %lld to %lld)", value,
			    o->min, o->max);
			return;
		}
		*(int *)field = (int)n;
		return;
	case OPT_BOOL:
		if (parse_bool(value, (bool *)field) == -1)
			cfg_error(ld, ld->line, o->name, "bad boolean \"%s\" "
			    "(want true or false)", value);
		return;
	case OPT_FRACTION:
		if (parse_fraction(value, (double *)field) == -1)
			cfg_error(ld, ld->line, o->name, "bad fraction \"%s\" "
			    "(want 0%% to 100%%, or 0 to 1)", value);
		return;
	case OPT_ENUM:
		for (i = 0; o->names[i] != NULL; i++) {
			if (strcmp(value, o->names[i]) == 0) {
				*(int *)field = (int)i;
				return;
			}
		}
		cfg_error(ld, ld->line, o->name, "bad value \"%s\"", value);
		return;
	case OPT_SERVERS:
		if (parse_servers(cfg, value, err, sizeof err) == -1)
			cfg_error(ld, ld->line, o->name, "%s", err);
		return;
	case OPT_LISTEN:
		if (parse_listen(cfg, value, err, sizeof err) == -1)
			cfg_error(ld, ld->line, o->name, "%s", err);
		return;
	case OPT_LOGFORMAT:
		if ((v = log_format_parse(value)) == -1) {
			cfg_error(ld, ld->line, o->name, "bad value \"%s\" "
			    "(want auto, json, journal or text)", value);
			return;
		}
		cfg->log_format = (enum log_format)v;
		return;
	case OPT_LOGLEVEL:
		if ((v = log_level_parse(value)) == -1) {
			cfg_error(ld, ld->line, o->name, "bad value \"%s\" "
			    "(want error, warning, notice, info or debug)",
			    value);
			return;
		}
		cfg->log_level = v;
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
	return &cfg->sites[cfg->nsites++];
}

static void
site_key(struct loader *ld, const char *domain, const char *name,
    const char *value)
{
	struct cfg_site	*site;
	long long	 n;
	size_t		 i;

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
	if (strcmp(name, "site_id") == 0) {
		if (site->site_id != -1) {
			cfg_error(ld, ld->line, name, "duplicate key");
			return;
		}
		if (parse_int(value, &n) == -1 || n < 0 || n > LONG_MAX) {
			cfg_error(ld, ld->line, name, "bad site id \"%s\" "
			    "(want the Site's integer id)", value);
			return;
		}
		site->site_id = (long)n;
	} else if (strcmp(name, "catalog_api_url") == 0) {
		if (site->catalog_api_url != NULL) {
			cfg_error(ld, ld->line, name, "duplicate key");
			return;
		}
		if (*value == '\0')
			return;		/* explicitly unconfigured */
		if (strncmp(value, "http://", 7) != 0 &&
		    strncmp(value, "https://", 8) != 0) {
			cfg_error(ld, ld->line, name, "bad URL \"%s\" "
			    "(want http:// or https://)", value);
			return;
		}
		site->catalog_api_url = xstrdup(value);
		/* urljoin(f"{base}/", ...) treats a trailing / the same. */
		i = strlen(site->catalog_api_url);
		while (i > 0 && site->catalog_api_url[i - 1] == '/')
			site->catalog_api_url[--i] = '\0';
	} else
		cfg_error(ld, ld->line, name, "unknown key in [site %s]",
		    domain);
}

/* inih's callback: one key of one section. */
static int
cfg_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct loader	*ld = user;
	size_t		 i;

	if (strncmp(section, "site", 4) == 0 &&
	    (section[4] == ' ' || section[4] == '\0')) {
		const char *d = section + 4;

		while (*d == ' ')
			d++;
		site_key(ld, d, name, value);
		return 1;
	}
	for (i = 0; i < NOPTS; i++) {
		if (strcmp(opts[i].section, section) != 0 ||
		    strcmp(opts[i].name, name) != 0)
			continue;
		if (ld->seen[i]) {
			cfg_error(ld, ld->line, name, "duplicate key (values "
			    "that continue on the next line count too)");
			return 1;
		}
		ld->seen[i] = true;
		set_opt(ld, &opts[i], value);
		return 1;
	}
	for (i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].section, section) == 0)
			break;
	if (i == NOPTS)
		cfg_error(ld, ld->line, name, "unknown section [%s]", section);
	else
		cfg_error(ld, ld->line, name, "unknown key in [%s]", section);
	return 1;
}

static void
cfg_defaults(struct cfg *cfg)
{
	char	err[64];

	cfg->connect_timeout_ms = 5000;
	cfg->request_timeout_ms = 60000;
	cfg->low_speed_limit = 1024;
	cfg->low_speed_time_ms = 30000;
	cfg->refresh_deadline_ms = 30 * 60 * 1000;
	cfg->max_in_flight = 8;
	cfg->retries = 4;
	cfg->retry_backoff_ms = 250;
	cfg->retry_backoff_max_ms = 30000;
	cfg->max_response_size = 64 * 1024 * 1024;
	cfg->max_pages = 1000;

	parse_servers(cfg, "127.0.0.1:11211", err, sizeof err);
	cfg->key_function = KEYFN_EDX;
	cfg->key_prefix = xstrdup("default");
	cfg->key_version = xstrdup("1");
	cfg->long_key_hash = KEYHASH_MD4;
	cfg->distribution = DIST_RENDEZVOUS;
	cfg->value_format = VALUE_PICKLE;
	cfg->pickle_protocol = 4;
	cfg->pathway_ids = PATHWAY_IDS_KEYS;
	cfg->mc_connect_timeout_ms = 500;
	cfg->mc_io_timeout_ms = 2000;

	cfg->refresh_interval_ms = 15 * 60 * 1000;
	cfg->check_interval_ms = 30 * 1000;
	cfg->verify_interval_ms = 10 * 60 * 1000;
	cfg->state_dir = xstrdup("/var/lib/programs-cached");
	cfg->log_format = LOG_FORMAT_AUTO;
	cfg->log_level = LOG_INFO;
	cfg->max_shrink = 0.10;
	cfg->force_publish = false;
	cfg->stale_after = 3;
}

static int
site_cmp(const void *a, const void *b)
{
	const struct cfg_site *sa = a, *sb = b;

	return strcmp(sa->domain, sb->domain);
}

/* Whether any key of this section was in the file (or this key, if any). */
static bool
cfg_seen(const struct loader *ld, const char *section, const char *name)
{
	size_t	i;

	for (i = 0; i < NOPTS; i++)
		if (ld->seen[i] && strcmp(opts[i].section, section) == 0 &&
		    (name == NULL || strcmp(opts[i].name, name) == 0))
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

	if (cfg_seen(ld, "memcached", NULL)) {
		cfg_error(ld, 0, "redis", "both [memcached] and [redis]: "
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
		cfg_error(ld, 0, "url", "%s", err);
		return;
	}
	if (cfg->redis_password != NULL && cfg->redis_password_file != NULL)
		cfg_error(ld, 0, "password_file", "a password in url and "
		    "password_file: give only one");
	if (cfg->redis_password_file != NULL &&
	    access(cfg->redis_password_file, R_OK) != 0)
		cfg_error(ld, 0, "password_file", "cannot read %s: %s",
		    cfg->redis_password_file, strerror(errno));
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
	if (cfg->client_id != NULL && cfg->client_secret_file == NULL &&
	    getenv("CREDENTIALS_DIRECTORY") == NULL)
		cfg_error(ld, 0, "client_secret_file", "client_id needs "
		    "client_secret_file (or systemd's "
		    "LoadCredential=client-secret:...)");
	if (cfg->client_secret_file != NULL &&
	    access(cfg->client_secret_file, R_OK) != 0)
		cfg_error(ld, 0, "client_secret_file", "cannot read %s: %s",
		    cfg->client_secret_file, strerror(errno));
	if (cfg->token_file != NULL && access(cfg->token_file, R_OK) != 0)
		cfg_error(ld, 0, "token_file", "cannot read %s: %s",
		    cfg->token_file, strerror(errno));
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

/* Read a whole regular file; NULL with errno set on failure. */
static char *
slurp(const char *path, size_t *len)
{
	FILE		*f;
	struct buf	 b;
	char		 chunk[8192];
	size_t		 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f)) {
		int saved = errno;

		fclose(f);
		buf_free(&b);
		errno = saved;
		return NULL;
	}
	fclose(f);
	if (b.data == NULL)
		buf_add(&b, "", 0);
	return (char *)buf_steal(&b, len);
}

struct cfg *
cfg_load(const char *path)
{
	struct loader	 ld;
	struct cfg	*cfg;
	char		*text;
	size_t		 len;
	int		 r;

	memset(&ld, 0, sizeof ld);
	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = xstrdup(path);
	cfg_defaults(cfg);
	ld.cfg = cfg;

	if ((text = slurp(path, &len)) == NULL) {
		cfg_error(&ld, 0, NULL, "cannot read: %s", strerror(errno));
		cfg_free(cfg);
		return NULL;
	}
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
	if (ld.errors != 0) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
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
