/*
 * httpd.c: /metrics, /healthz and /readyz with libevent's evhttp.
 *
 * The handlers run on the daemon's loop and only read counters, so they
 * need no locking, and an answer from /healthz proves the loop is turning.
 *
 * libevent 2.1's evhttp has no connection limit and its timeout restarts with
 * every byte, so a local client trickling a few hundred connections could use
 * up the process's descriptors (design.md: Security).  evhttp still does all
 * the HTTP; around it, with libevent's public API only:
 *   - the listening socket is our evconnlistener (evhttp_bind_listener),
 *     whose accept errors (EMFILE) pause it for a second instead of
 *     spinning, logged at most once a minute;
 *   - every connection's bufferevent is made here (evhttp_set_bevcb) and
 *     held by one more reference, so that this module sees each one from
 *     accept until evhttp lets it go (its callbacks are then cleared);
 *   - a sweep every HTTPD_SWEEP_MS ends a connection past its deadline
 *     (shutdown(2) of its socket: evhttp sees the end and frees it, which
 *     no trickle can put off), closes the oldest when there are more than
 *     HTTPD_MAX_CONNS, closes at once one whose descriptor eats into the
 *     reserve kept for Discovery and memcached, and lets go of those
 *     evhttp has freed.
 */
#include <sys/queue.h>
#include <sys/resource.h>
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
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define HTTPD_DEADLINE_MS	10000	/* accept to the last byte sent */
#define HTTPD_MAX_HEADERS	8192
#define HTTPD_MAX_BODY		1024
#define HTTPD_MAX_CONNS		64
#define HTTPD_FD_RESERVE	64	/* left for Discovery, memcached */
#define HTTPD_SWEEP_MS		100
#define HTTPD_PAUSE_MS		1000	/* after an accept error */
#define HTTPD_LOG_EVERY_MS	60000

/* A connection evhttp is serving, from accept until it lets go. */
struct conn {
	struct bufferevent	*bev;		/* one reference is ours */
	uint64_t		 since;		/* mono_ms of the accept */
	bool			 ended;		/* its socket was shut down */
	bool			 checked;	/* its descriptor looked at */
	TAILQ_ENTRY(conn)	 entry;		/* oldest first */
};

TAILQ_HEAD(conn_list, conn);

struct httpd {
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*lev;
	struct event		*resume;	/* listener paused: go on */
	struct event		*sweep;		/* every HTTPD_SWEEP_MS */
	struct event		*kick;		/* sweep now (after an accept) */
	struct httpd_hooks	 hooks;
	struct conn_list	 conns;
	int			 nconns;	/* not yet ended */
	uint64_t		 logged_ms;	/* last listen_error */
	unsigned long		 unlogged;	/* errors since then */
	char			 address[INET6_ADDRSTRLEN + 8];
	TAILQ_ENTRY(httpd)	 all;
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
	/* One request per connection: its deadline is the connection's. */
	evhttp_add_header(h, "Connection", "close");
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

/* Log a refused or failed accept, at most once every HTTPD_LOG_EVERY_MS. */
static void
accept_trouble(struct httpd *h, const char *error)
{
	uint64_t	now = mono_ms();

	h->unlogged++;
	if (h->logged_ms != 0 && now - h->logged_ms < HTTPD_LOG_EVERY_MS)
		return;
	log_event(LOG_WARNING, "listen_error", "address=%s error=%s "
	    "events=%lu connections=%d", h->address, error, h->unlogged,
	    h->nconns);
	h->logged_ms = now;
	h->unlogged = 0;
}

/* Whether fd eats into the reserve kept for Discovery and memcached. */
static bool
in_reserve(evutil_socket_t fd)
{
	struct rlimit	rl;

	if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return false;
	return (rlim_t)fd + HTTPD_FD_RESERVE >= rl.rlim_cur;
}

/*
 * End a connection: shut its socket down, so that evhttp sees the end
 * and frees it (no trickle puts that off).
 */
static void
conn_end(struct httpd *h, struct conn *c)
{
	evutil_socket_t	fd = bufferevent_getfd(c->bev);

	if (c->ended)
		return;
	c->ended = true;
	h->nconns--;
	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
}

/* Whether evhttp has let go of the connection (bufferevent_free). */
static bool
conn_freed(const struct conn *c)
{
	bufferevent_data_cb	rd, wr;
	bufferevent_event_cb	ev;

	bufferevent_getcb(c->bev, &rd, &wr, &ev, NULL);
	return rd == NULL && wr == NULL && ev == NULL;
}

/* Every HTTPD_SWEEP_MS, and after each accept: the limits. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct httpd	*h = arg;
	struct conn	*c, *next;
	uint64_t	 now = mono_ms();

	(void)fd;
	(void)what;
	/* c is unlinked before it is freed; the analyzer does not follow. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	for (c = TAILQ_FIRST(&h->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (conn_freed(c)) {
			if (!c->ended)
				h->nconns--;
			TAILQ_REMOVE(&h->conns, c, entry);
			bufferevent_decref(c->bev);	/* closes it now */
			free(c);
			continue;
		}
		if (!c->checked) {
			c->checked = true;
			if (in_reserve(bufferevent_getfd(c->bev))) {
				conn_end(h, c);
				accept_trouble(h, "descriptors are low: "
				    "connection refused (they are kept for "
				    "Discovery and memcached)");
				continue;
			}
		}
		if (now - c->since >= HTTPD_DEADLINE_MS)
			conn_end(h, c);
	}
	/* Over the cap: the oldest go, so that a flood cannot lock out
	 * /healthz for long. */
	for (c = TAILQ_FIRST(&h->conns); c != NULL &&
	    h->nconns > HTTPD_MAX_CONNS; c = TAILQ_NEXT(c, entry))
		conn_end(h, c);
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
}

/* evhttp's bufferevent for a new connection: made, held and counted here. */
static struct bufferevent *
on_new_conn(struct event_base *base, void *arg)
{
	struct httpd	*h = arg;
	struct conn	*c;

	c = xcalloc(1, sizeof *c);
	if ((c->bev = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_incref(c->bev);
	c->since = mono_ms();
	TAILQ_INSERT_TAIL(&h->conns, c, entry);
	h->nconns++;
	/* evhttp gives it its socket after this returns: look then. */
	event_active(h->kick, EV_TIMEOUT, 0);
	return c->bev;
}

/*
 * The listeners of this process: an accept error's callback gets evhttp's
 * argument (evhttp_bind_listener sets it), so it finds its httpd here.
 * Rarely more than one (two while the listener moves on SIGHUP).
 */
TAILQ_HEAD(httpd_list, httpd);
static struct httpd_list	all_httpds = TAILQ_HEAD_INITIALIZER(all_httpds);

/* The httpd whose listener lev is, or NULL. */
static struct httpd *
httpd_of(const struct evconnlistener *lev)
{
	struct httpd	*h;

	for (h = TAILQ_FIRST(&all_httpds); h != NULL; h = TAILQ_NEXT(h, all))
		if (h->lev == lev)
			return h;
	return NULL;
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...): pause instead of spinning. */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct httpd	*h = httpd_of(lev);
	struct timeval	 tv = { HTTPD_PAUSE_MS / 1000,
			    (HTTPD_PAUSE_MS % 1000) * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)arg;	/* evhttp's, not ours */
	evconnlistener_disable(lev);
	if (h == NULL)
		return;		/* cannot happen: paused for good */
	evtimer_add(h->resume, &tv);
	accept_trouble(h, evutil_socket_error_to_string(err));
}

/* The pause is over: accept again. */
static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct httpd	*h = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(h->lev);
}

/*
 * A listening socket on host:port, non-blocking, close-on-exec; -1 after
 * logging why not.  Bound here so that the error logged is the real one.
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
	struct httpd	*h;
	struct timeval	 tv = { 0, HTTPD_SWEEP_MS * 1000 };
	int		 fd;

	if ((fd = listen_on(host, port)) == -1)
		return NULL;
	h = xcalloc(1, sizeof *h);
	h->base = base;
	h->hooks = *hooks;
	TAILQ_INIT(&h->conns);
	bound_address(fd, h->address, sizeof h->address);
	if ((h->http = evhttp_new(base)) == NULL)
		fatalx("evhttp_new failed");
	/* Every method reaches on_request, which answers 405 itself. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_timeout(h->http, HTTPD_DEADLINE_MS / 1000);
	evhttp_set_max_headers_size(h->http, HTTPD_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, HTTPD_MAX_BODY);
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_bevcb(h->http, on_new_conn, h);
	h->lev = evconnlistener_new(base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (h->lev == NULL)
		fatalx("evconnlistener_new failed");
	if (evhttp_bind_listener(h->http, h->lev) == NULL)
		fatalx("evhttp_bind_listener failed");
	evconnlistener_set_error_cb(h->lev, on_accept_error);
	if ((h->resume = evtimer_new(base, on_resume, h)) == NULL ||
	    (h->sweep = event_new(base, -1, EV_PERSIST, on_sweep, h)) == NULL ||
	    (h->kick = event_new(base, -1, 0, on_sweep, h)) == NULL)
		fatalx("event_new failed");
	event_add(h->sweep, &tv);
	TAILQ_INSERT_TAIL(&all_httpds, h, all);
	log_event(LOG_INFO, "listening", "address=%s paths=%s", h->address,
	    "/metrics,/healthz,/readyz");
	return h;
}

void
httpd_free(struct httpd *h)
{
	struct conn	*c;

	if (h == NULL)
		return;
	TAILQ_REMOVE(&all_httpds, h, all);
	/* evhttp frees its connections (and the listener it was given). */
	evhttp_free(h->http);
	/* Our references: the last ones now, so they close. */
	while ((c = TAILQ_FIRST(&h->conns)) != NULL) {
		TAILQ_REMOVE(&h->conns, c, entry);
		bufferevent_decref(c->bev);
		free(c);
	}
	event_free(h->resume);
	event_free(h->sweep);
	event_free(h->kick);
	free(h);
}
