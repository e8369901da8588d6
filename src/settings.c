/*
 * settings.c: the table of every configuration key, with its default and
 * help (see settings.h).  Keep conf/programs-cached.conf and
 * man/programs-cached.conf.5 in step: `make check-unit` fails otherwise.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "settings.h"

static const char *const keyfn_names[] = { "edx", "django", NULL };
static const char *const keyhash_names[] = { "md4", "blake2b", NULL };
static const char *const dist_names[] = {
	"rendezvous", "ketama", "all", NULL
};
static const char *const valfmt_names[] = { "pickle", "json", NULL };
static const char *const pwids_names[] = { "keys", "ids", NULL };
/* What log_format_parse() and log_level_parse() accept. */
static const char *const logfmt_names[] = {
	"auto", "json", "journal", "text", NULL
};
static const char *const loglevel_names[] = {
	"error", "warning", "notice", "info", "debug", NULL
};

/* The C type of a field, checked by the compiler. */
#define CTYPE(x)	_Generic((x),					\
	int: SETTING_C_INT,						\
	long: SETTING_C_LONG,						\
	size_t: SETTING_C_SIZE,						\
	default: SETTING_C_OTHER)

/* A key of struct cfg: section, name, type, field, range, default, help. */
#define G(s, n, t, f, lo, hi, d, h)					\
	{ s, n, t, SETTING_GLOBAL, offsetof(struct cfg, f),		\
	  CTYPE(((struct cfg *)0)->f), lo, hi, NULL, d, h }
/* One of a list of names, stored as its index (or parsed by log.c). */
#define C(s, n, t, f, names, d, h)					\
	{ s, n, t, SETTING_GLOBAL, offsetof(struct cfg, f),		\
	  SETTING_C_OTHER, 0, 0, names, d, h }
/* A key of each [site DOMAIN] section. */
#define S(n, t, f, d, h)						\
	{ "site", n, t, SETTING_SITE, offsetof(struct cfg_site, f),	\
	  CTYPE(((struct cfg_site *)0)->f), 0, 0, NULL, d, h }

#define SEC_MS		1000LL
#define DAY_MS		(24LL * 3600 * SEC_MS)

const struct setting settings_table[] = {
	G("discovery", "oauth_url", SETTING_STRING, oauth_url, 0, 0, NULL,
	    "The LMS root URL; tokens come from {oauth_url}/oauth2/"
	    "access_token."),
	G("discovery", "client_id", SETTING_STRING, client_id, 0, 0, NULL,
	    "Client ID of the LMS OAuth2 application (client credentials)."),
	G("discovery", "client_secret_file", SETTING_STRING,
	    client_secret_file, 0, 0, NULL,
	    "File holding the client secret; unset: "
	    "$CREDENTIALS_DIRECTORY/client-secret."),
	G("discovery", "token_file", SETTING_STRING, token_file, 0, 0, NULL,
	    "File holding a static JWT, sent instead of using OAuth2."),
	G("discovery", "connect_timeout", SETTING_DURATION, connect_timeout_ms,
	    1, 600 * SEC_MS, "5s", "TCP and TLS connection timeout."),
	G("discovery", "request_timeout", SETTING_DURATION, request_timeout_ms,
	    1, 3600 * SEC_MS, "60s", "Timeout of one whole request."),
	G("discovery", "low_speed_limit", SETTING_SIZE, low_speed_limit,
	    0, 1LL << 30, "1K",
	    "Abort a transfer slower than this many bytes/s ..."),
	G("discovery", "low_speed_time", SETTING_DURATION, low_speed_time_ms,
	    0, 3600 * SEC_MS, "30s", "... for this long."),
	G("discovery", "refresh_deadline", SETTING_DURATION,
	    refresh_deadline_ms, 1000, DAY_MS, "30m",
	    "Timeout of one whole refresh."),
	G("discovery", "max_in_flight", SETTING_INT, max_in_flight, 1, 256,
	    "8", "Program details fetched at once."),
	G("discovery", "retries", SETTING_INT, retries, 0, 20, "4",
	    "How many more times a failed request is tried."),
	G("discovery", "retry_backoff", SETTING_DURATION, retry_backoff_ms,
	    1, 3600 * SEC_MS, "250ms", "First pause before a retry."),
	G("discovery", "retry_backoff_max", SETTING_DURATION,
	    retry_backoff_max_ms, 1, 3600 * SEC_MS, "30s",
	    "Longest pause before a retry."),
	G("discovery", "max_response_size", SETTING_SIZE, max_response_size,
	    1024, 1LL << 32, "64M", "Larger responses are refused."),
	G("discovery", "max_detail_size", SETTING_SIZE, max_detail_size,
	    1024, 1LL << 32, "4M", "Larger program details are refused."),
	G("discovery", "max_pages", SETTING_INT, max_pages, 1, 1000000,
	    "1000", "Pagination stops after this many pages."),

	G("memcached", "servers", SETTING_SERVERS, servers, 0, 0,
	    "127.0.0.1:11211",
	    "host:port or [v6]:port, in the order of the LMS's LOCATION."),
	C("memcached", "key_function", SETTING_CHOICE, key_function,
	    keyfn_names, "edx",
	    "edx: Open edX's safe_key; django: Django's default."),
	G("memcached", "key_prefix", SETTING_STRING, key_prefix, 0, 0,
	    "default", "The LMS's KEY_PREFIX."),
	G("memcached", "key_version", SETTING_STRING, key_version, 0, 0,
	    "1", "The LMS's VERSION."),
	C("memcached", "long_key_hash", SETTING_CHOICE, long_key_hash,
	    keyhash_names, "md4", "How keys over 250 characters are hashed."),
	C("memcached", "distribution", SETTING_CHOICE, distribution,
	    dist_names, "rendezvous", "Which server a key goes to."),
	C("memcached", "value_format", SETTING_CHOICE, value_format,
	    valfmt_names, "pickle", "pickle (what Django reads) or json."),
	G("memcached", "pickle_protocol", SETTING_INT, pickle_protocol, 2, 5,
	    "4", "Pickle protocol of the values."),
	C("memcached", "pathway_ids", SETTING_CHOICE, pathway_ids,
	    pwids_names, "keys", "What pathway-ids-{domain} holds."),
	G("memcached", "connect_timeout", SETTING_DURATION,
	    mc_connect_timeout_ms, 1, 600 * SEC_MS, "500ms",
	    "memcached connection timeout."),
	G("memcached", "io_timeout", SETTING_DURATION, mc_io_timeout_ms,
	    1, 600 * SEC_MS, "2s", "memcached read and write timeout."),

	/*
	 * [redis] instead of [memcached] (SPEC §9).  The keys it shares with
	 * [memcached] set the same fields, so they have no default here
	 * (the [memcached] one applies; key_function becomes django in
	 * config.c's cfg_redis when not given).
	 */
	G("redis", "url", SETTING_STRING, redis_url, 0, 0, NULL,
	    "redis://[user@]host[:port][/db] or unix:///path?db=N."),
	G("redis", "password_file", SETTING_STRING, redis_password_file, 0, 0,
	    NULL, "File holding the password; unset: "
	    "$CREDENTIALS_DIRECTORY/redis-password if present."),
	C("redis", "key_function", SETTING_CHOICE, key_function,
	    keyfn_names, NULL,
	    "django (the default here, as Tutor) or edx."),
	G("redis", "key_prefix", SETTING_STRING, key_prefix, 0, 0,
	    NULL, "The LMS's KEY_PREFIX (default)."),
	G("redis", "key_version", SETTING_STRING, key_version, 0, 0,
	    NULL, "The LMS's VERSION (1)."),
	C("redis", "long_key_hash", SETTING_CHOICE, long_key_hash,
	    keyhash_names, NULL, "With key_function = edx (md4)."),
	G("redis", "pickle_protocol", SETTING_INT, pickle_protocol, 2, 5,
	    NULL, "Pickle protocol of the values (4)."),
	C("redis", "pathway_ids", SETTING_CHOICE, pathway_ids,
	    pwids_names, NULL, "What pathway-ids-{domain} holds (keys)."),
	G("redis", "connect_timeout", SETTING_DURATION,
	    mc_connect_timeout_ms, 1, 600 * SEC_MS, NULL,
	    "Redis connection timeout (500ms)."),
	G("redis", "io_timeout", SETTING_DURATION, mc_io_timeout_ms,
	    1, 600 * SEC_MS, NULL, "Redis read and write timeout (2s)."),

	G("daemon", "refresh_interval", SETTING_DURATION, refresh_interval_ms,
	    1000, 7 * DAY_MS, "15m",
	    "Time between refreshes, +/- 10 % jitter."),
	G("daemon", "failed_refresh_retry", SETTING_DURATION,
	    failed_refresh_retry_ms, 1000, DAY_MS, "30s",
	    "First retry after a failed refresh; doubles up to "
	    "refresh_interval."),
	G("daemon", "incremental_interval", SETTING_DURATION,
	    incremental_interval_ms, 0, DAY_MS, "1m",
	    "Time between incremental refreshes (SPEC 10); 0: none."),
	G("daemon", "incremental_overlap", SETTING_DURATION,
	    incremental_overlap_ms, 0, DAY_MS, "5m",
	    "How far before the newest timestamp held they look."),
	G("daemon", "check_interval", SETTING_DURATION, check_interval_ms,
	    100, DAY_MS, "30s",
	    "How often memcached restarts and flushes are looked for."),
	G("daemon", "verify_interval", SETTING_DURATION, verify_interval_ms,
	    100, 7 * DAY_MS, "10m",
	    "How often every published key is read back."),
	G("daemon", "state_dir", SETTING_STRING, state_dir, 0, 0,
	    "/var/lib/programs-cached",
	    "Where the snapshot of the last publish is kept."),
	G("daemon", "listen", SETTING_LISTEN, listen, 0, 0, NULL,
	    "Address of /metrics, /healthz and /readyz; unset: none."),
	C("daemon", "log_format", SETTING_LOGFORMAT, log_format,
	    logfmt_names, "auto", "How events are written."),
	C("daemon", "log_level", SETTING_LOGLEVEL, log_level,
	    loglevel_names, "info", "Events less important are not written."),
	G("daemon", "max_shrink", SETTING_FRACTION, max_shrink, 0, 0, "10%",
	    "A site shrinking by more is not published."),
	G("daemon", "force_publish", SETTING_BOOL, force_publish, 0, 0,
	    "false", "Publish such a site anyway."),
	G("daemon", "stale_after", SETTING_INT, stale_after, 0, 1000000, "3",
	    "Refreshes before keys gone upstream are deleted; 0: never."),
	G("daemon", "workers", SETTING_INT, workers, -1, 64, "auto",
	    "Threads parsing details; auto: one per CPU, at most 8; "
	    "0 or 1: none."),

	G("lease", "enabled", SETTING_BOOL, lease_enabled, 0, 0, "false",
	    "Share one writer among several daemons through a lease key in "
	    "the cache."),
	G("lease", "ttl", SETTING_DURATION, lease_ttl_ms, 3 * SEC_MS, DAY_MS,
	    "60s", "How long the lease lasts unless renewed (at a third of it)."),
	G("lease", "key", SETTING_STRING, lease_key, 0, 0,
	    "programs-cached:lease",
	    "The lease's cache key (through the key function)."),

	S("site_id", SETTING_SITE_ID, site_id, NULL,
	    "The Django Site id (required)."),
	S("catalog_api_url", SETTING_URL, catalog_api_url, NULL,
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
		if (st->dflt != NULL)
			fprintf(f, "\n#%s = %s\n", st->name, st->dflt);
		else
			fprintf(f, "\n#%s =\n", st->name);
	}
}
