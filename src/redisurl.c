/*
 * redisurl.c: redis:// and unix:// URLs (see redisurl.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redisurl.h"
#include "secret.h"

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

/* A decimal in [lo, hi], the whole of s; -1 if not. */
static int
number(const char *s, long lo, long hi, int *out)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi)
		return -1;
	*out = (int)n;
	return 0;
}

/* "[user[:password]@]" at the start of p, taken off (p moves past it). */
static void
userinfo(char **p, struct redis_url *u)
{
	char	*at, *colon;

	if ((at = strrchr(*p, '@')) == NULL)
		return;
	*at = '\0';
	if ((colon = strchr(*p, ':')) != NULL) {
		*colon = '\0';
		u->password = xstrdup(colon + 1);
		url_unquote(u->password);
	}
	if (**p != '\0') {
		u->user = xstrdup(*p);
		url_unquote(u->user);
	}
	*p = at + 1;
}

/* "host[:port][/db]" or "[v6][:port][/db]" of a redis:// URL, in place. */
static int
host_port(char *p, struct redis_url *u, char **dbs)
{
	char	*end, *colon;

	if ((end = strchr(p, '/')) != NULL) {
		*end = '\0';
		if (end[1] != '\0')
			*dbs = end + 1;
	}
	u->port = 6379;
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return -1;
		*end = '\0';
		colon = end[1] == ':' ? end + 1 : NULL;
		p++;
	} else if ((colon = strrchr(p, ':')) != NULL)
		*colon = '\0';
	if (colon != NULL && number(colon + 1, 1, 65535, &u->port) == -1)
		return -1;
	if (*p == '\0')
		return -1;
	u->host = xstrdup(p);
	return 0;
}

/* What the URL is shown as: everything but the password. */
static char *
display_name(const struct redis_url *u)
{
	const char	*user = u->user != NULL ? u->user : "";
	const char	*at = u->user != NULL ? "@" : "";
	bool		 v6;

	if (u->socket != NULL)
		return xasprintf("unix://%s%s%s?db=%d", user, at, u->socket,
		    u->db);
	v6 = strchr(u->host, ':') != NULL;
	return xasprintf("redis://%s%s%s%s%s:%d/%d", user, at, v6 ? "[" : "",
	    u->host, v6 ? "]" : "", u->port, u->db);
}

int
redisurl_parse(const char *url, struct redis_url *u, char *err,
    size_t errlen)
{
	char	*copy, *p, *q, *dbs = NULL;
	bool	 unix_socket = strncmp(url, "unix://", 7) == 0;

	memset(u, 0, sizeof *u);
	if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(err, errlen, "rediss:// (TLS) is not supported: "
		    "Debian 12's hiredis is built without TLS; use redis:// "
		    "on a trusted network, a unix:// socket, or a local TLS "
		    "tunnel");
		return -1;
	}
	if (strncmp(url, "redis://", 8) != 0 && !unix_socket) {
		snprintf(err, errlen, "bad url (want redis://host:port/db or "
		    "unix:///path?db=N)");
		return -1;
	}
	p = copy = xstrdup(url + (unix_socket ? 7 : 8));
	userinfo(&p, u);
	if ((q = strchr(p, '?')) != NULL) {
		*q++ = '\0';
		if (strncmp(q, "db=", 3) != 0)
			goto bad;
		dbs = q + 3;
	}
	if (unix_socket) {
		if (*p != '/')
			goto bad;
		u->socket = xstrdup(p);
	} else if (host_port(p, u, &dbs) == -1)
		goto bad;
	if (dbs != NULL && number(dbs, 0, 100000, &u->db) == -1)
		goto bad;
	u->name = display_name(u);
	free(copy);
	return 0;
bad:
	snprintf(err, errlen, "bad url (want redis://[user@]host:port/db or "
	    "unix:///path?db=N)");
	free(copy);
	redisurl_clear(u);
	return -1;
}

void
redisurl_clear(struct redis_url *u)
{
	free(u->host);
	free(u->socket);
	free(u->user);
	secret_free(u->password);
	free(u->name);
	memset(u, 0, sizeof *u);
}
