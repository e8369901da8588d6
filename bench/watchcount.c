/*
 * watchcount: the reader watch alone, for its benchmark (issue 23): one
 * mcwatch.c connection to a memcached, every line parsed and every fetched
 * key classified by readers.c against a 1,000-program publish, as the
 * daemon will, on one event loop.
 *
 *	bench-watchcount -s HOST:PORT [-t SECONDS] [-n PROGRAMS] [-a AWAKE_MS]
 *	bench-watchcount -s HOST:PORT -L SAMPLES [-g GAP_MS] [-a AWAKE_MS]
 *
 * The publish: program-{uuid} and course-programs-course-v1:Org+P{i}+Run
 * of PROGRAMS programs (the keys bench-getload reads), edx key function,
 * prefix "default", version "1".  It counts from the moment the watch is
 * up for SECONDS, then prints one JSON object: lines, gets by kind,
 * skipped (the server's skipped=N), bad, the CPU time this process used
 * (user + system) over the window, per 100,000 lines, and as a share of
 * one core, and how many lines memcached itself dropped meanwhile
 * (stats log_worker_dropped, log_watcher_skipped: server-wide).
 *
 * -L: the latency of a line instead: SAMPLES times, after GAP_MS of quiet
 * (default 2,000), one get of a new key on a connection of this process;
 * the time from sending it to its line coming back.  Prints the median,
 * p90, p99 and the largest, in milliseconds.  -a: mcwatch's keep-awake
 * (0, the default here: off).
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "catalog.h"
#include "entry.h"
#include "keys.h"
#include "log.h"
#include "mcwatch.h"
#include "readers.h"
#include "util.h"

static struct event_base	*base;
static struct readers		*readers;
static char			*host, *port;
static double			 seconds = 10;
static struct mcw_info		 at_start;
static double			 t0, cpu0;
static bool			 up;

static void	probe_seen(void);

static struct {
	uint64_t	lines, gets, held_hit, held_miss, not_held, foreign;
	uint64_t	own, skipped;
} n;

/* -L: the probe in flight, and the samples. */
static int		 samples, gap_ms = 2000;
static int		 probe_fd = -1, nprobe;
static char		 probe_key[64];
static double		 probe_at, *lat;
static struct event	*probe_ev;

/* Say how to call us and fail. */
static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: bench-watchcount -s host:port [-t seconds] "
	    "[-n programs]\n");
	exit(2);
}

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds of this process. */
static double
cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One TCP connection to the server, blocking. */
static int
dial(void)
{
	struct addrinfo	 hints, *res;
	int		 fd;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 ||
	    (fd = socket(res->ai_family, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("connect");
	freeaddrinfo(res);
	return fd;
}

/* Send the next probe: a get of a key never asked before. */
static void
probe_send(evutil_socket_t fd, short what, void *arg)
{
	char	cmd[96], reply[64];
	int	len;

	(void)fd;
	(void)what;
	(void)arg;
	snprintf(probe_key, sizeof probe_key, "latency-probe-%d-%d",
	    (int)getpid(), nprobe);
	len = snprintf(cmd, sizeof cmd, "get %s\r\n", probe_key);
	probe_at = now();
	if (write(probe_fd, cmd, (size_t)len) != len ||
	    read(probe_fd, reply, sizeof reply) <= 0)
		fatal("probe");
}

/* The probe's line came: note the time, and plan the next. */
static void
probe_seen(void)
{
	struct timeval	tv = { gap_ms / 1000, (gap_ms % 1000) * 1000 };

	lat[nprobe++] = (now() - probe_at) * 1000;
	probe_at = 0;
	if (nprobe == samples)
		event_base_loopbreak(base);
	else
		evtimer_add(probe_ev, &tv);
}

/* A line: count it, and classify what was fetched. */
static void
on_line(const struct mcw_line *l, void *arg)
{
	struct readers_key	k;

	(void)arg;
	if (!up)
		return;
	if (samples > 0) {
		if (l->kind == MCW_GET && probe_at > 0 &&
		    l->keylen == strlen(probe_key) &&
		    memcmp(l->key, probe_key, l->keylen) == 0)
			probe_seen();
		return;
	}
	n.lines++;
	if (l->kind == MCW_SKIPPED)
		n.skipped += l->skipped;
	if (l->kind != MCW_GET)
		return;
	n.gets++;
	if (l->own) {
		n.own++;
		return;
	}
	switch (readers_classify(readers, 0, (const char *)l->key, l->keylen,
	    &k)) {
	case READERS_HELD:
	case READERS_ELSEWHERE:
		if (l->status == MCW_FOUND)
			n.held_hit++;
		else
			n.held_miss++;
		break;
	case READERS_NOT_HELD:
		n.not_held++;
		break;
	default:
		n.foreign++;
	}
}

/* The end of the window. */
static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Up: start counting. */
static void
on_state(enum mcw_state s, const char *why, const struct mcw_info *info,
    void *arg)
{
	static struct event	*end;
	struct timeval		 tv;

	(void)arg;
	if (s != MCW_UP) {
		if (up)
			fatalx("the watch went down: %s", why);
		fprintf(stderr, "watchcount: %s\n", why);
		return;
	}
	at_start = *info;
	up = true;
	t0 = now();
	cpu0 = cpu();
	if (samples > 0) {
		tv.tv_sec = gap_ms / 1000;
		tv.tv_usec = (gap_ms % 1000) * 1000;
		probe_fd = dial();
		probe_ev = evtimer_new(base, probe_send, NULL);
		evtimer_add(probe_ev, &tv);
		return;
	}
	tv.tv_sec = (long)seconds;
	tv.tv_usec = (long)((seconds - (double)tv.tv_sec) * 1e6);
	end = evtimer_new(base, on_end, NULL);
	evtimer_add(end, &tv);
}

/* One counter from the server's stats, over a new connection. */
static uint64_t
server_stat(const char *name)
{
	struct addrinfo	 hints, *res;
	char		 buf[65536], *p;
	size_t		 len = 0;
	ssize_t		 r;
	int		 fd;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 ||
	    (fd = socket(res->ai_family, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("stats connection");
	freeaddrinfo(res);
	if (write(fd, "stats\r\n", 7) != 7)
		fatal("write");
	while (len < sizeof buf - 1 && (r = read(fd, buf + len,
	    sizeof buf - 1 - len)) > 0) {
		len += (size_t)r;
		buf[len] = '\0';
		if (strstr(buf, "END\r\n") != NULL)
			break;
	}
	buf[len] = '\0';
	close(fd);
	if ((p = strstr(buf, name)) == NULL)
		return 0;
	return strtoull(p + strlen(name) + 1, NULL, 10);
}

/* The publish: programs and the course runs in them. */
static struct entry *
publish(int programs, size_t *count)
{
	struct entry	*v;
	struct keyfn	 kf;
	char		 key[128], wire[KEY_MAX + 1];
	int		 i, k, len;

	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	v = xcalloc((size_t)programs * 2, sizeof *v);
	for (i = 0; i < programs * 2; i++) {
		k = i / 2;
		if (i % 2 == 0)
			snprintf(key, sizeof key, "program-%08x-0000-4000-8000-"
			    "%012x", k, k);
		else
			snprintf(key, sizeof key, "course-programs-course-v1:Org+"
			    "P%d+Run", k);
		len = key_make_short(&kf, key, strlen(key), wire);
		v[i].key = xstrdup(key);
		v[i].wire = xstrndup(wire, (size_t)len);
		v[i].wirelen = (uint16_t)len;
		v[i].servers = 1;
		v[i].family = i % 2 == 0 ? FAM_PROGRAM : FAM_COURSE;
	}
	*count = (size_t)programs * 2;
	readers = readers_new(v, *count, &kf);
	key_clear(&kf);
	return v;
}

/* Compare two doubles, for qsort. */
static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Free the watch, the publish and the loop. */
static void
cleanup(struct mcw *w, struct entry *v, size_t nv)
{
	size_t	i;

	mcw_free(w);
	readers_free(readers);
	for (i = 0; i < nv; i++) {
		free((char *)(uintptr_t)v[i].key);
		free((char *)(uintptr_t)v[i].wire);
	}
	free(v);
	event_base_free(base);
}

/* -L: print the latencies and free everything. */
static int
latency_report(struct mcw *w, struct entry *v, size_t nv)
{
	qsort(lat, (size_t)samples, sizeof *lat, cmp_double);
	printf("{\"samples\": %d, \"gap_ms\": %d, \"median_ms\": %.1f, "
	    "\"p90_ms\": %.1f, \"p99_ms\": %.1f, \"max_ms\": %.1f}\n",
	    samples, gap_ms, lat[samples / 2], lat[samples * 9 / 10],
	    lat[samples * 99 / 100], lat[samples - 1]);
	event_free(probe_ev);
	close(probe_fd);
	free(lat);
	cleanup(w, v, nv);
	return 0;
}

int
main(int argc, char **argv)
{
	struct mcw_opts	 o = { 0 };
	struct mcw_cbs	 cbs = { on_line, on_state };
	struct mcw	*w;
	struct entry	*v;
	size_t		 nv;
	double		 t, c;
	char		*colon;
	int		 ch, programs = 1000;

	log_setup(LOG_FORMAT_JSON, LOG_WARNING);
	while ((ch = getopt(argc, argv, "s:t:n:L:g:a:")) != -1) {
		switch (ch) {
		case 's':
			if ((colon = strrchr(optarg, ':')) == NULL)
				usage();
			*colon = '\0';
			host = optarg;
			port = colon + 1;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			programs = atoi(optarg);
			break;
		case 'L':
			samples = atoi(optarg);
			break;
		case 'g':
			gap_ms = atoi(optarg);
			break;
		case 'a':
			o.awake_ms = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (host == NULL || programs < 1 || seconds <= 0)
		usage();
	v = publish(programs, &nv);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	o.host = host;
	o.port = atoi(port);
	o.streams = "fetchers evictions connevents";
	if (samples > 0)
		lat = xcalloc((size_t)samples, sizeof *lat);
	w = mcw_new(base, &o, &cbs, NULL);
	event_base_dispatch(base);
	if (samples > 0)
		return latency_report(w, v, nv);
	t = now() - t0;
	c = cpu() - cpu0;
	printf("{\"seconds\": %.3f, \"lines\": %llu, \"lines_per_s\": %.0f, "
	    "\"gets\": %llu, \"held_hit\": %llu, \"held_miss\": %llu, "
	    "\"not_held\": %llu, \"foreign\": %llu, \"own\": %llu, "
	    "\"skipped\": %llu, \"bad\": %llu, \"cpu_s\": %.3f, "
	    "\"cpu_s_per_100k_lines\": %.4f, \"core_share\": %.3f, "
	    "\"server_worker_dropped\": %llu, \"server_watcher_skipped\": "
	    "%llu}\n", t, (unsigned long long)n.lines, (double)n.lines / t,
	    (unsigned long long)n.gets, (unsigned long long)n.held_hit,
	    (unsigned long long)n.held_miss, (unsigned long long)n.not_held,
	    (unsigned long long)n.foreign, (unsigned long long)n.own,
	    (unsigned long long)n.skipped,
	    (unsigned long long)mcw_counts(w)->bad, c,
	    n.lines > 0 ? c / (double)n.lines * 100000 : 0, c / t,
	    (unsigned long long)(server_stat("log_worker_dropped") -
	    at_start.worker_dropped),
	    (unsigned long long)(server_stat("log_watcher_skipped") -
	    at_start.watcher_skipped));
	cleanup(w, v, nv);
	return 0;
}
