/*
 * redisurl.h: a [redis] url as redis-py's from_url reads it (operations.md:
 * Redis).
 *
 *   redis://[user[:password]@]host[:port][/db]	port 6379, db 0
 *   unix://[user[:password]@]/path[?db=N]
 *
 * The user and password are %XX-decoded.  rediss:// is refused with the
 * reason (Debian 12's hiredis has no TLS).  The name is the URL as logged
 * and shown: never with the password.
 */
#ifndef PCD_REDISURL_H
#define PCD_REDISURL_H

#include <stddef.h>

#include "util.h"

struct redis_url {
	char	*host;		/* NULL: a unix socket */
	int	 port;
	char	*socket;	/* the socket's path, or NULL */
	int	 db;
	char	*user;		/* ACL user, or NULL */
	char	*password;	/* or NULL */
	char	*name;		/* "redis://user@host:6379/1", no password */
};

/*
 * Parse url into u (all fields owned by u: redisurl_clear() frees them).
 * -1 with err set and u cleared if it is not such a URL.
 */
int	redisurl_parse(const char *url, struct redis_url *u, char *err,
	    size_t errlen) PCD_WUR;
/* Free what u holds, wiping the password; u is then empty. */
void	redisurl_clear(struct redis_url *u);

#endif
