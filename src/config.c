/*
 * config.c: the configuration's sections and keys, its loading and its
 * checks, and the lifetime of a struct cfg.
 *
 * inih does the parsing.  A reader of our own feeds it one line at a time so
 * that every key can be reported with its line number (Debian's inih is
 * built without INI_HANDLER_LINENO) and so that lines longer than inih's
 * buffer are refused instead of silently split.  Which keys exist, their
 * types, ranges and defaults come from the table in settings.c; what a
 * value means from cfgval.c (redisurl.c for a Redis URL); the file is read
 * by secret.c, which also knows where systemd puts credentials.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "cfgval.h"
#include "config.h"
#include "redisurl.h"
#include "secret.h"
#include "settings.h"

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
	int		*site_line;	/* per site and setting: the same */
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

/* A choice of the table (or a log format or level): its index, or -1. */
static int
choice_of(const struct setting *st, const char *value)
{
	if (st->type == SETTING_LOGFORMAT)
		return log_format_parse(value);
	if (st->type == SETTING_LOGLEVEL)
		return log_level_parse(value);
	return cfgval_choice(value, st->choices);
}

/* A number of the table, in range; -1 after logging why not. */
static int
number_of(struct loader *ld, const struct setting *st, const char *value,
    long long *n)
{
	switch (st->type) {
	case SETTING_DURATION:
		if (cfgval_duration(value, n) == -1) {
			cfg_error(ld, ld->line, st->name, "bad duration \"%s\" "
			    "(want a number with ms, s, m or h)", value);
			return -1;
		}
		if (*n < st->min || *n > st->max) {
			cfg_error(ld, ld->line, st->name,
			    "%s out of range (%lldms to %lldms)", value,
			    st->min, st->max);
			return -1;
		}
		return 0;
	case SETTING_SIZE:
		if (cfgval_size(value, n) == -1 || *n < st->min ||
		    *n > st->max) {
			cfg_error(ld, ld->line, st->name, "bad size \"%s\" "
			    "(want %lld to %lld bytes; K, M, G allowed)",
			    value, st->min, st->max);
			return -1;
		}
		return 0;
	default:
		/* "auto" is -1 where -1 is allowed (workers). */
		if (st->min == -1 && strcmp(value, "auto") == 0)
			*n = -1;
		else if (cfgval_int(value, n) == -1 || *n < st->min ||
		    *n > st->max) {
			cfg_error(ld, ld->line, st->name, "bad number \"%s\" "
			    "(want %san integer from %lld to %lld)", value,
			    st->min == -1 ? "auto or " : "", st->min == -1 ?
			    0 : st->min, st->max);
			return -1;
		}
		return 0;
	}
}

/* The types whose value sets more than their field: servers, listen. */
static void
set_compound(struct loader *ld, const struct setting *st, const char *value)
{
	struct cfg		*cfg = ld->cfg;
	struct cfg_server	*sv;
	char			 err[256], *listen, *host;
	size_t			 n;
	int			 port;

	if (st->type == SETTING_SERVERS) {
		if (cfgval_servers(value, &sv, &n, err, sizeof err) == -1) {
			cfg_error(ld, ld->line, st->name, "%s", err);
			return;
		}
		cfg_servers_free(cfg->servers, cfg->nservers);
		cfg->servers = sv;
		cfg->nservers = n;
		return;
	}
	if (cfgval_listen(value, &listen, &host, &port, err,
	    sizeof err) == -1) {
		cfg_error(ld, ld->line, st->name, "%s", err);
		return;
	}
	free(cfg->listen);
	free(cfg->listen_host);
	cfg->listen = listen;
	cfg->listen_host = host;
	cfg->listen_port = port;
}

/*
 * Set the field of one setting, in base (a struct cfg or a struct
 * cfg_site), from its text; a bad value is logged and counted.
 */
static void
set_value(struct loader *ld, const struct setting *st, void *base,
    const char *value)
{
	void		*field = (char *)base + st->off;
	long long	 n;
	char		 err[256], *url;
	int		 v;

	switch (st->type) {
	case SETTING_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return;
	case SETTING_DURATION:
	case SETTING_SIZE:
	case SETTING_INT:
		if (number_of(ld, st, value, &n) == 0)
			set_number(st, field, n);
		return;
	case SETTING_BOOL:
		if (cfgval_bool(value, (bool *)field) == -1)
			cfg_error(ld, ld->line, st->name, "bad boolean \"%s\" "
			    "(want true or false)", value);
		return;
	case SETTING_FRACTION:
		if (cfgval_fraction(value, (double *)field) == -1)
			cfg_error(ld, ld->line, st->name, "bad fraction \"%s\" "
			    "(want 0%% to 100%%, or 0 to 1)", value);
		return;
	case SETTING_CHOICE:
	case SETTING_LOGFORMAT:
	case SETTING_LOGLEVEL:
		if ((v = choice_of(st, value)) == -1) {
			cfgval_want(st->choices, err, sizeof err);
			cfg_error(ld, ld->line, st->name, "bad value \"%s\" "
			    "(want %s)", value, err);
			return;
		}
		/* Enums and priorities are int-sized. */
		*(int *)field = v;
		return;
	case SETTING_SERVERS:
	case SETTING_LISTEN:
		set_compound(ld, st, value);
		return;
	case SETTING_SITE_ID:
		if (cfgval_int(value, &n) == -1 || n < 0 || n > LONG_MAX) {
			cfg_error(ld, ld->line, st->name, "bad site id \"%s\" "
			    "(want the Site's integer id)", value);
			return;
		}
		*(long *)field = (long)n;
		return;
	case SETTING_URL:
		if (cfgval_url(value, &url, err, sizeof err) == -1) {
			cfg_error(ld, ld->line, st->name, "%s", err);
			return;
		}
		free(*(char **)field);
		*(char **)field = url;
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
	ld->site_line = xreallocarray(ld->site_line,
	    (cfg->nsites + 1) * settings_count, sizeof *ld->site_line);
	memset(ld->site_line + cfg->nsites * settings_count, 0,
	    settings_count * sizeof *ld->site_line);
	return &cfg->sites[cfg->nsites++];
}

/* One key of a "[site DOMAIN]" section. */
static void
site_key(struct loader *ld, const char *domain, const char *name,
    const char *value)
{
	const struct setting	*st;
	struct cfg_site		*site;
	int			*at;
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
	at = &ld->site_line[(size_t)(site - ld->cfg->sites) *
	    settings_count + (size_t)(st - settings_table)];
	if (*at != 0) {
		cfg_error(ld, ld->line, name, "duplicate key");
		return;
	}
	*at = ld->line;
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

/* The line where a key of site i was set, or 0 (before sorting). */
static int
site_key_line(const struct loader *ld, size_t i, const char *name)
{
	const struct setting	*st = settings_find("site", name);

	return st != NULL ? ld->site_line[i * settings_count +
	    (size_t)(st - settings_table)] : 0;
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

/*
 * Where the client secret is read from, once: client_secret_file, or
 * systemd's credential client-secret.  Then whether it can be read.
 */
static void
check_secrets(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;

	cfg->client_secret_path = cfg->client_secret_file != NULL ?
	    xstrdup(cfg->client_secret_file) :
	    secret_credential("client-secret");
	if (cfg->client_secret_file != NULL)
		check_secret(ld, "client_secret_file", cfg->client_secret_path,
		    "");
	else if (cfg->client_id != NULL && cfg->client_secret_path != NULL)
		check_secret(ld, "client_secret_file", cfg->client_secret_path,
		    "$CREDENTIALS_DIRECTORY/client-secret ");
	else if (cfg->client_id != NULL &&
	    ld->secrets == CFG_SECRETS_READ)
		cfg_error(ld, key_line(ld, "discovery", "client_id"),
		    "client_secret_file", "client_id needs "
		    "client_secret_file (or systemd's "
		    "LoadCredential=client-secret:...)");
	else if (cfg->client_id != NULL && ld->secrets == CFG_SECRETS_WARN)
		cfg_warning(ld, key_line(ld, "discovery", "client_id"),
		    "client_secret_file", "no "
		    "client_secret_file, and no $CREDENTIALS_DIRECTORY here: "
		    "the daemon needs systemd's LoadCredential=client-secret:"
		    "... (or client_secret_file)");
	if (cfg->token_file != NULL)
		check_secret(ld, "token_file", cfg->token_file, "");
}

/* The index of the first site (in file order) that asks Discovery, or -1. */
static long
first_configured(const struct cfg *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->nsites; i++)
		if (cfg->sites[i].catalog_api_url != NULL)
			return (long)i;
	return -1;
}

/*
 * How Discovery's token is had: as [discovery] auth says, or (auto) from
 * the keys given.  A site that asks Discovery needs a way, unless auth =
 * none says deliberately that its Discovery wants no token: without one,
 * every request would be refused with 401 and nothing would say why.
 */
static void
check_auth(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	bool		 oauth = cfg->client_id != NULL;
	bool		 token = cfg->token_file != NULL;
	int		 line = key_line(ld, "discovery", "auth");
	long		 i = first_configured(cfg);

	switch (cfg->auth) {
	case AUTH_AUTO:
		cfg->auth = oauth ? AUTH_OAUTH2 : token ? AUTH_TOKEN :
		    AUTH_NONE;
		if (oauth || token || i == -1)
			return;
		cfg_error(ld, site_key_line(ld, (size_t)i, "catalog_api_url"),
		    "catalog_api_url", "[site %s] asks Discovery, but "
		    "[discovery] has no way to get a token: set oauth_url and "
		    "client_id (OAuth2), or token_file; or auth = none if "
		    "this Discovery wants no token", cfg->sites[i].domain);
		return;
	case AUTH_OAUTH2:
		if (!oauth)
			cfg_error(ld, line, "auth", "auth = oauth2 needs "
			    "client_id and oauth_url");
		return;
	case AUTH_TOKEN:
		if (!token)
			cfg_error(ld, line, "auth", "auth = token needs "
			    "token_file");
		return;
	case AUTH_NONE:
		if (oauth || token)
			cfg_error(ld, line, "auth", "auth = none, but %s is "
			    "set: remove one of them", oauth ? "client_id" :
			    "token_file");
		return;
	}
}

/* Whether host is in a domain reserved for examples (RFC 2606, 6761). */
static bool
example_host(const char *host)
{
	static const char *const reserved[] = {
		"example.com", "example.net", "example.org", "example",
		"invalid", NULL
	};
	size_t	i, n, len = strlen(host);

	for (i = 0; reserved[i] != NULL; i++) {
		n = strlen(reserved[i]);
		if (len >= n && strcasecmp(host + len - n, reserved[i]) == 0 &&
		    (len == n || host[len - n - 1] == '.'))
			return true;
	}
	return false;
}

/* A URL still pointing where the example configuration does. */
static void
warn_example(struct loader *ld, int line, const char *key, const char *url)
{
	char	*host;

	if (url == NULL || (host = cfgval_url_host(url)) == NULL)
		return;
	if (example_host(host))
		cfg_warning(ld, line, key, "%s is a domain reserved for "
		    "examples, as in the example configuration: nothing "
		    "answers there; give the real address", host);
	free(host);
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

/* The Redis URL's parts, moved into cfg, and its one server. */
static void
take_redis_url(struct cfg *cfg, struct redis_url *u)
{
	cfg->redis_host = u->host;
	cfg->redis_port = u->port;
	cfg->redis_socket = u->socket;
	cfg->redis_db = u->db;
	cfg->redis_user = u->user;
	cfg->redis_password = u->password;
	cfg_servers_free(cfg->servers, cfg->nservers);
	cfg->servers = xcalloc(1, sizeof *cfg->servers);
	cfg->servers[0].host = xstrdup(u->host != NULL ? u->host : u->socket);
	cfg->servers[0].port = u->port;
	cfg->servers[0].name = u->name;		/* without the password */
	cfg->nservers = 1;
	memset(u, 0, sizeof *u);
}

/*
 * Where a Redis password is read from, once: the file the key names, or
 * (if the URL has no password) systemd's credential, if it is there when
 * connecting.  Then whether that file can be read.
 */
static void
resolve_password(struct loader *ld, const char *section, const char *key,
    const char *file, const char *url_password, const char *credential,
    char **path, bool *optional)
{
	int	line = key_line(ld, section, key);

	if (file != NULL)
		*path = xstrdup(file);
	else if (url_password == NULL)
		*optional = (*path = secret_credential(credential)) != NULL;
	if (url_password != NULL && file != NULL)
		cfg_error(ld, line, key, "a password in the URL and %s: give "
		    "only one", key);
	if (file == NULL || ld->secrets == CFG_SECRETS_SKIP ||
	    access(file, R_OK) == 0)
		return;
	if (ld->secrets == CFG_SECRETS_READ)
		cfg_error(ld, line, key, "cannot read %s: %s", file,
		    strerror(errno));
	else
		cfg_warning(ld, line, key, "cannot read %s here: %s (the "
		    "daemon reads it at every connection: check it can)", file,
		    strerror(errno));
}

/* The [redis] password: password_file, or the credential redis-password. */
static void
check_redis_password(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;

	resolve_password(ld, "redis", "password_file",
	    cfg->redis_password_file, cfg->redis_password, "redis-password",
	    &cfg->redis_password_path, &cfg->redis_password_optional);
}

/* [redis] instead of [memcached]: the URL, the password, the defaults. */
static void
cfg_redis(struct loader *ld)
{
	struct cfg		*cfg = ld->cfg;
	struct redis_url	 u;
	char			 err[256];
	int			 line = key_line(ld, "redis", "url");

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
	if (redisurl_parse(cfg->redis_url, &u, err, sizeof err) == -1) {
		cfg_error(ld, line, "url", "%s", err);
		return;
	}
	take_redis_url(cfg, &u);
	check_redis_password(ld);
	/* Django's default key function, as Tutor's LMS uses; any byte. */
	if (!cfg_seen(ld, "redis", "key_function") ||
	    cfg->key_function == KEYFN_DJANGO)
		cfg->key_function = KEYFN_DJANGO_ANY;
}

/* A copy of n servers. */
static struct cfg_server *
servers_dup(const struct cfg_server *sv, size_t n)
{
	struct cfg_server	*out = xcalloc(n, sizeof *out);
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[i].host = xstrdup(sv[i].host);
		out[i].port = sv[i].port;
		out[i].name = xstrdup(sv[i].name);
	}
	return out;
}

/* "memcached://a:1,b:2": the source's name, from its servers. */
static char *
memcached_name(const struct cfg_server *sv, size_t n)
{
	struct buf	b;
	size_t		i;

	buf_init(&b);
	buf_adds(&b, "memcached://");
	for (i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : ",", sv[i].name);
	return (char *)buf_steal(&b, NULL);
}

/* The change source is the cache the daemon writes, as it reaches it. */
static void
change_own_cache(struct cfg *cfg)
{
	cfg->change_backend = cfg->backend;
	if (cfg->backend == BACKEND_MEMCACHED) {
		cfg->change_servers = servers_dup(cfg->servers, cfg->nservers);
		cfg->nchange_servers = cfg->nservers;
		cfg->change_name = memcached_name(cfg->servers, cfg->nservers);
		return;
	}
	cfg->change_name = xstrdup(cfg->servers[0].name);
	cfg->change_redis_host = cfg->redis_host != NULL ?
	    xstrdup(cfg->redis_host) : NULL;
	cfg->change_redis_port = cfg->redis_port;
	cfg->change_redis_socket = cfg->redis_socket != NULL ?
	    xstrdup(cfg->redis_socket) : NULL;
	cfg->change_redis_db = cfg->redis_db;
	cfg->change_redis_user = cfg->redis_user != NULL ?
	    xstrdup(cfg->redis_user) : NULL;
	cfg->change_redis_password = cfg->redis_password != NULL ?
	    xstrdup(cfg->redis_password) : NULL;
	cfg->change_password_path = cfg->redis_password_path != NULL ?
	    xstrdup(cfg->redis_password_path) : NULL;
	cfg->change_password_optional = cfg->redis_password_optional;
}

/* change_source = redis://... or unix://...; -1 (logged) if it is not. */
static int
change_redis(struct loader *ld, int line)
{
	struct cfg		*cfg = ld->cfg;
	struct redis_url	 u;
	char			 err[256];

	if (redisurl_parse(cfg->change_source, &u, err, sizeof err) == -1) {
		cfg_error(ld, line, "change_source", "%s", err);
		return -1;
	}
	cfg->change_backend = BACKEND_REDIS;
	cfg->change_name = u.name;
	cfg->change_redis_host = u.host;
	cfg->change_redis_port = u.port;
	cfg->change_redis_socket = u.socket;
	cfg->change_redis_db = u.db;
	cfg->change_redis_user = u.user;
	cfg->change_redis_password = u.password;
	memset(&u, 0, sizeof u);
	resolve_password(ld, "discovery", "change_password_file",
	    cfg->change_password_file, cfg->change_redis_password,
	    "change-password", &cfg->change_password_path,
	    &cfg->change_password_optional);
	return 0;
}

/*
 * Whether a memcached text protocol key: 1 to 250 bytes, none of them a
 * space or a control character.
 */
static bool
memcached_key_ok(const char *key)
{
	size_t	i, n = strlen(key);

	for (i = 0; i < n; i++)
		if ((unsigned char)key[i] <= ' ' || key[i] == 0x7f)
			return false;
	return n > 0 && n <= 250;
}

/*
 * [discovery] change_key and change_source (operations.md: the change key):
 * the source's address and credentials, as for the daemon's own cache.
 */
static void
cfg_change(struct loader *ld)
{
	struct cfg		*cfg = ld->cfg;
	const char		*src = cfg->change_source;
	const char		*mc = "memcached://";
	struct cfg_server	*sv;
	char			 err[256];
	size_t			 n;
	int			 line = key_line(ld, "discovery", "change_source");

	if (cfg->change_key != NULL && cfg->change_key[0] == '\0') {
		free(cfg->change_key);
		cfg->change_key = NULL;
	}
	if (src != NULL && src[0] == '\0')
		src = NULL;
	if (cfg->change_password_file != NULL && (src == NULL ||
	    strncmp(src, mc, strlen(mc)) == 0))
		cfg_error(ld, key_line(ld, "discovery", "change_password_file"),
		    "change_password_file", "only for a change_source of "
		    "redis:// (the daemon's own cache has its own password)");
	if (src == NULL)
		change_own_cache(cfg);
	else if (strncmp(src, mc, strlen(mc)) == 0) {
		if (cfgval_servers(src + strlen(mc), &sv, &n, err,
		    sizeof err) == -1) {
			cfg_error(ld, line, "change_source", "%s", err);
			return;
		}
		cfg->change_backend = BACKEND_MEMCACHED;
		cfg->change_servers = sv;
		cfg->nchange_servers = n;
		cfg->change_name = memcached_name(sv, n);
	} else if (strncmp(src, "redis://", 8) == 0 ||
	    strncmp(src, "unix://", 7) == 0) {
		if (change_redis(ld, line) == -1)
			return;
	} else {
		cfg_error(ld, line, "change_source", "bad source \"%s\" (want "
		    "redis://host:port/db or memcached://host:port[,host:"
		    "port])", src);
		return;
	}
	if (cfg->change_key != NULL &&
	    cfg->change_backend == BACKEND_MEMCACHED &&
	    !memcached_key_ok(cfg->change_key))
		cfg_error(ld, key_line(ld, "discovery", "change_key"),
		    "change_key", "not a memcached key (1 to 250 bytes, no "
		    "spaces or control characters): give the key as it is "
		    "on the wire");
}

/* Every site has a site_id of its own; the URLs are not the example's. */
static void
check_sites(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	size_t		 i, j;

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
		warn_example(ld, site_key_line(ld, i, "catalog_api_url"),
		    "catalog_api_url", cfg->sites[i].catalog_api_url);
	}
}

/* Checks that need the whole file. */
static void
cfg_validate(struct loader *ld)
{
	struct cfg	*cfg = ld->cfg;
	size_t		 i, j;

	if (cfg_seen(ld, "redis", NULL))
		cfg_redis(ld);
	if (ld->errors == 0)
		cfg_change(ld);
	check_sites(ld);
	if (cfg->client_id != NULL && cfg->oauth_url == NULL)
		cfg_error(ld, key_line(ld, "discovery", "client_id"),
		    "oauth_url", "client_id needs oauth_url");
	warn_example(ld, key_line(ld, "discovery", "oauth_url"), "oauth_url",
	    cfg->oauth_url);
	check_secrets(ld);
	if (cfg->client_id != NULL && cfg->token_file != NULL)
		cfg_error(ld, key_line(ld, "discovery", "token_file"),
		    "token_file", "use either client_id (OAuth2) or "
		    "token_file, not both");
	check_auth(ld);
	if (cfg->retry_backoff_max_ms < cfg->retry_backoff_ms)
		cfg_error(ld, key_line(ld, "discovery", "retry_backoff_max"),
		    "retry_backoff_max", "smaller than retry_backoff");
	for (i = 0; i < cfg->nservers; i++)
		for (j = 0; j < i; j++)
			if (strcmp(cfg->servers[i].name,
			    cfg->servers[j].name) == 0)
				cfg_error(ld, key_line(ld, "memcached",
				    "servers"), "servers",
				    "server %s is listed twice",
				    cfg->servers[i].name);
	if (cfg->nsites > 1)
		qsort(cfg->sites, cfg->nsites, sizeof *cfg->sites, site_cmp);
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
	char		*text, err[256];
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

	if ((text = secret_read(path, CFG_MAX_SIZE, &len, err,
	    sizeof err)) == NULL) {
		cfg_error(&ld, 0, NULL, "%s", err);
		goto fail;
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
	if (ld.errors != 0)
		goto fail;
	free(ld.key_line);
	free(ld.site_line);
	return cfg;
fail:
	free(ld.key_line);
	free(ld.site_line);
	cfg_free(cfg);
	return NULL;
}

void
cfg_servers_free(struct cfg_server *sv, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(sv[i].host);
		free(sv[i].name);
	}
	free(sv);
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
	free(cfg->client_secret_path);
	free(cfg->token_file);
	free(cfg->change_key);
	free(cfg->change_source);
	free(cfg->change_password_file);
	free(cfg->change_name);
	cfg_servers_free(cfg->change_servers, cfg->nchange_servers);
	free(cfg->change_redis_host);
	free(cfg->change_redis_socket);
	free(cfg->change_redis_user);
	secret_free(cfg->change_redis_password);
	free(cfg->change_password_path);
	cfg_servers_free(cfg->servers, cfg->nservers);
	free(cfg->key_prefix);
	free(cfg->key_version);
	free(cfg->redis_url);
	free(cfg->redis_host);
	free(cfg->redis_socket);
	free(cfg->redis_user);
	secret_free(cfg->redis_password);
	free(cfg->redis_password_file);
	free(cfg->redis_password_path);
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
