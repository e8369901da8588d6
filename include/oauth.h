/*
 * oauth.h: an OAuth2 client-credentials JWT for Discovery (design.md: Talking
 * to Discovery).
 *
 * POST {oauth_url}/oauth2/access_token with grant_type=client_credentials,
 * client_id, client_secret and token_type=jwt; the answer's access_token is
 * kept until shortly before expires_in runs out.  The secret is read from
 * the configuration's client_secret_path (client_secret_file, or systemd's
 * LoadCredential= client-secret), each time a token is needed: it is never
 * logged, never on the command line, and never kept in memory longer than
 * one request.
 * Events: token_acquired, token_failed (with the reason, never the secret
 * or the token).
 */
#ifndef PCD_OAUTH_H
#define PCD_OAUTH_H

#include <stdbool.h>

#include "config.h"

struct event_base;
struct http;
struct oauth;

/* authorization is "JWT <token>", or NULL if none could be had. */
typedef void	(*oauth_cb)(const char *authorization, void *arg);

/* NULL when the configuration does not use OAuth (no client_id). */
struct oauth	*oauth_new(struct event_base *, struct http *,
		    const struct cfg *);
void		 oauth_free(struct oauth *);
/*
 * Call back with a token: the cached one while it is fresh, else a new
 * one.  With stale set (the caller got a 401 using that header value), a
 * new one is fetched unless it has already been replaced since.  Callers
 * waiting at the same time share one request.  The callback runs from the
 * event loop, never from inside oauth_get().
 */
void		 oauth_get(struct oauth *, const char *stale, oauth_cb,
		    void *arg);
/* Call every waiting callback now, without a token (shutdown). */
void		 oauth_cancel(struct oauth *);
/*
 * The Authorization value "JWT <token>" from a token_file (a static JWT
 * instead of OAuth2); NULL (logged as token_failed) if it cannot be read
 * or does not hold one token.  The caller frees.
 */
char		*oauth_token_file(const char *path);

#endif
