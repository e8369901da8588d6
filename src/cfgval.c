/*
 * cfgval.c: durations, sizes, numbers, booleans, fractions, choices,
 * server lists, listen addresses and URLs, as configuration values write
 * them (see cfgval.h).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgval.h"
#include "store.h"

int
cfgval_duration(const char *s, long long *ms)
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

int
cfgval_size(const char *s, long long *bytes)
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

int
cfgval_int(const char *s, long long *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 0;
}

int
cfgval_bool(const char *s, bool *out)
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

int
cfgval_fraction(const char *s, double *out)
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

int
cfgval_choice(const char *value, const char *const *choices)
{
	int	i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(value, choices[i]) == 0)
			return i;
	return -1;
}

void
cfgval_want(const char *const *choices, char *out, size_t len)
{
	size_t	i, n, used = 0;

	for (n = 0; choices[n] != NULL; n++)
		;
	out[0] = '\0';
	for (i = 0; i < n && used < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ", choices[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* One "host:port" or "[v6]:port" of a server list; -1 if it is bad. */
static int
server_one(const char *tok, struct cfg_server *sv)
{
	char	*copy = xstrdup(tok), *colon, *end, *host = copy;
	long	 port = 11211;

	if (*copy == '[') {
		if ((end = strchr(copy, ']')) == NULL)
			goto bad;
		host = copy + 1;
		*end = '\0';
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			goto bad;
	} else
		colon = strrchr(copy, ':');
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
	sv->host = xstrdup(host);
	sv->port = (int)port;
	sv->name = xasprintf("%s:%ld", host, port);
	free(copy);
	return 0;
bad:
	free(copy);
	return -1;
}

int
cfgval_servers(const char *s, struct cfg_server **svp, size_t *np,
    char *err, size_t errlen)
{
	char			*copy = xstrdup(s), *tok, *save = NULL;
	struct cfg_server	*sv = NULL;
	size_t			 n = 0;

	for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
	    tok = strtok_r(NULL, " ,\t", &save)) {
		if (n == STORE_MAX_SERVERS) {
			snprintf(err, errlen, "more than %d servers",
			    STORE_MAX_SERVERS);
			goto fail;
		}
		sv = xreallocarray(sv, n + 1, sizeof *sv);
		if (server_one(tok, &sv[n]) == -1) {
			snprintf(err, errlen, "bad server \"%s\" (want "
			    "host:port)", tok);
			goto fail;
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "no servers");
		goto fail;
	}
	free(copy);
	*svp = sv;
	*np = n;
	return 0;
fail:
	cfg_servers_free(sv, n);
	free(copy);
	return -1;
}

int
cfgval_listen(const char *s, char **listen, char **hostp, int *portp,
    char *err, size_t errlen)
{
	char		*copy, *colon, *end, *portstr;
	const char	*host;
	long		 port;

	if (*s == '\0') {
		*listen = *hostp = NULL;
		*portp = 0;
		return 0;
	}
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
	*hostp = xstrdup(host);
	*portp = (int)port;
	*listen = strchr(host, ':') != NULL ?
	    xasprintf("[%s]:%ld", host, port) : xasprintf("%s:%ld", host, port);
	free(copy);
	return 0;
bad:
	snprintf(err, errlen, "bad address \"%s\" (want host:port, "
	    "[v6]:port or a port)", s);
	free(copy);
	return -1;
}

int
cfgval_url(const char *value, char **url, char *err, size_t errlen)
{
	size_t	i;

	if (*value == '\0') {
		*url = NULL;	/* explicitly unconfigured */
		return 0;
	}
	if (strncmp(value, "http://", 7) != 0 &&
	    strncmp(value, "https://", 8) != 0) {
		snprintf(err, errlen, "bad URL \"%s\" (want http:// or "
		    "https://)", value);
		return -1;
	}
	*url = xstrdup(value);
	i = strlen(*url);
	while (i > 0 && (*url)[i - 1] == '/')
		(*url)[--i] = '\0';
	return 0;
}

char *
cfgval_url_host(const char *url)
{
	const char	*p, *end;

	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return NULL;
	/* No user info in a Discovery URL; skip one if it is there. */
	end = p + strcspn(p, "/?#");
	if ((end = memchr(p, '@', (size_t)(end - p))) != NULL)
		p = end + 1;
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return NULL;
		return xstrndup(p + 1, (size_t)(end - p - 1));
	}
	return xstrndup(p, strcspn(p, ":/?#"));
}
