/*
 * fakedisco: a fast fake Discovery for the benchmarks (libevent evhttp).
 *
 * The Python fake (tests/support/fakedisco.py) checks everything and
 * injects faults, but cannot serve 10,000 x 65 KB quickly enough to stay
 * out of the measurement.  This one serves a catalogue directory written
 * by bench/gen.py from memory, without copying the bodies (evbuffer
 * references), on one thread, with TCP_NODELAY on every connection (with
 * Nagle, a 65 KB reply ends in a small segment held for the delayed ACK:
 * 23 requests a second were measured so).
 *
 *	bench-fakedisco -d DIR [-H HOST] [-p PORT] [-P PAGE_SIZE]
 *	    [-l LATENCY_MS] [-L all|detail]
 *
 * URLs and query strings are those of design.md: Talking to Discovery, query
 * parameters in any order (compared as a multiset, as the Python fake does);
 * anything else is a 400 or 404:
 *	GET /api/v1/programs/?exclude_utm=1&status=active&status=retired&uuids_only=1
 *	GET /api/v1/programs/{uuid}/?exclude_utm=1
 *	GET /api/v1/pathways/?status=published&exclude_utm=1&page=N
 * Pathway pages are DRF envelopes {count, next, previous, results} with
 * absolute next/previous URLs, PAGE_SIZE (default 20) pathways a page.
 * Bodies are not gzipped, whatever the request accepts.
 *
 * -l delays every answer (-L detail: only program details) by LATENCY_MS
 * on a timer, so the loop keeps serving others meanwhile.
 *
 * Prints "READY http://HOST:PORT/api/v1" on stdout once listening; on
 * SIGTERM or SIGINT prints the request counts on stderr, and a second line
 * that says whether this server, not its client, set the pace (SIGUSR1:
 * that line alone, for what came since the last one, and counting starts
 * again):
 *
 *	bench-fakedisco: connections=N max_waiting=N mean_waiting=X
 *	    late_ms=P50/P90/MAX
 *	    client_gap_ms=P50/P90/MAX
 *
 * connections: accepted; max_waiting and mean_waiting: replies waiting
 * for their latency timer at once, the most and the mean from the first
 * delayed request to the last delayed reply (the concurrency the client
 * kept up: at C in flight, ideally C); late_ms: how much
 * later than asked a delayed reply was written (this loop busy); and
 * client_gap_ms: from a reply written to the next request read on the
 * same connection (the client's turnaround, loopback included).  Each is
 * kept to 0.1 ms in a histogram, so the figures cost nothing to keep.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "map.h"
#include "util.h"

#define API		"/api/v1"
#define MAX_PARAMS	16
/*
 * One write for a whole reply: the default (16 KB) costs a turn of the
 * loop per 16 KB, and the replies of 32 clients go out in turns.
 */
#define MAX_WRITE	(1024 * 1024)
#define HIST_BUCKETS	10000		/* 0.1 ms each: up to 1 s */

static const char *uuids_query[] = {
	"exclude_utm=1", "status=active", "status=retired", "uuids_only=1"
};
static const char *detail_query[] = { "exclude_utm=1" };
static const char *pathways_query[] = { "exclude_utm=1", "status=published" };

struct body {
	char	*data;
	size_t	 len;
};

enum kind {
	K_UUIDS,
	K_DETAIL,
	K_PATHWAYS,
	K_OTHER,
	K_COUNT
};

static const char *kind_names[K_COUNT] = {
	"uuids", "detail", "pathways", "other"
};

/* A reply waiting for its latency timer. */
struct delayed {
	struct evhttp_request		*req;
	struct evhttp_connection	*conn;
	struct event			*ev;
	int				 status;
	const struct body		*body;
	uint64_t			 due_us;
	TAILQ_ENTRY(delayed)		 entry;
};

TAILQ_HEAD(delayed_list, delayed);

/* Durations to 0.1 ms, the last bucket holding everything above. */
struct hist {
	unsigned long	 n[HIST_BUCKETS];
	unsigned long	 count;
	uint64_t	 max_us;
};

/* What a connection (by descriptor) last did. */
struct conn_seen {
	bool		 open;
	uint64_t	 replied_us;	/* 0: no reply yet */
};

static struct {
	struct event_base	*base;
	struct body		 uuids;
	struct map		 programs;	/* uuid -> struct body * */
	struct body		*pages;		/* pathway page envelopes */
	size_t			 npages;
	struct timeval		 latency;
	bool			 delay_all;
	struct delayed_list	 waiting;
	size_t			 nwaiting, max_waiting;
	uint64_t		 waiting_since_us;	/* first delayed */
	uint64_t		 waiting_at_us;		/* last change */
	double			 waiting_area;		/* nwaiting x us */
	struct conn_seen	*conns;		/* by descriptor */
	size_t			 nconns;
	unsigned long		 accepted;
	struct hist		 late, gap;
	unsigned long		 served[K_COUNT];
	unsigned long		 errors;
	unsigned long long	 bytes;
} srv;

static const struct body not_found = {
	(char *)"{\"detail\":\"Not found.\"}", 23
};
static const struct body invalid_page = {
	(char *)"{\"detail\":\"Invalid page.\"}", 26
};
static const struct body bad_query = {
	(char *)"{\"error\":\"bad query string\"}", 28
};

static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
hist_add(struct hist *h, uint64_t us)
{
	uint64_t	b = us / 100;

	h->n[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
	h->count++;
	if (us > h->max_us)
		h->max_us = us;
}

/* The q-quantile of h, in ms (a bucket's upper edge). */
static double
hist_ms(const struct hist *h, double q)
{
	unsigned long	want = (unsigned long)(q * (double)h->count), seen = 0;
	size_t		i;

	for (i = 0; i < HIST_BUCKETS; i++)
		if ((seen += h->n[i]) > want)
			return (double)(i + 1) / 10;
	return (double)h->max_us / 1000;
}

static void
hist_print(const char *name, const struct hist *h)
{
	if (h->count == 0) {
		fprintf(stderr, " %s=-", name);
		return;
	}
	fprintf(stderr, " %s=%.1f/%.1f/%.1f", name, hist_ms(h, 0.5),
	    hist_ms(h, 0.9), (double)h->max_us / 1000);
}

/* The record of a descriptor, grown as descriptors come. */
static struct conn_seen *
conn_seen(evutil_socket_t fd)
{
	size_t	n;

	if (fd < 0)
		return NULL;
	if ((size_t)fd >= srv.nconns) {
		n = (size_t)fd * 2 + 16;
		srv.conns = xreallocarray(srv.conns, n, sizeof *srv.conns);
		memset(srv.conns + srv.nconns, 0, (n - srv.nconns) *
		    sizeof *srv.conns);
		srv.nconns = n;
	}
	return &srv.conns[fd];
}

/* The descriptor of a request's connection, or -1. */
static evutil_socket_t
req_fd(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;

	if ((conn = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(conn)) == NULL)
		return -1;
	return bufferevent_getfd(bev);
}

/* Say how to call us and fail. */
static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: bench-fakedisco -d dir [-H host] [-p port] "
	    "[-P page_size] [-l latency_ms] [-L all|detail]\n");
	exit(2);
}

/* Read a whole file into b; exit on failure (start-up only). */
static void
slurp(const char *path, struct body *b)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &st) == -1) {
		fprintf(stderr, "bench-fakedisco: %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	b->len = (size_t)st.st_size;
	b->data = xmalloc(b->len + 1);
	while (off < b->len) {
		if ((n = read(fd, b->data + off, b->len - off)) <= 0) {
			fprintf(stderr, "bench-fakedisco: %s: short read\n",
			    path);
			exit(1);
		}
		off += (size_t)n;
	}
	b->data[b->len] = '\0';
	close(fd);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's entries that end in ".json", sorted; their count. */
static size_t
list_json(const char *dir, char ***out)
{
	DIR		 *d;
	struct dirent	 *de;
	char		**v = NULL;
	size_t		  n = 0, len;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "bench-fakedisco: %s: %s\n", dir,
		    strerror(errno));
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		v = xreallocarray(v, n + 1, sizeof *v);
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof *v, cmp_name);
	*out = v;
	return n;
}

/* Load the programs: programs/<uuid>.json, keyed by uuid. */
static void
load_programs(const char *dir)
{
	char		 *path, **names;
	size_t		  i, n;
	struct body	 *b;

	path = xasprintf("%s/programs", dir);
	n = list_json(path, &names);
	for (i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", path, names[i]);

		b = xmalloc(sizeof *b);
		slurp(file, b);
		map_put(&srv.programs, names[i], strlen(names[i]) - 5)->val = b;
		free(file);
		free(names[i]);
	}
	free(names);
	free(path);
}

/* An absolute pathways page URL, as DRF writes next/previous. */
static void
page_url(struct buf *b, const char *base, size_t page)
{
	buf_printf(b, "\"%s/pathways/?exclude_utm=1", base);
	if (page > 1)
		buf_printf(b, "&page=%zu", page);
	buf_adds(b, "&status=published\"");
}

/* Load the pathways and build every page envelope once. */
static void
load_pathways(const char *dir, const char *base, size_t page_size)
{
	struct body	 *items;
	struct buf	  b;
	char		 *path, **names;
	size_t		  i, j, n, p;

	path = xasprintf("%s/pathways", dir);
	n = list_json(path, &names);
	items = xcalloc(n + 1, sizeof *items);
	for (i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", path, names[i]);

		slurp(file, &items[i]);
		free(file);
		free(names[i]);
	}
	free(names);
	free(path);

	srv.npages = n == 0 ? 1 : (n + page_size - 1) / page_size;
	srv.pages = xcalloc(srv.npages, sizeof *srv.pages);
	for (p = 1; p <= srv.npages; p++) {
		buf_init(&b);
		buf_printf(&b, "{\"count\":%zu,\"next\":", n);
		if (p < srv.npages)
			page_url(&b, base, p + 1);
		else
			buf_adds(&b, "null");
		buf_adds(&b, ",\"previous\":");
		if (p > 1)
			page_url(&b, base, p - 1);
		else
			buf_adds(&b, "null");
		buf_adds(&b, ",\"results\":[");
		for (j = (p - 1) * page_size; j < n && j < p * page_size; j++) {
			if (j > (p - 1) * page_size)
				buf_addc(&b, ',');
			buf_add(&b, items[j].data, items[j].len);
		}
		buf_adds(&b, "]}");
		srv.pages[p - 1].data = (char *)buf_steal(&b,
		    &srv.pages[p - 1].len);
	}
	for (i = 0; i < n; i++)
		free(items[i].data);
	free(items);
}

/*
 * Split a query string into at most MAX_PARAMS "name=value" strings in v
 * (pointing into q, which is modified), sorted.  Their count, or -1.
 */
static int
split_query(char *q, char *v[MAX_PARAMS])
{
	char	*p;
	int	 n = 0;

	while (q != NULL && *q != '\0') {
		if (n == MAX_PARAMS)
			return -1;
		p = strsep(&q, "&");
		if (*p != '\0')
			v[n++] = p;
	}
	qsort(v, (size_t)n, sizeof *v, cmp_name);
	return n;
}

/* Whether the parameters v[0..n) are exactly want[0..nwant) (sorted). */
static bool
same_params(char *v[], int n, const char *want[], int nwant)
{
	int	i;

	if (n != nwant)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(v[i], want[i]) != 0)
			return false;
	return true;
}

/* Send a reply now: the body by reference, never copied. */
static void
reply(struct evhttp_request *req, int status, const struct body *b)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(h, "Content-Type", "application/json");
	struct conn_seen	*cs = conn_seen(req_fd(req));

	evbuffer_add_reference(out, b->data, b->len, NULL, NULL);
	if (cs != NULL)
		cs->replied_us = now_us();
	if (status == 200)
		srv.bytes += b->len;
	else
		srv.errors++;
	evhttp_send_reply(req, status, status == 200 ? "OK" : status == 404 ?
	    "Not Found" : "Bad Request", NULL);
}

/* nwaiting changes by d: integrate it over time first. */
static void
waiting_change(int d)
{
	uint64_t	now = now_us();

	if (srv.waiting_since_us == 0)
		srv.waiting_since_us = now;
	else
		srv.waiting_area += (double)srv.nwaiting *
		    (double)(now - srv.waiting_at_us);
	srv.waiting_at_us = now;
	srv.nwaiting = (size_t)((ssize_t)srv.nwaiting + d);
	if (srv.nwaiting > srv.max_waiting)
		srv.max_waiting = srv.nwaiting;
}

static void
free_delayed(struct delayed *dl)
{
	waiting_change(-1);
	TAILQ_REMOVE(&srv.waiting, dl, entry);
	event_free(dl->ev);
	free(dl);
}

/* A latency timer fired: answer. */
static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct delayed	*dl = arg;

	uint64_t	 now = now_us();

	(void)fd;
	(void)what;
	hist_add(&srv.late, now > dl->due_us ? now - dl->due_us : 0);
	reply(dl->req, dl->status, dl->body);
	free_delayed(dl);
}

/* A connection closed: its delayed requests are gone with it. */
static void
on_close(struct evhttp_connection *conn, void *arg)
{
	struct bufferevent	*bev = evhttp_connection_get_bufferevent(conn);
	struct conn_seen	*cs;
	struct delayed		*dl, *next;

	(void)arg;
	if (bev != NULL && (cs = conn_seen(bufferevent_getfd(bev))) != NULL)
		memset(cs, 0, sizeof *cs);
	for (dl = TAILQ_FIRST(&srv.waiting); dl != NULL; dl = next) {
		next = TAILQ_NEXT(dl, entry);
		if (dl->conn == conn)
			free_delayed(dl);
	}
}

/* Reply now or after the latency. */
static void
answer(struct evhttp_request *req, enum kind k, int status,
    const struct body *b)
{
	struct delayed	*dl;

	if (!evutil_timerisset(&srv.latency) ||
	    (!srv.delay_all && k != K_DETAIL)) {
		reply(req, status, b);
		return;
	}
	dl = xcalloc(1, sizeof *dl);
	dl->req = req;
	dl->conn = evhttp_request_get_connection(req);
	dl->status = status;
	dl->body = b;
	dl->due_us = now_us() + (uint64_t)srv.latency.tv_sec * 1000000 +
	    (uint64_t)srv.latency.tv_usec;
	dl->ev = evtimer_new(srv.base, on_delay, dl);
	TAILQ_INSERT_TAIL(&srv.waiting, dl, entry);
	waiting_change(1);
	evtimer_add(dl->ev, &srv.latency);
}

/*
 * A request arrived: count a new connection (Nagle off, whole-reply
 * writes, a close callback) or the client's turnaround on an old one.
 */
static void
seen(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;
	struct conn_seen		*cs;
	evutil_socket_t			 fd;
	int				 one = 1;

	if ((conn = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(conn)) == NULL ||
	    (cs = conn_seen(fd = bufferevent_getfd(bev))) == NULL)
		return;
	if (cs->open) {
		if (cs->replied_us != 0)
			hist_add(&srv.gap, now_us() - cs->replied_us);
		return;
	}
	cs->open = true;
	srv.accepted++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	bufferevent_set_max_single_write(bev, MAX_WRITE);
	evhttp_connection_set_closecb(conn, on_close, NULL);
}

/* Every request: route it by path and check its query. */
static void
on_request(struct evhttp_request *req, void *arg)
{
	char		 target[1024], *path, *query, *v[MAX_PARAMS], *end;
	const char	*uri = evhttp_request_get_uri(req);
	const struct body *b;
	size_t		 len, plen = sizeof API "/programs/" - 1;
	long		 page = -1;
	int		 n, i;

	(void)arg;
	seen(req);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    strlen(uri) >= sizeof target) {
		srv.served[K_OTHER]++;
		reply(req, 400, &bad_query);
		return;
	}
	strcpy(target, uri);
	query = target;
	path = strsep(&query, "?");
	if ((n = split_query(query, v)) == -1) {
		srv.served[K_OTHER]++;
		reply(req, 400, &bad_query);
		return;
	}

	if (strcmp(path, API "/programs/") == 0) {
		srv.served[K_UUIDS]++;
		if (!same_params(v, n, uuids_query, 4))
			reply(req, 400, &bad_query);
		else
			answer(req, K_UUIDS, 200, &srv.uuids);
		return;
	}
	len = strlen(path);
	if (strncmp(path, API "/programs/", plen) == 0 && len > plen + 1 &&
	    path[len - 1] == '/') {
		srv.served[K_DETAIL]++;
		if (!same_params(v, n, detail_query, 1)) {
			reply(req, 400, &bad_query);
			return;
		}
		b = map_get(&srv.programs, path + plen, len - plen - 1);
		answer(req, K_DETAIL, b != NULL ? 200 : 404,
		    b != NULL ? b : &not_found);
		return;
	}
	if (strcmp(path, API "/pathways/") == 0) {
		srv.served[K_PATHWAYS]++;
		/* page=N once, plus exactly the others. */
		for (i = 0; i < n; i++) {
			if (strncmp(v[i], "page=", 5) != 0)
				continue;
			if (page != -1) {
				page = -2;
				break;
			}
			page = strtol(v[i] + 5, &end, 10);
			if (*end != '\0' || end == v[i] + 5)
				page = -2;
			memmove(&v[i], &v[i + 1], (size_t)(n - i - 1) *
			    sizeof *v);
			n--;
			i--;
		}
		if (page < 0 || !same_params(v, n, pathways_query, 2))
			reply(req, 400, &bad_query);
		else if (page < 1 || (size_t)page > srv.npages)
			answer(req, K_PATHWAYS, 404, &invalid_page);
		else
			answer(req, K_PATHWAYS, 200, &srv.pages[page - 1]);
		return;
	}
	srv.served[K_OTHER]++;
	reply(req, 404, &not_found);
}

/* The pace line (see the top of the file). */
static void
pace_print(void)
{
	fprintf(stderr, "bench-fakedisco: connections=%lu max_waiting=%zu "
	    "mean_waiting=%.1f", srv.accepted, srv.max_waiting,
	    srv.waiting_at_us > srv.waiting_since_us ? srv.waiting_area /
	    (double)(srv.waiting_at_us - srv.waiting_since_us) : 0.0);
	hist_print("late_ms", &srv.late);
	hist_print("client_gap_ms", &srv.gap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* SIGUSR1: the pace line since the last one, and start again. */
static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	pace_print();
	srv.accepted = 0;
	srv.max_waiting = srv.nwaiting;
	srv.waiting_area = 0;
	srv.waiting_since_us = srv.nwaiting > 0 ? now_us() : 0;
	srv.waiting_at_us = srv.waiting_since_us;
	memset(&srv.late, 0, sizeof srv.late);
	memset(&srv.gap, 0, sizeof srv.gap);
}

/* SIGTERM, SIGINT: leave the loop. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopexit(srv.base, NULL);
}

int
main(int argc, char *argv[])
{
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct sockaddr_storage		 ss;
	socklen_t			 sslen = sizeof ss;
	struct event			*sig_term, *sig_int, *sig_usr1;
	struct event_config		*cfgb;
	const char			*dir = NULL, *host = "127.0.0.1";
	char				*base, *uuids_path;
	long				 port = 0, page_size = 20, ms = 0;
	int				 ch, fd, i;

	srv.delay_all = true;
	while ((ch = getopt(argc, argv, "d:H:p:P:l:L:")) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = strtol(optarg, NULL, 10);
			break;
		case 'P':
			page_size = strtol(optarg, NULL, 10);
			break;
		case 'l':
			ms = strtol(optarg, NULL, 10);
			break;
		case 'L':
			if (strcmp(optarg, "all") == 0)
				srv.delay_all = true;
			else if (strcmp(optarg, "detail") == 0)
				srv.delay_all = false;
			else
				usage();
			break;
		default:
			usage();
		}
	}
	if (dir == NULL || optind != argc || port < 0 || port > 65535 ||
	    page_size < 1 || ms < 0)
		usage();
	srv.latency.tv_sec = ms / 1000;
	srv.latency.tv_usec = (ms % 1000) * 1000;

	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&srv.waiting);
	map_init(&srv.programs);
	/* Timers to the microsecond (timerfd), not epoll's milliseconds. */
	if ((cfgb = event_config_new()) == NULL ||
	    event_config_set_flag(cfgb, EVENT_BASE_FLAG_PRECISE_TIMER) != 0 ||
	    (srv.base = event_base_new_with_config(cfgb)) == NULL ||
	    (http = evhttp_new(srv.base)) == NULL) {
		fprintf(stderr, "bench-fakedisco: libevent set-up failed\n");
		return 1;
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(http, on_request, NULL);
	if ((bound = evhttp_bind_socket_with_handle(http, host,
	    (ev_uint16_t)port)) == NULL) {
		fprintf(stderr, "bench-fakedisco: cannot listen on %s:%ld\n",
		    host, port);
		return 1;
	}
	fd = evhttp_bound_socket_get_fd(bound);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
		perror("bench-fakedisco: getsockname");
		return 1;
	}
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	base = xasprintf("http://%s:%ld" API, host, port);

	uuids_path = xasprintf("%s/uuids.json", dir);
	slurp(uuids_path, &srv.uuids);
	free(uuids_path);
	load_programs(dir);
	load_pathways(dir, base, (size_t)page_size);

	sig_term = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
	sig_int = evsignal_new(srv.base, SIGINT, on_signal, NULL);
	sig_usr1 = evsignal_new(srv.base, SIGUSR1, on_usr1, NULL);
	event_add(sig_term, NULL);
	event_add(sig_int, NULL);
	event_add(sig_usr1, NULL);

	printf("READY %s\n", base);
	fflush(stdout);
	event_base_dispatch(srv.base);

	fprintf(stderr, "bench-fakedisco: served");
	for (i = 0; i < K_COUNT; i++)
		fprintf(stderr, " %s=%lu", kind_names[i], srv.served[i]);
	fprintf(stderr, " errors=%lu bytes=%llu\n", srv.errors, srv.bytes);
	pace_print();

	evhttp_free(http);
	event_config_free(cfgb);
	event_free(sig_term);
	event_free(sig_int);
	event_free(sig_usr1);
	event_base_free(srv.base);
	free(base);
	return 0;
}
