/*
 * httpd.c: /metrics, /healthz and /readyz with libevent's evhttp.
 *
 * The handlers run on the daemon's loop and only read counters, so they
 * need no locking, and an answer from /healthz proves the loop is turning.
 * libevent 2.1 has no connection limit (evhttp_set_max_connections is
 * 2.2): the listener is meant for loopback or a scraper's network only.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define HTTPD_TIMEOUT_S		10
#define HTTPD_MAX_HEADERS	8192
#define HTTPD_MAX_BODY		1024

struct httpd {
	struct evhttp		*http;
	struct httpd_hooks	 hooks;
	char			 address[INET6_ADDRSTRLEN + 8];
};

/* What the bound socket's address is, as host:port. */
static void
bound_address(evutil_socket_t fd, char *out, size_t len)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl = sizeof ss;
	char			 host[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof ss);
	snprintf(out, len, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(out, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(out, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
}

/* Send body (may be NULL) with status; HEAD gets the headers only. */
static void
reply(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, const struct buf *body)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*eb;
	char			 clen[32];
	size_t			 len = body != NULL ? body->len : 0;

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* The length a GET would have, and no body (RFC 9110 9.3.2). */
		snprintf(clen, sizeof clen, "%zu", len);
		evhttp_add_header(h, "Content-Length", clen);
		evhttp_send_reply(req, code, reason, NULL);
		return;
	}
	if ((eb = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	if (len > 0)
		evbuffer_add(eb, body->data, len);
	evhttp_send_reply(req, code, reason, eb);
	evbuffer_free(eb);
}

/* A one-line plain text answer. */
static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct buf	b;

	buf_init(&b);
	buf_adds(&b, text);
	buf_addc(&b, '\n');
	reply(req, code, reason, "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

static void
serve_metrics(struct httpd *h, struct evhttp_request *req)
{
	struct buf	b;

	buf_init(&b);
	metrics_render(&b);
	if (h->hooks.metrics != NULL)
		h->hooks.metrics(&b, h->hooks.arg);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_free(&b);
}

static void
serve_readyz(struct httpd *h, struct evhttp_request *req)
{
	struct buf	reason;

	buf_init(&reason);
	if (h->hooks.ready == NULL || h->hooks.ready(&reason, h->hooks.arg))
		reply_text(req, 200, "OK", "ready");
	else {
		buf_adds(&reason, "");	/* never NULL data */
		reply_text(req, 503, "Service Unavailable",
		    (const char *)reason.data);
	}
	buf_free(&reason);
}

/* Every request: decode the method and path, call the page. */
static void
on_request(struct evhttp_request *req, void *arg)
{
	struct httpd			*h = arg;
	const struct evhttp_uri		*uri;
	const char			*path = NULL;
	enum evhttp_cmd_type		 cmd = evhttp_request_get_command(req);

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed",
		    "method not allowed: GET or HEAD");
		return;
	}
	if ((uri = evhttp_request_get_evhttp_uri(req)) != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL)
		path = "";
	if (strcmp(path, "/metrics") == 0)
		serve_metrics(h, req);
	else if (strcmp(path, "/healthz") == 0)
		reply_text(req, 200, "OK", "ok");
	else if (strcmp(path, "/readyz") == 0)
		serve_readyz(h, req);
	else
		reply_text(req, 404, "Not Found",
		    "not found: try /metrics, /healthz or /readyz");
}

/*
 * A listening socket on host:port, non-blocking, close-on-exec; -1 after
 * logging why not.  Bound here rather than by evhttp so that the error
 * logged is the real one (evhttp_bind_socket only says it failed).
 */
static int
listen_on(const char *host, int port)
{
	struct addrinfo	 hints, *res, *ai;
	char		 serv[16];
	const char	*why = "no address";
	int		 fd = -1, err = 0, on = 1, rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof serv, "%d", port);
	if ((rc = getaddrinfo(host, serv, &hints, &res)) != 0) {
		log_event(LOG_ERR, "listen_failed", "host=%s port=%d error=%s",
		    host, port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			why = "socket";
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 64) == 0)
			break;
		why = "bind";
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		log_event(LOG_ERR, "listen_failed", "host=%s port=%d error=%s%s%s",
		    host, port, why, err != 0 ? ": " : "",
		    err != 0 ? strerror(err) : "");
	return fd;
}

struct httpd *
httpd_new(struct event_base *base, const char *host, int port,
    const struct httpd_hooks *hooks)
{
	struct httpd			*h;
	int				 fd;

	if ((fd = listen_on(host, port)) == -1)
		return NULL;
	h = xcalloc(1, sizeof *h);
	h->hooks = *hooks;
	if ((h->http = evhttp_new(base)) == NULL)
		fatalx("evhttp_new failed");
	/* Every method reaches on_request, which answers 405 itself. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_timeout(h->http, HTTPD_TIMEOUT_S);
	evhttp_set_max_headers_size(h->http, HTTPD_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, HTTPD_MAX_BODY);
	evhttp_set_gencb(h->http, on_request, h);
	if (evhttp_accept_socket_with_handle(h->http, fd) == NULL)
		fatalx("evhttp_accept_socket failed");
	bound_address(fd, h->address, sizeof h->address);
	log_event(LOG_INFO, "listening", "address=%s paths=%s", h->address,
	    "/metrics,/healthz,/readyz");
	return h;
}

void
httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	evhttp_free(h->http);
	free(h);
}

const char *
httpd_address(const struct httpd *h)
{
	return h->address;
}
