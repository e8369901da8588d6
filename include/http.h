/*
 * http.h: HTTP requests through one libcurl multi handle driven by libevent.
 *
 * Requests are queued and at most max_in_flight run at once, over the multi
 * handle's shared connection cache (keep-alive, HTTP/2 multiplexing where
 * the server offers it).  A request that fails with a connection error, a
 * timeout, 429 or 5xx is tried again after an exponential backoff with
 * jitter, or after the server's Retry-After, up to `retries` more times;
 * each retry is logged as an http_retry event.  The callback runs exactly
 * once per request, from the event loop, never from inside libcurl, and
 * never from inside http_get_max() itself.
 *
 * A queued request holds its strings only: its libcurl handle and headers
 * are made when it goes in flight, and dropped while it waits to retry, so
 * that memory follows max_in_flight, not the length of the queue.
 */
#ifndef PCD_HTTP_H
#define PCD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http;
struct http_req;

struct http_opts {
	long		 connect_timeout_ms;
	long		 request_timeout_ms;
	long		 low_speed_limit;	/* bytes/s; 0 = off */
	long		 low_speed_time_ms;
	int		 max_in_flight;
	int		 retries;
	long		 retry_backoff_ms;
	long		 retry_backoff_max_ms;
	size_t		 max_response_size;
};

struct http_result {
	const char	*url;
	long		 status;	/* HTTP status; 0 if none arrived */
	const char	*content_type;	/* NULL if none */
	const char	*body;		/* NUL-terminated; "" if none */
	size_t		 len;
	/*
	 * NULL when a 2xx response arrived whole; otherwise why not, e.g.
	 * "HTTP 503", "Operation timed out after 5001 milliseconds ...",
	 * "response larger than 64 MiB", "cancelled: shutdown".
	 */
	const char	*error;
	int		 attempts;
	int64_t		 date;		/* its Date header (Unix seconds);
					   0 if none */
	void		*req_;		/* http.c's: http_take_body */
};

/* Called once per request; the result and its body are freed after. */
typedef void	(*http_cb)(const struct http_result *, void *arg);
/*
 * In the callback: the body as the caller's own (malloc'd, NUL-terminated,
 * res->len bytes; the caller frees it), so that it need not be copied.
 * res->body is the same pointer: the layer no longer frees it, and the
 * caller who hands it on (to a thread) no longer reads it.
 */
char		*http_take_body(const struct http_result *);

struct http	*http_new(struct event_base *, const struct http_opts *);
/* Drop every request without calling back, and free everything. */
void		 http_free(struct http *);
/* Change limits for requests started from now on. */
void		 http_set_opts(struct http *, const struct http_opts *);

/*
 * GET url, keeping at most max_size body bytes (if lower than
 * max_response_size; 0: max_response_size).  authorization is the whole
 * header value ("JWT ...") or NULL.  The strings are copied.
 */
struct http_req	*http_get_max(struct http *, const char *url,
		    const char *authorization, size_t max_size, http_cb,
		    void *arg);
/*
 * Name what a request is for, in http_retry events and in the duration
 * histogram of /metrics: the site (or NULL) and the endpoint ("uuids",
 * "detail", "pathways", "token"...).  Copied; call before the loop runs.
 */
void		 http_set_tag(struct http_req *, const char *site,
		    const char *endpoint);
/* POST an application/x-www-form-urlencoded body; never retried. */
struct http_req	*http_post_form(struct http *, const char *url,
		    const char *form, http_cb, void *arg);
/* Call back every outstanding request now with error "cancelled: why". */
void		 http_cancel_all(struct http *, const char *why);

/*
 * Whether url has the scheme, host and port of base (default ports filled
 * in; parsed by libcurl's URL API).  False if either does not parse or is
 * relative.  Where a token may be sent (design.md: Security).
 */
bool		 http_same_origin(const char *base, const char *url);

/* URL-encode s for a form body or query (curl_easy_escape); caller frees. */
char		*http_escape(const char *s);

#endif
