/*
 * oauth.c: the client-credentials token, fetched once and shared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "oauth.h"
#include "util.h"

/* Renew this long before the token runs out (at most a tenth of it). */
#define MARGIN_MS	(5 * 60 * 1000)
/*
 * A longer lifetime is taken as this: no overflow in ms (design.md: Security).
 */
#define MAX_EXPIRES_S	(24 * 60 * 60)
#define SECRET_MAX	4096

struct waiter {
	oauth_cb	 cb;
	void		*arg;
	struct oauth	*o;
	char		*header;	/* what to hand over (or NULL) */
	struct event	*ev;
	struct waiter	*next;
};

struct oauth {
	struct event_base	*base;
	struct http		*http;
	char			*url;
	char			*client_id;
	char			*secret_path;
	char			*header;	/* "JWT <token>", or NULL */
	uint64_t		 fresh_until;	/* mono_ms */
	bool			 fetching;
	struct waiter		*waiting;	/* for the request in flight */
	struct waiter		*scheduled;	/* callbacks about to run */
};

struct oauth *
oauth_new(struct event_base *base, struct http *http, const struct cfg *cfg)
{
	struct oauth	*o;

	if (cfg->client_id == NULL)
		return NULL;
	o = xcalloc(1, sizeof *o);
	o->base = base;
	o->http = http;
	o->url = xasprintf("%s/oauth2/access_token", cfg->oauth_url);
	o->client_id = xstrdup(cfg->client_id);
	o->secret_path = cfg->client_secret_path != NULL ?
	    xstrdup(cfg->client_secret_path) : NULL;
	return o;
}

static void
waiter_free(struct waiter *w)
{
	if (w->ev != NULL)
		event_free(w->ev);
	free(w->header);
	free(w);
}

void
oauth_free(struct oauth *o)
{
	struct waiter	*w;

	if (o == NULL)
		return;
	while ((w = o->waiting) != NULL) {
		o->waiting = w->next;
		waiter_free(w);
	}
	while ((w = o->scheduled) != NULL) {
		o->scheduled = w->next;
		waiter_free(w);
	}
	free(o->url);
	free(o->client_id);
	free(o->secret_path);
	free(o->header);
	free(o);
}

/* A scheduled callback runs: unlink it first, the callee may call us. */
static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct waiter	*w = arg, **pp;
	struct oauth	*o = w->o;

	(void)fd;
	(void)what;
	for (pp = &o->scheduled; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->cb(w->header, w->arg);
	waiter_free(w);
}

/* Run a waiter's callback from the loop with this header. */
static void
schedule(struct oauth *o, struct waiter *w, const char *header)
{
	w->o = o;
	w->header = header != NULL ? xstrdup(header) : NULL;
	w->ev = event_new(o->base, -1, 0, on_deliver, w);
	w->next = o->scheduled;
	o->scheduled = w;
	event_active(w->ev, EV_TIMEOUT, 0);
}

/* Hand the outcome of a token request to everyone waiting for it. */
static void
deliver_all(struct oauth *o)
{
	struct waiter	*w;

	o->fetching = false;
	while ((w = o->waiting) != NULL) {
		o->waiting = w->next;
		schedule(o, w, o->header);
	}
}

/* Log why no token could be had (never with the secret or a token). */
static void
token_failed(struct oauth *o, long status, const char *error)
{
	metrics.token_failures++;
	log_event(LOG_ERR, "token_failed", "url=%s http_status=%ld error=%s",
	    o->url, status, error);
}

/* The token endpoint answered. */
static void
on_token(const struct http_result *r, void *arg)
{
	struct oauth	*o = arg;
	json_t		*j = NULL, *tok, *exp, *err;
	json_error_t	 e;
	char		 msg[256];
	long long	 expires;

	free(o->header);
	o->header = NULL;
	if (r->len > 0)
		j = json_loadb(r->body, r->len, 0, &e);
	if (r->error != NULL) {
		/* OAuth errors say why in JSON ({"error": "invalid_client"}). */
		err = json_object_get(j, "error");
		snprintf(msg, sizeof msg, "%s%s%s", r->error,
		    json_is_string(err) ? ": " : "",
		    json_is_string(err) ? json_string_value(err) : "");
		token_failed(o, r->status, msg);
		goto out;
	}
	tok = json_object_get(j, "access_token");
	exp = json_object_get(j, "expires_in");
	if (!json_is_string(tok) || json_string_length(tok) == 0 ||
	    strpbrk(json_string_value(tok), "\r\n") != NULL) {
		token_failed(o, r->status, "no access_token in the answer");
		goto out;
	}
	expires = json_is_integer(exp) ? json_integer_value(exp) : 0;
	if (expires <= 0) {
		token_failed(o, r->status, "no positive expires_in in the "
		    "answer");
		goto out;
	}
	o->header = xasprintf("JWT %s", json_string_value(tok));
	if (expires > MAX_EXPIRES_S)
		expires = MAX_EXPIRES_S;
	o->fresh_until = mono_ms() + (uint64_t)expires * 1000 -
	    ((uint64_t)expires * 100 < MARGIN_MS ? (uint64_t)expires * 100 :
	    MARGIN_MS);
	metrics.tokens_acquired++;
	log_event(LOG_INFO, "token_acquired", "url=%s expires_in=%lld",
	    o->url, (long long)json_integer_value(exp));
out:
	json_decref(j);
	deliver_all(o);
}

/* The secret, read now (NULL, logged, if it cannot be). */
static char *
read_secret(struct oauth *o)
{
	FILE	*f;
	char	*s;
	size_t	 n;

	if (o->secret_path == NULL) {
		token_failed(o, 0, "no client_secret_file and no "
		    "$CREDENTIALS_DIRECTORY");
		return NULL;
	}
	if ((f = fopen(o->secret_path, "r")) == NULL) {
		char msg[512];

		snprintf(msg, sizeof msg, "cannot read the secret %s: %s",
		    o->secret_path, strerror(errno));
		token_failed(o, 0, msg);
		return NULL;
	}
	s = xcalloc(1, SECRET_MAX);
	n = fread(s, 1, SECRET_MAX - 1, f);
	fclose(f);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n == 0) {
		free(s);
		token_failed(o, 0, "the secret file is empty");
		return NULL;
	}
	return s;
}

/* Ask the token endpoint. */
static void
fetch(struct oauth *o)
{
	char	*secret, *esc_id, *esc_secret, *form;

	o->fetching = true;
	if ((secret = read_secret(o)) == NULL) {
		deliver_all(o);
		return;
	}
	esc_id = http_escape(o->client_id);
	esc_secret = http_escape(secret);
	form = xasprintf("grant_type=client_credentials&client_id=%s&"
	    "client_secret=%s&token_type=jwt", esc_id, esc_secret);
	http_set_tag(http_post_form(o->http, o->url, form, on_token, o), NULL,
	    "token");
	/* The request keeps its own copy (wiped when it is freed). */
	explicit_bzero(secret, strlen(secret));
	explicit_bzero(esc_secret, strlen(esc_secret));
	explicit_bzero(form, strlen(form));
	free(secret);
	free(esc_secret);
	free(esc_id);
	free(form);
}

void
oauth_cancel(struct oauth *o)
{
	struct waiter	*w;

	while ((w = o->waiting) != NULL || (w = o->scheduled) != NULL) {
		if (w == o->waiting)
			o->waiting = w->next;
		else
			o->scheduled = w->next;
		w->cb(NULL, w->arg);
		waiter_free(w);
	}
	o->fetching = false;
}

void
oauth_get(struct oauth *o, const char *stale, oauth_cb cb, void *arg)
{
	struct waiter	*w = xcalloc(1, sizeof *w);

	w->cb = cb;
	w->arg = arg;
	if (stale != NULL && o->header != NULL && strcmp(stale, o->header) == 0) {
		/* The server refused this token: drop it. */
		free(o->header);
		o->header = NULL;
	}
	if (!o->fetching && o->header != NULL && mono_ms() < o->fresh_until) {
		schedule(o, w, o->header);
		return;
	}
	w->next = o->waiting;
	o->waiting = w;
	if (!o->fetching)
		fetch(o);
}

char *
oauth_token_file(const char *path)
{
	FILE	*f;
	char	 tok[8192];
	size_t	 n;

	if ((f = fopen(path, "r")) == NULL) {
		log_event(LOG_ERR, "token_failed", "file=%s error=%s", path,
		    strerror(errno));
		return NULL;
	}
	n = fread(tok, 1, sizeof tok - 1, f);
	fclose(f);
	tok[n] = '\0';
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' ||
	    tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		tok[--n] = '\0';
	if (n == 0 || strpbrk(tok, "\r\n") != NULL) {
		log_event(LOG_ERR, "token_failed", "file=%s error=%s", path,
		    "the file does not hold one token");
		return NULL;
	}
	return xasprintf("JWT %s", tok);
}
