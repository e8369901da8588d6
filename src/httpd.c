/*
 * httpd.c: /metrics, /healthz and /readyz on the daemon's loop.
 *
 * The handlers run on the daemon's loop and only read counters, so they
 * need no locking, and an answer from /healthz proves the loop is turning.
 *
 * A small HTTP/1.x server of its own (one request per connection, then
 * Connection: close) on an evconnlistener and bufferevents, rather than
 * evhttp: libevent 2.1's evhttp has no connection limit and its timeout
 * restarts with every byte, so a local client trickling a few hundred
 * connections could use up the process's descriptors (SPEC §12).  Here:
 * at most HTTPD_MAX_CONNS connections (a new one pushes out the oldest),
 * a deadline for the whole exchange that no trickle extends, descriptors
 * kept in reserve for Discovery and memcached, and accept errors (EMFILE)
 * pausing the listener and logged at most once a minute.
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
#include <event2/listener.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define HTTPD_DEADLINE_S	10	/* accept to last byte sent */
#define HTTPD_MAX_HEADERS	8192
#define HTTPD_MAX_CONNS		64
#define HTTPD_FD_RESERVE	64	/* left for Discovery, memcached */
#define HTTPD_PAUSE_MS		1000	/* after an accept error */
#define HTTPD_LOG_EVERY_MS	60000

struct conn {
	struct httpd		*h;
	struct bufferevent	*bev;
	struct event		*deadline;
	bool			 replied;	/* close once it is sent */
	TAILQ_ENTRY(conn)	 entry;		/* oldest first */
};

TAILQ_HEAD(conn_list, conn);

struct httpd {
	struct event_base	*base;
	struct evconnlistener	*lev;
	struct event		*resume;	/* listener paused: go on */
	struct httpd_hooks	 hooks;
	struct conn_list	 conns;
	int			 nconns;
	uint64_t		 logged_ms;	/* last listen_error */
	unsigned long		 unlogged;	/* errors since then */
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

static void	conn_close(struct conn *);

/* One request, as parsed from its head. */
struct request {
	char		 method[16];
	char		 path[256];
	bool		 head;
};

/*
 * Queue the answer (body may be NULL; HEAD gets the headers only, with the
 * length a GET would have) and close once it is sent.
 */
static void
reply(struct conn *c, const struct request *rq, int code, const char *reason,
    const char *ctype, const char *extra, const struct buf *body)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 len = body != NULL ? body->len : 0;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "Connection: close\r\n\r\n", code, reason, ctype, len,
	    extra != NULL ? extra : "");
	if (len > 0 && (rq == NULL || !rq->head))
		evbuffer_add(out, body->data, len);
	c->replied = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* A one-line plain text answer. */
static void
reply_text(struct conn *c, const struct request *rq, int code,
    const char *reason, const char *extra, const char *text)
{
	struct buf	b;

	buf_init(&b);
	buf_adds(&b, text);
	buf_addc(&b, '\n');
	reply(c, rq, code, reason, "text/plain; charset=utf-8", extra, &b);
	buf_free(&b);
}

static void
serve_metrics(struct conn *c, const struct request *rq)
{
	struct httpd	*h = c->h;
	struct buf	 b;

	buf_init(&b);
	metrics_render(&b);
	if (h->hooks.metrics != NULL)
		h->hooks.metrics(&b, h->hooks.arg);
	reply(c, rq, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    NULL, &b);
	buf_free(&b);
}

static void
serve_readyz(struct conn *c, const struct request *rq)
{
	struct httpd	*h = c->h;
	struct buf	 reason;

	buf_init(&reason);
	if (h->hooks.ready == NULL || h->hooks.ready(&reason, h->hooks.arg))
		reply_text(c, rq, 200, "OK", NULL, "ready");
	else {
		buf_adds(&reason, "");	/* never NULL data */
		reply_text(c, rq, 503, "Service Unavailable", NULL,
		    (const char *)reason.data);
	}
	buf_free(&reason);
}

/*
 * Parse the request line "METHOD SP target SP HTTP/1.x" of a head; -1 if
 * it is not one.  The rest of the head (headers) is not needed.
 */
static int
parse_request_line(const char *line, struct request *rq)
{
	const char	*sp1, *sp2, *q;
	size_t		 n;

	memset(rq, 0, sizeof *rq);
	if ((sp1 = strchr(line, ' ')) == NULL || sp1 == line ||
	    (size_t)(sp1 - line) >= sizeof rq->method)
		return -1;
	if ((sp2 = strchr(sp1 + 1, ' ')) == NULL || sp2 == sp1 + 1 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -1;
	memcpy(rq->method, line, (size_t)(sp1 - line));
	for (n = 0; rq->method[n] != '\0'; n++)
		if (rq->method[n] < 'A' || rq->method[n] > 'Z')
			return -1;
	/* The path: origin-form up to the query, or "" if other. */
	if (sp1[1] == '/') {
		q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
		n = (size_t)((q != NULL ? q : sp2) - (sp1 + 1));
		if (n >= sizeof rq->path)
			n = 0;
		memcpy(rq->path, sp1 + 1, n);
	}
	rq->head = strcmp(rq->method, "HEAD") == 0;
	return 0;
}

/* A whole request head arrived: answer it. */
static void
serve(struct conn *c, const char *line)
{
	struct request	rq;

	if (parse_request_line(line, &rq) == -1) {
		reply_text(c, NULL, 400, "Bad Request", NULL, "bad request");
		return;
	}
	if (strcmp(rq.method, "GET") != 0 && !rq.head) {
		reply_text(c, &rq, 405, "Method Not Allowed",
		    "Allow: GET, HEAD\r\n", "method not allowed: GET or HEAD");
		return;
	}
	if (strcmp(rq.path, "/metrics") == 0)
		serve_metrics(c, &rq);
	else if (strcmp(rq.path, "/healthz") == 0)
		reply_text(c, &rq, 200, "OK", NULL, "ok");
	else if (strcmp(rq.path, "/readyz") == 0)
		serve_readyz(c, &rq);
	else
		reply_text(c, &rq, 404, "Not Found", NULL,
		    "not found: try /metrics, /healthz or /readyz");
}

/* Bytes arrived: once the head is whole, answer; refuse a huge head. */
static void
on_conn_read(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 end;
	char			*line;
	size_t			 n;

	if (c->replied)
		return;
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos == -1) {
		if (evbuffer_get_length(in) > HTTPD_MAX_HEADERS)
			reply_text(c, NULL, 431, "Request Header Fields Too "
			    "Large", NULL, "request head too large");
		return;
	}
	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL) {
		reply_text(c, NULL, 400, "Bad Request", NULL, "bad request");
		return;
	}
	serve(c, line);
	free(line);
}

/* The answer is sent: the exchange is over. */
static void
on_conn_write(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->replied)
		conn_close(c);
}

/* The peer went away, or the socket failed. */
static void
on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_close(arg);
}

/* The whole exchange took too long (a trickle, or a client that hangs). */
static void
on_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_close(arg);
}

/* Let go of a connection; the listener may take more again. */
static void
conn_close(struct conn *c)
{
	struct httpd	*h = c->h;

	TAILQ_REMOVE(&h->conns, c, entry);
	h->nconns--;
	bufferevent_free(c->bev);
	event_free(c->deadline);
	free(c);
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

/* Whether fd (the lowest free descriptor, as accept gives) eats into the
 * reserve kept for Discovery and memcached. */
static bool
in_reserve(evutil_socket_t fd)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	return (rlim_t)fd + HTTPD_FD_RESERVE >= rl.rlim_cur;
}

/* A connection came in: take it, pushing out the oldest if full. */
static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct httpd	*h = arg;
	struct conn	*c;
	struct timeval	 tv = { HTTPD_DEADLINE_S, 0 };

	(void)lev;
	(void)sa;
	(void)salen;
	if (in_reserve(fd)) {
		evutil_closesocket(fd);
		accept_trouble(h, "descriptors are low: connection refused "
		    "(they are kept for Discovery and memcached)");
		return;
	}
	if (h->nconns >= HTTPD_MAX_CONNS)
		conn_close(TAILQ_FIRST(&h->conns));
	c = xcalloc(1, sizeof *c);
	c->h = h;
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(h->base, on_conn_deadline, c);
	if (c->bev == NULL || c->deadline == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event,
	    c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, HTTPD_MAX_HEADERS + 1);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->deadline, &tv);
	TAILQ_INSERT_TAIL(&h->conns, c, entry);
	h->nconns++;
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...): pause instead of spinning. */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct httpd	*h = arg;
	struct timeval	 tv = { HTTPD_PAUSE_MS / 1000,
			    (HTTPD_PAUSE_MS % 1000) * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(lev);
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
	int		 fd;

	if ((fd = listen_on(host, port)) == -1)
		return NULL;
	h = xcalloc(1, sizeof *h);
	h->base = base;
	h->hooks = *hooks;
	TAILQ_INIT(&h->conns);
	bound_address(fd, h->address, sizeof h->address);
	h->lev = evconnlistener_new(base, on_accept, h,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (h->lev == NULL)
		fatalx("evconnlistener_new failed");
	evconnlistener_set_error_cb(h->lev, on_accept_error);
	if ((h->resume = evtimer_new(base, on_resume, h)) == NULL)
		fatalx("evtimer_new failed");
	log_event(LOG_INFO, "listening", "address=%s paths=%s", h->address,
	    "/metrics,/healthz,/readyz");
	return h;
}

void
httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	/* conn_close unlinks c; the analyzer does not follow TAILQ. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while (!TAILQ_EMPTY(&h->conns))
		conn_close(TAILQ_FIRST(&h->conns));
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
	evconnlistener_free(h->lev);
	event_free(h->resume);
	free(h);
}

const char *
httpd_address(const struct httpd *h)
{
	return h->address;
}
