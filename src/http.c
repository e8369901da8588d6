/*
 * http.c: libcurl's multi_socket interface on a libevent loop.
 *
 * The glue follows curl's docs/examples/multi-event.c and libcurl's rules
 * for it: one non-repeating timer, one event per socket,
 * handles removed only after curl_multi_socket_action() has returned, the
 * status code read with CURLINFO_RESPONSE_CODE (not CURLOPT_FAILONERROR,
 * which throws the body away and closes the connection).
 */
#include <sys/queue.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

enum req_state {
	REQ_QUEUED,
	REQ_ACTIVE,
	REQ_BACKOFF
};

struct http_req {
	struct http		*h;
	CURL			*easy;
	char			*url;
	char			*form;		/* POST body, or NULL */
	char			*auth;		/* Authorization, or NULL */
	struct curl_slist	*headers;	/* made when sent */
	http_cb			 cb;
	void			*arg;
	enum req_state		 state;
	int			 attempt;
	bool			 too_big;
	size_t			 max_size;	/* 0: opts.max_response_size */
	char			*site;		/* http_set_tag, or NULL */
	char			*endpoint;
	uint64_t		 started;	/* mono_ms of the first attempt */
	struct buf		 body;
	char			 errbuf[CURL_ERROR_SIZE];
	struct event		*retry_ev;
	TAILQ_ENTRY(http_req)	 entry;		/* queue or done list */
	TAILQ_ENTRY(http_req)	 all;
};

TAILQ_HEAD(req_list, http_req);

struct http {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	struct event		*kick;		/* start queued work, later */
	struct http_opts	 opts;
	struct req_list		 queue;
	struct req_list		 all;
	int			 active;
};

struct sock {
	struct event	*ev;
};

static void	pump(struct http *);
static void	check_done(struct http *);
static void	on_kick(evutil_socket_t, short, void *);

static bool	curl_inited;

/* libcurl timer callback: (re)arm our single timer; never call curl here. */
static int
on_curl_timer(CURLM *m, long ms, void *arg)
{
	struct http	*h = arg;
	struct timeval	 tv;

	(void)m;
	if (ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

/* Our timer fired: let libcurl handle its timeouts. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;
	int		 running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

/* A socket is ready: tell libcurl which way. */
static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;
	int		 running, flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
}

/* libcurl socket callback: watch the socket the way it asks. */
static int
on_curl_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct http	*h = arg;
	struct sock	*sk = sockp;
	short		 kind = EV_PERSIST;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			event_free(sk->ev);
			free(sk);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (sk == NULL) {
		sk = xcalloc(1, sizeof *sk);
		curl_multi_assign(h->multi, s, sk);
	} else
		event_free(sk->ev);
	sk->ev = event_new(h->base, s, kind, on_socket, h);
	if (sk->ev == NULL)
		fatalx("event_new for a socket failed");
	event_add(sk->ev, NULL);
	return 0;
}

/* The most body bytes a request may keep. */
static size_t
req_cap(const struct http_req *r)
{
	if (r->max_size > 0 && r->max_size < r->h->opts.max_response_size)
		return r->max_size;
	return r->h->opts.max_response_size;
}

/*
 * Body bytes arrive: keep them, up to the configured cap.  The buffer is
 * made the announced size at once (within the cap): grown by doubling, a
 * 65 KB detail cost eleven reallocations and twice its size in copies on
 * the loop.
 */
static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n;
	curl_off_t	 cl;

	if (r->body.len + len > req_cap(r)) {
		r->too_big = true;
		return CURL_WRITEFUNC_ERROR;
	}
	if (r->body.cap == 0 && curl_easy_getinfo(r->easy,
	    CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
	    (curl_off_t)len <= cl && (uint64_t)cl <= req_cap(r))
		buf_reserve(&r->body, (size_t)cl);
	buf_add(&r->body, p, len);
	return len;
}

/* Start queued work from the loop, so callbacks never nest in callers. */
static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

struct http *
http_new(struct event_base *base, const struct http_opts *opts)
{
	struct http	*h;

	if (!curl_inited) {
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			fatalx("curl_global_init failed");
		curl_inited = true;
	}
	h = xcalloc(1, sizeof *h);
	h->base = base;
	h->opts = *opts;
	TAILQ_INIT(&h->queue);
	TAILQ_INIT(&h->all);
	if ((h->multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	h->timer = evtimer_new(base, on_timer, h);
	h->kick = event_new(base, -1, 0, on_kick, h);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
http_set_opts(struct http *h, const struct http_opts *opts)
{
	h->opts = *opts;
}

/* Forget a request entirely (it must not be in the multi handle). */
static void
req_free(struct http_req *r)
{
	if (r->form != NULL)	/* it may hold a client secret */
		explicit_bzero(r->form, strlen(r->form));
	if (r->auth != NULL)
		explicit_bzero(r->auth, strlen(r->auth));
	free(r->auth);
	if (r->retry_ev != NULL)
		event_free(r->retry_ev);
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	buf_free(&r->body);
	free(r->url);
	free(r->form);
	free(r->site);
	free(r->endpoint);
	free(r);
}

/* Take a request off every list and out of the multi handle. */
static void
req_detach(struct http_req *r)
{
	struct http	*h = r->h;

	switch (r->state) {
	case REQ_QUEUED:
		TAILQ_REMOVE(&h->queue, r, entry);
		break;
	case REQ_ACTIVE:
		curl_multi_remove_handle(h->multi, r->easy);
		h->active--;
		break;
	case REQ_BACKOFF:
		evtimer_del(r->retry_ev);
		break;
	}
	TAILQ_REMOVE(&h->all, r, all);
}

/* The response's Date header (the server's clock), or 0. */
static int64_t
reply_date(CURL *e)
{
	struct curl_header	*hd;
	time_t			 when;

	if (e == NULL || curl_easy_header(e, "Date", 0, CURLH_HEADER, -1,
	    &hd) != CURLHE_OK || hd->value == NULL ||
	    (when = curl_getdate(hd->value, NULL)) <= 0)
		return 0;
	return (int64_t)when;
}

/* Hand the outcome to the caller, then free the request. */
static void
req_deliver(struct http_req *r, long status, const char *ctype,
    const char *error)
{
	struct http_result	res;

	memset(&res, 0, sizeof res);
	res.url = r->url;
	res.status = status;
	res.content_type = ctype;
	res.body = r->body.data != NULL ? (const char *)r->body.data : "";
	res.len = r->body.len;
	res.error = error;
	res.attempts = r->attempt;
	res.date = status > 0 ? reply_date(r->easy) : 0;
	res.req_ = r;
	if (r->started != 0)
		metrics_http_duration(r->endpoint,
		    (double)(mono_ms() - r->started) / 1000);
	r->cb(&res, r->arg);
	req_free(r);
}

char *
http_take_body(const struct http_result *res)
{
	struct http_req	*r = res->req_;
	char		*copy;

	if (r == NULL) {	/* a result made up by the caller */
		copy = xmalloc(res->len + 1);
		memcpy(copy, res->body, res->len);
		copy[res->len] = '\0';
		return copy;
	}
	if (r->body.data == NULL)
		return xcalloc(1, 1);
	return (char *)buf_steal(&r->body, NULL);
}

void
http_free(struct http *h)
{
	struct http_req	*r;

	if (h == NULL)
		return;
	/* req_detach unlinks r; the analyzer does not follow TAILQ. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while ((r = TAILQ_FIRST(&h->all)) != NULL) {
		req_detach(r);
		req_free(r);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
	curl_multi_cleanup(h->multi);
	event_free(h->timer);
	event_free(h->kick);
	free(h);
}

/*
 * The easy handle and headers of a request about to go in flight: made
 * only now, so that queued requests cost their URL and little else.
 */
static void
req_materialize(struct http_req *r)
{
	char	*hdr;

	if (r->easy == NULL && (r->easy = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	if (r->headers != NULL)
		return;
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	if (r->auth != NULL) {
		hdr = xasprintf("Authorization: %s", r->auth);
		r->headers = curl_slist_append(r->headers, hdr);
		explicit_bzero(hdr, strlen(hdr));
		free(hdr);
	}
	if (r->headers == NULL)
		fatalx("curl_slist_append failed");
}

/* Set every option of a transfer for its next attempt. */
static void
req_setup(struct http_req *r)
{
	const struct http_opts	*o = &r->h->opts;
	CURL			*e;
	long			 lst;

	req_materialize(r);
	e = r->easy;
	curl_easy_reset(e);
	buf_truncate(&r->body, 0);
	r->too_big = false;
	r->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "programs-cached/" PCD_VERSION);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/*
	 * design.md: Security: no redirects, so the token goes nowhere else.
	 */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->request_timeout_ms);
	if (o->low_speed_limit > 0 && o->low_speed_time_ms > 0) {
		lst = (o->low_speed_time_ms + 999) / 1000;
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, lst);
	}
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req_cap(r));
	if (r->form != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->form);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(r->form));
	}
}

/* Start queued requests while there is room. */
static void
pump(struct http *h)
{
	struct http_req	*r;
	CURLMcode	 mc;

	while (h->active < h->opts.max_in_flight &&
	    (r = TAILQ_FIRST(&h->queue)) != NULL) {
		TAILQ_REMOVE(&h->queue, r, entry);
		if (r->attempt++ == 0)
			r->started = mono_ms();
		req_setup(r);
		r->state = REQ_ACTIVE;
		h->active++;
		if ((mc = curl_multi_add_handle(h->multi, r->easy)) !=
		    CURLM_OK) {
			/* Only misuse gets here; report, do not retry. */
			h->active--;
			TAILQ_REMOVE(&h->all, r, all);
			req_deliver(r, 0, NULL, curl_multi_strerror(mc));
		}
	}
}

/* The backoff of a request is over: queue it again, first in line. */
static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct http_req	*r = arg;

	(void)fd;
	(void)what;
	r->state = REQ_QUEUED;
	TAILQ_INSERT_HEAD(&r->h->queue, r, entry);
	pump(r->h);
}

/* Seconds the server asked us to wait, or -1; dates clamp to >= 0. */
static long
retry_after(CURL *e)
{
	struct curl_header	*hd;
	char			*end;
	long			 secs;
	time_t			 when;

	if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &hd) !=
	    CURLHE_OK || hd->value == NULL || *hd->value == '\0')
		return -1;
	errno = 0;
	secs = strtol(hd->value, &end, 10);
	if (*end == '\0' && errno == 0)
		return secs < 0 ? 0 : secs;
	if ((when = curl_getdate(hd->value, NULL)) == -1)
		return -1;
	/* curl 7.88's CURLINFO_RETRY_AFTER goes negative here; we do not. */
	return when <= time(NULL) ? 0 : (long)(when - time(NULL));
}

/* Delay before the next attempt: 250 ms doubling, capped, with jitter. */
static long
backoff_ms(const struct http_opts *o, int attempt)
{
	double	d = (double)o->retry_backoff_ms;
	int	i;

	for (i = 1; i < attempt && d < (double)o->retry_backoff_max_ms; i++)
		d *= 2;
	if (d > (double)o->retry_backoff_max_ms)
		d = (double)o->retry_backoff_max_ms;
	/* "Equal jitter": never less than half, so backoff still backs off. */
	return (long)(d / 2 + rand_unit() * d / 2);
}

/* Whether a failed attempt is worth another try. */
static bool
retryable(CURLcode cc, long status, bool too_big)
{
	if (too_big)
		return false;
	switch (cc) {
	case CURLE_OK:
		return status == 429 || (status >= 500 && status <= 599);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

/* One attempt ended: deliver it, or schedule another. */
static void
attempt_done(struct http_req *r, CURLcode cc)
{
	struct http	*h = r->h;
	long		 status = 0, wait_ms, ra;
	char		*ctype = NULL;
	char		 err[CURL_ERROR_SIZE + 64];
	struct timeval	 tv;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ctype);
	curl_multi_remove_handle(h->multi, r->easy);
	h->active--;
	metrics.http_responses[status >= 100 && status <= 599 ?
	    status / 100 : 0]++;

	if (r->too_big || cc == CURLE_FILESIZE_EXCEEDED)
		snprintf(err, sizeof err, "response larger than %zu bytes",
		    req_cap(r));
	else if (cc != CURLE_OK && r->errbuf[0] != '\0')
		snprintf(err, sizeof err, "%s: %s", curl_easy_strerror(cc),
		    r->errbuf);
	else if (cc != CURLE_OK)
		snprintf(err, sizeof err, "%s", curl_easy_strerror(cc));
	else if (status < 200 || status > 299)
		snprintf(err, sizeof err, "HTTP %ld", status);
	else {
		TAILQ_REMOVE(&h->all, r, all);
		req_deliver(r, status, ctype, NULL);
		return;
	}

	if (r->form == NULL && r->attempt <= h->opts.retries &&
	    retryable(cc, status, r->too_big)) {
		wait_ms = backoff_ms(&h->opts, r->attempt);
		if (cc == CURLE_OK && (ra = retry_after(r->easy)) >= 0)
			wait_ms = (ra > 3600 ? 3600 : ra) * 1000;
		metrics.http_retries++;
		log_event(LOG_WARNING, "http_retry", "site=%s endpoint=%s "
		    "url=%s attempt=%d http_status=%ld error=%s delay_ms=%ld",
		    r->site, r->endpoint, r->url, r->attempt, status, err,
		    wait_ms);
		if (r->retry_ev == NULL)
			r->retry_ev = evtimer_new(h->base, on_retry, r);
		/* Waiting costs no handle and no body. */
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		buf_free(&r->body);
		r->state = REQ_BACKOFF;
		tv.tv_sec = wait_ms / 1000;
		tv.tv_usec = (wait_ms % 1000) * 1000;
		evtimer_add(r->retry_ev, &tv);
		return;
	}
	TAILQ_REMOVE(&h->all, r, all);
	req_deliver(r, cc == CURLE_OK ? status : 0, ctype, err);
}

/*
 * Deal with finished transfers, one message at a time: attempt_done removes
 * the handle (which also drops any message of it still queued), and the
 * caller's callback may cancel or add requests.
 */
static void
check_done(struct http *h)
{
	struct http_req	*r;
	CURLMsg		*m;
	CURLcode	 cc;
	int		 left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		    (char **)&r);
		cc = m->data.result;	/* m dies with remove_handle */
		attempt_done(r, cc);
	}
	pump(h);
}

/* Make a request and put it in the queue. */
static struct http_req *
req_new(struct http *h, const char *url, const char *auth, const char *form,
    http_cb cb, void *arg)
{
	struct http_req	*r;

	r = xcalloc(1, sizeof *r);
	r->h = h;
	r->url = xstrdup(url);
	r->form = form != NULL ? xstrdup(form) : NULL;
	r->auth = auth != NULL ? xstrdup(auth) : NULL;
	r->cb = cb;
	r->arg = arg;
	buf_init(&r->body);
	r->state = REQ_QUEUED;
	TAILQ_INSERT_TAIL(&h->queue, r, entry);
	TAILQ_INSERT_TAIL(&h->all, r, all);
	return r;
}

struct http_req *
http_get_max(struct http *h, const char *url, const char *authorization,
    size_t max_size, http_cb cb, void *arg)
{
	struct http_req	*r;

	r = req_new(h, url, authorization, NULL, cb, arg);
	r->max_size = max_size;
	event_active(h->kick, EV_TIMEOUT, 0);
	return r;
}

void
http_set_tag(struct http_req *r, const char *site, const char *endpoint)
{
	free(r->site);
	free(r->endpoint);
	r->site = site != NULL ? xstrdup(site) : NULL;
	r->endpoint = endpoint != NULL ? xstrdup(endpoint) : NULL;
}

struct http_req *
http_post_form(struct http *h, const char *url, const char *form,
    http_cb cb, void *arg)
{
	struct http_req	*r;

	r = req_new(h, url, NULL, form, cb, arg);
	event_active(h->kick, EV_TIMEOUT, 0);
	return r;
}

void
http_cancel_all(struct http *h, const char *why)
{
	struct http_req	*r;
	char		*err = xasprintf("cancelled: %s", why);

	/* NOLINTBEGIN(clang-analyzer-unix.Malloc): as in http_free */
	while ((r = TAILQ_FIRST(&h->all)) != NULL) {
		req_detach(r);
		req_deliver(r, 0, NULL, err);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
	free(err);
}

/* The scheme, host and port of url (port filled in); false if it has
 * none, or has credentials of its own. */
static bool
origin_of(const char *url, char **scheme, char **host, char **port)
{
	CURLU	*u;
	char	*user = NULL;
	bool	 ok = false;

	*scheme = *host = *port = NULL;
	if ((u = curl_url()) == NULL)
		fatalx("curl_url failed");
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) ==
	    CURLUE_OK)
		ok = true;
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

bool
http_same_origin(const char *base, const char *url)
{
	char	*bs, *bh, *bp, *us, *uh, *up;
	bool	 same;

	us = uh = up = NULL;
	same = origin_of(base, &bs, &bh, &bp) &&
	    origin_of(url, &us, &uh, &up) && strcasecmp(bs, us) == 0 &&
	    strcasecmp(bh, uh) == 0 && strcmp(bp, up) == 0;
	curl_free(bs);
	curl_free(bh);
	curl_free(bp);
	curl_free(us);
	curl_free(uh);
	curl_free(up);
	return same;
}

char *
http_escape(const char *s)
{
	char	*e, *out;

	if ((e = curl_easy_escape(NULL, s, 0)) == NULL)
		fatalx("curl_easy_escape failed");
	out = xstrdup(e);
	curl_free(e);
	return out;
}
