/*
 * cfgval.h: the grammar of configuration values (configuration.md:
 * Configuration).
 *
 * Each function reads one value as written after "key =" and either
 * stores what it means and returns 0, or returns -1 and leaves its
 * outputs alone.  Nothing here logs or knows a key's range: config.c
 * checks ranges from the table of settings.h and names the file, line and
 * key.  Functions that take err fill it with the cause on -1.
 */
#ifndef PCD_CFGVAL_H
#define PCD_CFGVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util.h"

/* "250ms", "5s", "15m" (or "15min"), "1h"; a bare number is seconds. */
int	cfgval_duration(const char *, long long *ms) PCD_WUR;
/* "64M", "1K", "1G" (with an optional "B" or "iB"); bare: bytes. */
int	cfgval_size(const char *, long long *bytes) PCD_WUR;
/* A decimal integer, nothing after it. */
int	cfgval_int(const char *, long long *) PCD_WUR;
/* true/false, yes/no, on/off, 1/0. */
int	cfgval_bool(const char *, bool *) PCD_WUR;
/* "10%" or "0.1", from 0 to 1. */
int	cfgval_fraction(const char *, double *) PCD_WUR;
/* The index of value in the NULL-terminated choices, or -1. */
int	cfgval_choice(const char *value, const char *const *choices)
	    PCD_WUR;
/* "a, b or c": the choices, for an error. */
void	cfgval_want(const char *const *choices, char *out, size_t len);

/*
 * A list of memcached servers as in Django's LOCATION: "host:port" (port
 * 11211 if not given, as pymemcache), "[v6]:port", separated by spaces
 * or commas; at least one, at most STORE_MAX_SERVERS.  A new array in
 * *sv (free it with cfg_servers_free()), its length in *n.
 */
int	cfgval_servers(const char *, struct cfg_server **sv, size_t *n,
	    char *err, size_t errlen) PCD_WUR;
/*
 * The HTTP listener's address: "host:port", "[v6]:port", or a bare port
 * on 127.0.0.1 (loopback unless the operator says otherwise); port 0
 * takes any free one.  Empty: no listener (*listen and *host NULL).
 * *listen is the address as logged ("[::1]:9640"); the caller frees it
 * and *host.
 */
int	cfgval_listen(const char *, char **listen, char **host, int *port,
	    char *err, size_t errlen) PCD_WUR;
/*
 * A Discovery URL: http:// or https://, any trailing "/" removed (as
 * urljoin(f"{base}/", ...) treats it).  Empty: *url NULL, an
 * unconfigured site.  The caller frees *url.
 */
int	cfgval_url(const char *, char **url, char *err, size_t errlen)
	    PCD_WUR;
/*
 * The host of an http(s) URL (without brackets, port or path) as a new
 * string, or NULL if value is no such URL.
 */
char	*cfgval_url_host(const char *url) PCD_WUR;

#endif
