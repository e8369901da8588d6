/*
 * httpd.h: the optional HTTP listener for operators (operations.md: Observe),
 * on the daemon's own event loop with libevent's evhttp.
 *
 *	/metrics	Prometheus text: metrics_render() and the caller's
 *			extra series
 *	/healthz	200 "ok" whenever the loop answers at all
 *	/readyz		200 "ready", or 503 and the caller's one-line reason
 *
 * GET and HEAD only (405 otherwise), one request per connection (Connection:
 * close), an 8 KiB request head.  A local client cannot exhaust the daemon
 * (design.md: Security): at most 64 connections (a new one closes the oldest),
 * 10 s from accept to the last byte of the answer however slowly the request
 * trickles in, 64 descriptors kept free for Discovery and memcached
 * (connections beyond are closed at once), and an accept error (EMFILE) pauses
 * the listener for a second; both are logged as listen_error at most once a
 * minute.  It is off unless [daemon] listen is set; the address is loopback
 * unless the operator names another.
 */
#ifndef PCD_HTTPD_H
#define PCD_HTTPD_H

#include <stdbool.h>

#include "util.h"

struct event_base;
struct httpd;

struct httpd_hooks {
	/* Series to append to /metrics, after metrics_render()'s. */
	void	(*metrics)(struct buf *, void *arg);
	/* Whether the daemon is ready; if not, why (one line) in reason. */
	bool	(*ready)(struct buf *reason, void *arg);
	void	*arg;
};

/*
 * Listen on host:port (port 0: any free one) and log event "listening"
 * with the address bound.  NULL if that fails (logged as listen_failed).
 * hooks is copied.
 */
struct httpd	*httpd_new(struct event_base *, const char *host, int port,
		    const struct httpd_hooks *);
void		 httpd_free(struct httpd *);

#endif
