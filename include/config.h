/*
 * config.h: the INI configuration (configuration.md: Configuration), read with
 * inih.
 *
 * cfg_load() validates everything it reads: an unknown section or key, a
 * bad value, a line too long, a missing or unreadable file, a file that is
 * not a regular file or is larger than CFG_MAX_SIZE, a site whose
 * Discovery has no way to get a token are each logged as a config_error
 * event naming the file, the line and the key, and make the load fail.
 * Nothing half-read is ever returned.  What is suspicious but may be meant
 * (a reserved example domain in a URL, a secret the caller cannot read
 * under --check-config) is a config_warning.  The keys, their types,
 * ranges, defaults and what a change of each needs on SIGHUP are the
 * table of settings.h (settings_differ() compares two cfgs by it); the
 * grammar of values is cfgval.h, Redis URLs redisurl.h, reading files and
 * secrets secret.h.
 *
 * A struct cfg is read-only once loaded, and holds everything derived from
 * the environment too ($CREDENTIALS_DIRECTORY is resolved here, once):
 * other modules read paths and values from it, never from getenv().
 */
#ifndef PCD_CONFIG_H
#define PCD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "log.h"
#include "util.h"

#define CFG_DEFAULT_PATH	"/etc/programs-cached/programs-cached.conf"
/* The largest configuration file read (1 MiB). */
#define CFG_MAX_SIZE		(1024 * 1024)

enum cfg_distribution {
	DIST_RENDEZVOUS,
	DIST_KETAMA,
	DIST_ALL
};

enum cfg_value_format {
	VALUE_PICKLE,
	VALUE_JSON
};

enum cfg_pathway_ids {
	PATHWAY_IDS_KEYS,	/* "pathway-7", as cache_programs writes */
	PATHWAY_IDS_IDS		/* 7, what the LMS reader looks up */
};

/* How Discovery's token is had ([discovery] auth). */
enum cfg_auth {
	AUTH_AUTO,	/* as written only: resolved when loaded */
	AUTH_OAUTH2,	/* client_id, oauth_url and the client secret */
	AUTH_TOKEN,	/* a static JWT from token_file */
	AUTH_NONE	/* no token: a Discovery that asks for none */
};

enum cfg_backend {
	BACKEND_MEMCACHED,	/* a [memcached] section, or neither */
	BACKEND_REDIS		/* a [redis] section */
};

/* [daemon] reader_watch (rwatch.h). */
enum cfg_reader_watch {
	READER_WATCH_AUTO,	/* what the server offers */
	READER_WATCH_ON,	/* Redis: turn the notifications on */
	READER_WATCH_OFF
};

/* Whether the change source's pushes are used ([discovery] change_notify). */
enum cfg_change_notify {
	CHANGE_NOTIFY_AUTO,	/* where the source has them, as it is */
	CHANGE_NOTIFY_ON,	/* Redis: turn them on (CONFIG SET) */
	CHANGE_NOTIFY_OFF	/* polling only */
};

struct cfg_server {
	char	*host;
	int	 port;
	char	*name;		/* "host:port", pymemcache's node name */
};

struct cfg_site {
	char	*domain;
	long	 site_id;
	char	*catalog_api_url;	/* NULL: unconfigured site */
	int	 line;			/* where its section starts */
};

/* One per process, read-only: fields go by section, not by size. */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct cfg {
	char			*path;

	/* [discovery] */
	char			*oauth_url;
	char			*client_id;
	char			*client_secret_file;
	char			*token_file;
	enum cfg_auth		 auth;		/* loaded: never AUTH_AUTO */
	/*
	 * Resolved when loaded: client_secret_file, or
	 * $CREDENTIALS_DIRECTORY/client-secret; NULL: neither.
	 */
	char			*client_secret_path;
	long			 connect_timeout_ms;
	long			 request_timeout_ms;
	long			 low_speed_limit;	/* bytes/s */
	long			 low_speed_time_ms;
	long			 refresh_deadline_ms;
	int			 max_in_flight;
	int			 retries;
	long			 retry_backoff_ms;
	long			 retry_backoff_max_ms;
	size_t			 max_response_size;
	long			 max_detail_size;	/* bytes */
	int			 max_pages;
	/*
	 * The change-driven refresh (operations.md: the change key):
	 * Discovery's api_timestamp key (change_key, a wire key: NULL when
	 * off) on its source.  Resolved when loaded: change_backend and the
	 * address below are change_source's, or (unset) the cache the daemon
	 * writes, with its credentials; change_name is the source as logged
	 * (no password).
	 */
	char			*change_key;
	char			*change_source;		/* as written */
	char			*change_password_file;
	int			 change_notify;	/* enum cfg_change_notify */
	long			 change_poll_ms;
	long			 change_debounce_ms;
	long			 change_full_delay_ms;
	enum cfg_backend	 change_backend;
	char			*change_name;
	struct cfg_server	*change_servers;	/* memcached */
	size_t			 nchange_servers;
	char			*change_redis_host;	/* NULL: socket */
	int			 change_redis_port;
	char			*change_redis_socket;
	int			 change_redis_db;
	char			*change_redis_user;
	char			*change_redis_password;	/* from the URL */
	char			*change_password_path;	/* as redis_password_path */
	bool			 change_password_optional;

	/* [memcached] */
	struct cfg_server	*servers;
	size_t			 nservers;
	enum key_function	 key_function;
	char			*key_prefix;
	char			*key_version;
	enum key_hash		 long_key_hash;
	enum cfg_distribution	 distribution;
	enum cfg_value_format	 value_format;
	int			 pickle_protocol;
	enum cfg_pathway_ids	 pathway_ids;
	long			 mc_connect_timeout_ms;
	long			 mc_io_timeout_ms;

	/*
	 * [redis] (operations.md: Redis).  The shared settings above
	 * (key_function, ..., the timeouts) are set from [redis] too, and
	 * servers holds the one server under its display name (no password).
	 */
	enum cfg_backend	 backend;
	char			*redis_url;		/* as written */
	char			*redis_host;		/* NULL: unix socket */
	int			 redis_port;
	char			*redis_socket;		/* unix socket path */
	int			 redis_db;
	char			*redis_user;		/* ACL user, or NULL */
	char			*redis_password;	/* from the URL, or NULL */
	char			*redis_password_file;
	/*
	 * Resolved when loaded: password_file, or else (if the URL has no
	 * password) $CREDENTIALS_DIRECTORY/redis-password, which is optional:
	 * read if it exists when connecting.  NULL: no password file.
	 */
	char			*redis_password_path;
	bool			 redis_password_optional;

	/* [daemon] */
	long			 refresh_interval_ms;
	long			 failed_refresh_retry_ms;	/* doubling */
	long			 incremental_interval_ms;	/* 0: none */
	long			 incremental_overlap_ms;
	long			 check_interval_ms;
	long			 verify_interval_ms;
	char			*state_dir;
	char			*listen;		/* host:port; NULL = off */
	char			*listen_host;
	int			 listen_port;
	enum log_format		 log_format;
	int			 log_level;
	double			 max_shrink;		/* fraction, 0..1 */
	bool			 force_publish;
	int			 stale_after;
	int			 workers;		/* -1: auto */
	enum cfg_reader_watch	 reader_watch;

	/* [lease] */
	bool			 lease_enabled;
	long			 lease_ttl_ms;
	char			*lease_key;

	/* [site DOMAIN] sections, sorted by domain */
	struct cfg_site		*sites;
	size_t			 nsites;
};

/*
 * What cfg_load_with() makes of the files holding the client secret
 * (client_secret_file, or $CREDENTIALS_DIRECTORY/client-secret) and
 * token_file, which the caller may not be able to read although the
 * daemon's unit can (systemd's LoadCredential).
 */
enum cfg_secrets {
	CFG_SECRETS_READ,	/* readable now, or a config_error (daemon) */
	CFG_SECRETS_WARN,	/* a config_warning if not (--check-config) */
	CFG_SECRETS_SKIP	/* not looked at (--verify) */
};

/*
 * Read and validate path.  NULL after logging every problem found; why
 * (if not NULL) then holds the first, as "FILE line N: KEY: ERROR".
 * cfg_load() is cfg_load_with(path, CFG_SECRETS_READ, NULL, 0).
 */
struct cfg	*cfg_load(const char *path) PCD_WUR;
struct cfg	*cfg_load_with(const char *path, enum cfg_secrets,
		    char *why, size_t whylen) PCD_WUR;
void		 cfg_free(struct cfg *);
/* The site with this domain, or NULL. */
const struct cfg_site	*cfg_site(const struct cfg *, const char *domain)
			    PCD_WUR;
/* Free n servers and the array (NULL is fine). */
void		 cfg_servers_free(struct cfg_server *, size_t n);

#endif
