/*
 * settings.c: the table of every configuration key, with its default,
 * what a change of it needs and help, and what walks it: find a key,
 * compare two configurations, print the table (see settings.h).  Keep
 * conf/programs-cached.conf and man/programs-cached.conf.5 in step:
 * `make check-unit` fails otherwise.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "settings.h"
#include "util.h"

static const char *const keyfn_names[] = { "edx", "django", NULL };
static const char *const keyhash_names[] = { "md4", "blake2b", NULL };
static const char *const dist_names[] = {
	"rendezvous", "ketama", "all", NULL
};
static const char *const valfmt_names[] = { "pickle", "json", NULL };
static const char *const pwids_names[] = { "keys", "ids", NULL };
/* In the order of enum cfg_auth. */
static const char *const auth_names[] = {
	"auto", "oauth2", "token", "none", NULL
};
/* In the order of enum cfg_change_notify. */
static const char *const notify_names[] = { "auto", "on", "off", NULL };
/* What log_format_parse() and log_level_parse() accept. */
static const char *const logfmt_names[] = {
	"auto", "json", "journal", "text", NULL
};
/* In the order of enum cfg_reader_watch. */
static const char *const rwatch_names[] = { "auto", "on", "off", NULL };
static const char *const loglevel_names[] = {
	"error", "warning", "notice", "info", "debug", NULL
};

/* The C type of a field, checked by the compiler. */
#define CTYPE(x)	_Generic((x),					\
	int: SETTING_C_INT,						\
	long: SETTING_C_LONG,						\
	size_t: SETTING_C_SIZE,						\
	default: SETTING_C_OTHER)

/*
 * A key of struct cfg: section, name, type, field, range, default, what a
 * change needs on SIGHUP, help.
 */
#define G(s, n, t, f, lo, hi, d, chg, h)				\
	{ s, n, t, SETTING_GLOBAL, offsetof(struct cfg, f),		\
	  CTYPE(((struct cfg *)0)->f), chg, lo, hi, NULL, d, h }
/* One of a list of names, stored as its index (or parsed by log.c). */
#define C(s, n, t, f, names, d, chg, h)					\
	{ s, n, t, SETTING_GLOBAL, offsetof(struct cfg, f),		\
	  SETTING_C_OTHER, chg, 0, 0, names, d, h }
/* A key of each [site DOMAIN] section. */
#define S(n, t, f, d, chg, h)						\
	{ "site", n, t, SETTING_SITE, offsetof(struct cfg_site, f),	\
	  CTYPE(((struct cfg_site *)0)->f), chg, 0, 0, NULL, d, h }

/* What a change needs on SIGHUP (enum setting_change), for the rows. */
#define LIVE		SETTING_APPLIES
#define STORE		SETTING_NEW_STORE
#define TOKEN		SETTING_NEW_TOKEN
#define RESTART		SETTING_RESTART

#define SEC_MS		1000LL
#define DAY_MS		(24LL * 3600 * SEC_MS)

const struct setting settings_table[] = {
	G("discovery", "oauth_url", SETTING_STRING, oauth_url, 0, 0, NULL,
	    TOKEN,
	    "The LMS root URL; tokens come from {oauth_url}/oauth2/"
	    "access_token."),
	G("discovery", "client_id", SETTING_STRING, client_id, 0, 0, NULL,
	    TOKEN,
	    "Client ID of the LMS OAuth2 application (client credentials)."),
	G("discovery", "client_secret_file", SETTING_STRING,
	    client_secret_file, 0, 0, NULL, TOKEN,
	    "File holding the client secret; unset: "
	    "$CREDENTIALS_DIRECTORY/client-secret."),
	/* Read again by every refresh. */
	G("discovery", "token_file", SETTING_STRING, token_file, 0, 0, NULL,
	    LIVE, "File holding a static JWT, sent instead of using OAuth2."),
	C("discovery", "auth", SETTING_CHOICE, auth, auth_names, "auto", LIVE,
	    "auto: oauth2 with client_id, token with token_file; none: "
	    "Discovery wants no token."),
	G("discovery", "connect_timeout", SETTING_DURATION, connect_timeout_ms,
	    1, 600 * SEC_MS, "5s", LIVE, "TCP and TLS connection timeout."),
	G("discovery", "request_timeout", SETTING_DURATION, request_timeout_ms,
	    1, 3600 * SEC_MS, "60s", LIVE, "Timeout of one whole request."),
	G("discovery", "low_speed_limit", SETTING_SIZE, low_speed_limit,
	    0, 1LL << 30, "1K", LIVE,
	    "Abort a transfer slower than this many bytes/s ..."),
	G("discovery", "low_speed_time", SETTING_DURATION, low_speed_time_ms,
	    0, 3600 * SEC_MS, "30s", LIVE, "... for this long."),
	G("discovery", "refresh_deadline", SETTING_DURATION,
	    refresh_deadline_ms, 1000, DAY_MS, "30m", LIVE,
	    "Timeout of one whole refresh."),
	G("discovery", "max_in_flight", SETTING_INT, max_in_flight, 1, 256,
	    "8", LIVE, "Program details fetched at once."),
	G("discovery", "retries", SETTING_INT, retries, 0, 20, "4", LIVE,
	    "How many more times a failed request is tried."),
	G("discovery", "retry_backoff", SETTING_DURATION, retry_backoff_ms,
	    1, 3600 * SEC_MS, "250ms", LIVE, "First pause before a retry."),
	G("discovery", "retry_backoff_max", SETTING_DURATION,
	    retry_backoff_max_ms, 1, 3600 * SEC_MS, "30s", LIVE,
	    "Longest pause before a retry."),
	G("discovery", "max_response_size", SETTING_SIZE, max_response_size,
	    1024, 1LL << 32, "64M", LIVE, "Larger responses are refused."),
	G("discovery", "max_detail_size", SETTING_SIZE, max_detail_size,
	    1024, 1LL << 32, "4M", LIVE, "Larger program details are refused."),
	G("discovery", "max_pages", SETTING_INT, max_pages, 1, 1000000,
	    "1000", LIVE, "Pagination stops after this many pages."),
	/*
	 * The change-driven refresh (operations.md: the change key).  A change
	 * of any of these reconnects to the change source (change.c compares
	 * them).
	 */
	G("discovery", "change_key", SETTING_STRING, change_key, 0, 0, NULL,
	    LIVE, "Discovery's api_timestamp as a wire key (Tutor: "
	    "discovery:1:api_timestamp); unset: no change-driven refresh."),
	G("discovery", "change_source", SETTING_STRING, change_source, 0, 0,
	    NULL, LIVE, "Where change_key is: redis://host:port/db or "
	    "memcached://host:port[,host:port]; unset: the cache written."),
	G("discovery", "change_password_file", SETTING_STRING,
	    change_password_file, 0, 0, NULL, LIVE, "File holding "
	    "change_source's Redis password; unset: "
	    "$CREDENTIALS_DIRECTORY/change-password if present."),
	C("discovery", "change_notify", SETTING_CHOICE, change_notify,
	    notify_names, "auto", LIVE, "auto: the source's pushes if it has "
	    "them; on: turn Redis's on (CONFIG SET); off: polls only."),
	G("discovery", "change_poll", SETTING_DURATION, change_poll_ms,
	    100, 3600 * SEC_MS, "1s", LIVE, "How often change_key is read."),
	G("discovery", "change_debounce", SETTING_DURATION, change_debounce_ms,
	    0, 60 * SEC_MS, "1s", LIVE, "Quiet awaited after a change (at "
	    "most 10 s after its first bump) before the refresh."),
	G("discovery", "change_full_delay", SETTING_DURATION,
	    change_full_delay_ms, 1000, DAY_MS, "5m", LIVE, "A full refresh "
	    "this long after changes the incremental ones found nothing for."),

	G("memcached", "servers", SETTING_SERVERS, servers, 0, 0,
	    "127.0.0.1:11211", STORE,
	    "host:port or [v6]:port, in the order of the LMS's LOCATION."),
	C("memcached", "key_function", SETTING_CHOICE, key_function,
	    keyfn_names, "edx", STORE,
	    "edx: Open edX's safe_key; django: Django's default."),
	G("memcached", "key_prefix", SETTING_STRING, key_prefix, 0, 0,
	    "default", STORE, "The LMS's KEY_PREFIX."),
	G("memcached", "key_version", SETTING_STRING, key_version, 0, 0,
	    "1", STORE, "The LMS's VERSION."),
	C("memcached", "long_key_hash", SETTING_CHOICE, long_key_hash,
	    keyhash_names, "md4", STORE,
	    "How keys over 250 characters are hashed."),
	C("memcached", "distribution", SETTING_CHOICE, distribution,
	    dist_names, "rendezvous", STORE, "Which server a key goes to."),
	C("memcached", "value_format", SETTING_CHOICE, value_format,
	    valfmt_names, "pickle", STORE,
	    "pickle (what Django reads) or json."),
	G("memcached", "pickle_protocol", SETTING_INT, pickle_protocol, 2, 5,
	    "4", STORE, "Pickle protocol of the values."),
	C("memcached", "pathway_ids", SETTING_CHOICE, pathway_ids,
	    pwids_names, "keys", LIVE, "What pathway-ids-{domain} holds."),
	G("memcached", "connect_timeout", SETTING_DURATION,
	    mc_connect_timeout_ms, 1, 600 * SEC_MS, "500ms", STORE,
	    "memcached connection timeout."),
	G("memcached", "io_timeout", SETTING_DURATION, mc_io_timeout_ms,
	    1, 600 * SEC_MS, "2s", STORE, "memcached read and write timeout."),

	/*
	 * [redis] instead of [memcached] (operations.md: Redis).  The keys it
	 * shares with [memcached] set the same fields, so they have no default
	 * here (the [memcached] one applies; key_function becomes django in
	 * config.c's cfg_redis when not given).
	 */
	G("redis", "url", SETTING_STRING, redis_url, 0, 0, NULL, STORE,
	    "redis://[user@]host[:port][/db] or unix:///path?db=N."),
	G("redis", "password_file", SETTING_STRING, redis_password_file, 0, 0,
	    NULL, STORE, "File holding the password; unset: "
	    "$CREDENTIALS_DIRECTORY/redis-password if present."),
	C("redis", "key_function", SETTING_CHOICE, key_function,
	    keyfn_names, NULL, STORE,
	    "django (the default here, as Tutor) or edx."),
	G("redis", "key_prefix", SETTING_STRING, key_prefix, 0, 0,
	    NULL, STORE, "The LMS's KEY_PREFIX (default)."),
	G("redis", "key_version", SETTING_STRING, key_version, 0, 0,
	    NULL, STORE, "The LMS's VERSION (1)."),
	C("redis", "long_key_hash", SETTING_CHOICE, long_key_hash,
	    keyhash_names, NULL, STORE, "With key_function = edx (md4)."),
	G("redis", "pickle_protocol", SETTING_INT, pickle_protocol, 2, 5,
	    NULL, STORE, "Pickle protocol of the values (4)."),
	C("redis", "pathway_ids", SETTING_CHOICE, pathway_ids,
	    pwids_names, NULL, LIVE, "What pathway-ids-{domain} holds (keys)."),
	G("redis", "connect_timeout", SETTING_DURATION,
	    mc_connect_timeout_ms, 1, 600 * SEC_MS, NULL, STORE,
	    "Redis connection timeout (500ms)."),
	G("redis", "io_timeout", SETTING_DURATION, mc_io_timeout_ms,
	    1, 600 * SEC_MS, NULL, STORE, "Redis read and write timeout (2s)."),

	G("daemon", "refresh_interval", SETTING_DURATION, refresh_interval_ms,
	    1000, 7 * DAY_MS, "15m", LIVE,
	    "Time between refreshes, +/- 10 % jitter."),
	G("daemon", "failed_refresh_retry", SETTING_DURATION,
	    failed_refresh_retry_ms, 1000, DAY_MS, "30s", LIVE,
	    "First retry after a failed refresh; doubles up to "
	    "refresh_interval."),
	G("daemon", "incremental_interval", SETTING_DURATION,
	    incremental_interval_ms, 0, DAY_MS, "1m", LIVE,
	    "Time between incremental refreshes; 0: none."),
	G("daemon", "incremental_overlap", SETTING_DURATION,
	    incremental_overlap_ms, 0, DAY_MS, "5m", LIVE,
	    "How far before the newest timestamp held they look."),
	G("daemon", "check_interval", SETTING_DURATION, check_interval_ms,
	    100, DAY_MS, "30s", LIVE,
	    "How often memcached restarts and flushes are looked for."),
	G("daemon", "verify_interval", SETTING_DURATION, verify_interval_ms,
	    100, 7 * DAY_MS, "10m", LIVE,
	    "How often every published key is read back."),
	G("daemon", "state_dir", SETTING_STRING, state_dir, 0, 0,
	    "/var/lib/programs-cached", RESTART,
	    "Where the snapshot of the last publish is kept."),
	G("daemon", "listen", SETTING_LISTEN, listen, 0, 0, NULL, LIVE,
	    "Address of /metrics, /healthz and /readyz; unset: none."),
	C("daemon", "log_format", SETTING_LOGFORMAT, log_format,
	    logfmt_names, "auto", LIVE, "How events are written."),
	C("daemon", "log_level", SETTING_LOGLEVEL, log_level,
	    loglevel_names, "info", LIVE,
	    "Events less important are not written."),
	G("daemon", "max_shrink", SETTING_FRACTION, max_shrink, 0, 0, "10%",
	    LIVE, "A site shrinking by more is not published."),
	G("daemon", "force_publish", SETTING_BOOL, force_publish, 0, 0,
	    "false", LIVE, "Publish such a site anyway."),
	G("daemon", "stale_after", SETTING_INT, stale_after, 0, 1000000, "3",
	    LIVE, "Refreshes before keys gone upstream are deleted; 0: never."),
	G("daemon", "workers", SETTING_INT, workers, -1, 64, "auto", RESTART,
	    "Threads parsing details; auto: one per CPU, at most 8; "
	    "0 or 1: none."),
	C("daemon", "reader_watch", SETTING_CHOICE, reader_watch,
	    rwatch_names, "auto", LIVE,
	    "Watch the cache's reads (memcached watch, Redis keymiss "
	    "events): lost keys back at once; on: Redis's CONFIG SET too."),

	G("lease", "enabled", SETTING_BOOL, lease_enabled, 0, 0, "false",
	    RESTART,
	    "Share one writer among several daemons through a lease key in "
	    "the cache."),
	G("lease", "ttl", SETTING_DURATION, lease_ttl_ms, 3 * SEC_MS, DAY_MS,
	    "60s", RESTART,
	    "How long the lease lasts unless renewed (at a third of it)."),
	G("lease", "key", SETTING_STRING, lease_key, 0, 0,
	    "programs-cached:lease", LIVE,
	    "The lease's cache key (through the key function)."),

	S("site_id", SETTING_SITE_ID, site_id, NULL, LIVE,
	    "The Django Site id (required)."),
	S("catalog_api_url", SETTING_URL, catalog_api_url, NULL, LIVE,
	    "The site's Discovery API; unset: an unconfigured site."),
};

const size_t settings_count = sizeof settings_table / sizeof settings_table[0];

const struct setting *
settings_find(const char *section, const char *name)
{
	size_t	i;

	for (i = 0; i < settings_count; i++)
		if (strcmp(settings_table[i].section, section) == 0 &&
		    strcmp(settings_table[i].name, name) == 0)
			return &settings_table[i];
	return NULL;
}

bool
settings_section_known(const char *section)
{
	size_t	i;

	for (i = 0; i < settings_count; i++)
		if (strcmp(settings_table[i].section, section) == 0)
			return true;
	return false;
}

/* Whether two optional strings are equal (both NULL counts). */
static bool
same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether one setting's field is the same in a and b (cfgs or sites). */
static bool
same_field(const struct setting *st, const void *a, const void *b)
{
	const void	*fa = (const char *)a + st->off;
	const void	*fb = (const char *)b + st->off;

	switch (st->type) {
	case SETTING_STRING:
	case SETTING_LISTEN:	/* the address as written out */
	case SETTING_URL:
		return same_text(*(char *const *)fa, *(char *const *)fb);
	case SETTING_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case SETTING_FRACTION:
		return *(const double *)fa == *(const double *)fb;
	case SETTING_SITE_ID:
		return *(const long *)fa == *(const long *)fb;
	case SETTING_SERVERS: {
		const struct cfg	*ca = a, *cb = b;
		size_t			 i;

		if (ca->nservers != cb->nservers)
			return false;
		for (i = 0; i < ca->nservers; i++)
			if (strcmp(ca->servers[i].name,
			    cb->servers[i].name) != 0)
				return false;
		return true;
	}
	default:
		break;
	}
	switch (st->ctype) {
	case SETTING_C_LONG:
		return *(const long *)fa == *(const long *)fb;
	case SETTING_C_SIZE:
		return *(const size_t *)fa == *(const size_t *)fb;
	case SETTING_C_INT:
	case SETTING_C_OTHER:	/* choices: enums and priorities, ints */
		break;
	}
	return *(const int *)fa == *(const int *)fb;
}

/* Whether a site setting is the same for every site of a and b. */
static bool
same_sites(const struct setting *st, const struct cfg *a,
    const struct cfg *b)
{
	size_t	i;

	if (a->nsites != b->nsites)
		return false;
	for (i = 0; i < a->nsites; i++)
		if (strcmp(a->sites[i].domain, b->sites[i].domain) != 0 ||
		    !same_field(st, &a->sites[i], &b->sites[i]))
			return false;
	return true;
}

const struct setting *
settings_next_differ(const struct cfg *a, const struct cfg *b,
    unsigned changes, size_t *i)
{
	const struct setting	*st;

	while (*i < settings_count) {
		st = &settings_table[(*i)++];
		if ((st->change & changes) == 0)
			continue;
		if (st->scope == SETTING_SITE ? !same_sites(st, a, b) :
		    !same_field(st, a, b))
			return st;
	}
	return NULL;
}

bool
settings_differ(const struct cfg *a, const struct cfg *b, unsigned changes)
{
	size_t	i = 0;

	return settings_next_differ(a, b, changes, &i) != NULL;
}

/* The bytes of a field that is not a string. */
static size_t
field_size(const struct setting *st)
{
	if (st->type == SETTING_BOOL)
		return sizeof(bool);
	if (st->type == SETTING_FRACTION)
		return sizeof(double);
	switch (st->ctype) {
	case SETTING_C_LONG:
		return sizeof(long);
	case SETTING_C_SIZE:
		return sizeof(size_t);
	case SETTING_C_INT:
	case SETTING_C_OTHER:
		break;
	}
	return sizeof(int);
}

void
settings_keep(struct cfg *to, const struct cfg *from, unsigned changes)
{
	const struct setting	*st;
	size_t			 i;
	void			*dst;
	const void		*src;
	char			*s;

	for (i = 0; i < settings_count; i++) {
		st = &settings_table[i];
		if ((st->change & changes) == 0)
			continue;
		if (st->scope != SETTING_GLOBAL || st->type == SETTING_SERVERS)
			fatalx("settings_keep: [%s] %s is kept by no code",
			    st->section, st->name);
		dst = (char *)to + st->off;
		src = (const char *)from + st->off;
		switch (st->type) {
		case SETTING_STRING:
		case SETTING_LISTEN:
		case SETTING_URL:
			memcpy(&s, dst, sizeof s);
			free(s);
			memcpy(&s, src, sizeof s);
			if (s != NULL)
				s = xstrdup(s);
			memcpy(dst, &s, sizeof s);
			break;
		default:
			memcpy(dst, src, field_size(st));
			break;
		}
	}
}

/* What a value of each type looks like, for settings_print(). */
static const char *const type_names[] = {
	[SETTING_STRING] = "text",
	[SETTING_DURATION] = "duration (ms, s, m, h)",
	[SETTING_SIZE] = "size (bytes; K, M, G)",
	[SETTING_INT] = "integer",
	[SETTING_BOOL] = "boolean",
	[SETTING_FRACTION] = "fraction (10% or 0.1)",
	[SETTING_CHOICE] = "one of",
	[SETTING_SERVERS] = "host:port list",
	[SETTING_LISTEN] = "host:port, [v6]:port or a port",
	[SETTING_LOGFORMAT] = "one of",
	[SETTING_LOGLEVEL] = "one of",
	[SETTING_SITE_ID] = "integer",
	[SETTING_URL] = "http:// or https:// URL"
};

/* What a change of the key needs on SIGHUP, for settings_print(). */
static const char *
change_name(unsigned change)
{
	switch (change) {
	case SETTING_APPLIES:
		return "applies on SIGHUP";
	case SETTING_NEW_STORE:
		return "SIGHUP: new cache connections, every key written again";
	case SETTING_NEW_TOKEN:
		return "SIGHUP: a new token";
	case SETTING_RESTART:
		return "read at start-up only";
	}
	return "?";
}

void
settings_print(FILE *f)
{
	const struct setting	*st;
	const char		*section = "";
	size_t			 i, j;

	for (i = 0; i < settings_count; i++) {
		st = &settings_table[i];
		if (strcmp(st->section, section) != 0) {
			section = st->section;
			fprintf(f, "%s[%s%s]\n", i == 0 ? "" : "\n", section,
			    st->scope == SETTING_SITE ? " DOMAIN" : "");
		}
		fprintf(f, "# %s\n# %s", st->help, type_names[st->type]);
		for (j = 0; st->choices != NULL && st->choices[j] != NULL; j++)
			fprintf(f, "%s%s", j == 0 ? " " : ", ",
			    st->choices[j]);
		if (st->min < st->max && st->type == SETTING_DURATION)
			fprintf(f, ", %lldms to %lldms", st->min, st->max);
		else if (st->min < st->max)
			fprintf(f, ", %lld to %lld", st->min, st->max);
		fprintf(f, "; %s", change_name(st->change));
		if (st->dflt != NULL)
			fprintf(f, "\n#%s = %s\n", st->name, st->dflt);
		else
			fprintf(f, "\n#%s =\n", st->name);
	}
}
