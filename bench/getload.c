/*
 * getload: a reader load on one memcached, for the reader watch's
 * benchmark (issue 23): mostly foreign keys (Django sessions), with a
 * share of program-family keys, as the LMS reads them (the edx key
 * function, prefix "default", version "1").
 *
 *	bench-getload -s HOST:PORT [-t SECONDS] [-r GETS_PER_S] [-c CONNS]
 *	    [-f FAMILY_PERCENT] [-n PROGRAMS] [-b BATCH] [-p]
 *
 * Each connection (a thread with a blocking socket) sends its gets in
 * pipelined batches of BATCH text-protocol "get KEY" commands and reads
 * every reply before the next batch, paced to GETS_PER_S / CONNS (0: as
 * fast as the server answers).  Keys: FAMILY_PERCENT (default 1) of the
 * gets are program-{uuid} of PROGRAMS programs (default 1,000: hits once
 * -p has stored them) and course-programs-{run} of runs in no program
 * (misses); the rest are sessions, a pool of 100,000 (-p stores a tenth of
 * them).  -p first stores the programs and the sessions.
 *
 * Prints one JSON object: gets, hits, seconds, gets_per_s.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "util.h"

#define SESSIONS	100000
#define MAXBATCH	1000

struct opts {
	char	*host;
	char	*port;
	double	 seconds;
	double	 rate;		/* per second, all connections; 0: unpaced */
	int	 conns;
	double	 family;	/* percent */
	int	 programs;
	int	 batch;
	bool	 populate;
};

struct worker {
	pthread_t	 t;
	const struct opts *o;
	int		 id;
	uint64_t	 gets;
	uint64_t	 hits;
	double		 elapsed;
};

static struct keyfn	kf;

/* Say how to call us and fail. */
static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: bench-getload -s host:port [-t seconds] "
	    "[-r gets/s] [-c conns] [-f family%%] [-n programs] [-b batch] "
	    "[-p]\n");
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

/* A TCP connection to the server. */
static int
dial(const struct opts *o)
{
	struct addrinfo	 hints, *res;
	int		 fd, one = 1;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(o->host, o->port, &hints, &res) != 0)
		fatalx("cannot resolve %s", o->host);
	if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("connect %s:%s", o->host, o->port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	freeaddrinfo(res);
	return fd;
}

/* The wire key of the i-th key of a kind, as the LMS makes it. */
static int
wire_key(int kind, unsigned i, char out[KEY_MAX + 1])
{
	char	key[128];

	if (kind == 0)
		snprintf(key, sizeof key, "django.contrib.sessions.cache%032x",
		    i * 2654435761u);
	else if (kind == 1)
		snprintf(key, sizeof key, "program-%08x-0000-4000-8000-%012x",
		    i, i);
	else
		snprintf(key, sizeof key, "course-programs-course-v1:Org+C%u"
		    "+Run", i);
	return key_make_short(&kf, key, strlen(key), out);
}

/* Write all of b. */
static void
send_all(int fd, const char *b, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, b, len)) <= 0)
			fatal("write");
		b += n;
		len -= (size_t)n;
	}
}

/*
 * Read replies until n "END" (gets) or n replies to stores; count the
 * VALUEs.  buf holds what was read beyond, carried to the next call.
 */
static uint64_t
read_replies(int fd, int n, bool gets, struct buf *in)
{
	uint64_t	 hits = 0;
	size_t		 off = 0;
	ssize_t		 r;
	char		*nl;

	buf_reserve(in, 65536);
	while (n > 0) {
		while (n > 0 && (nl = memchr(in->data + off, '\n',
		    in->len - off)) != NULL) {
			const char	*line = (const char *)in->data + off;
			size_t		 len = (size_t)(nl - line) + 1;
			unsigned long	 bytes, flags;

			if (gets && strncmp(line, "VALUE ", 6) == 0) {
				if (sscanf(line, "VALUE %*s %lu %lu", &flags,
				    &bytes) != 2)
					fatalx("bad reply: %.40s", line);
				if (in->len - off < len + bytes + 2)
					break;		/* the value is not all here */
				off += len + bytes + 2;
				hits++;
				continue;
			}
			off += len;
			if (!gets || strncmp(line, "END", 3) == 0)
				n--;
			else
				fatalx("bad reply: %.40s", line);
		}
		if (n == 0)
			break;
		memmove(in->data, in->data + off, in->len - off);
		in->len -= off;
		off = 0;
		buf_reserve(in, 65536);
		if ((r = read(fd, in->data + in->len, 65536)) <= 0)
			fatal("read");
		in->len += (size_t)r;
	}
	memmove(in->data, in->data + off, in->len - off);
	in->len -= off;
	return hits;
}

/* Store the programs and a tenth of the sessions. */
static void
populate(const struct opts *o)
{
	static char	 val[2048];
	char		 key[KEY_MAX + 1];
	struct buf	 out, in;
	int		 fd = dial(o), i, n = 0, k;

	memset(val, 'v', sizeof val);
	buf_init(&out);
	buf_init(&in);
	for (i = 0; i < o->programs + SESSIONS / 10; i++) {
		k = i < o->programs ? 1 : 0;
		wire_key(k, k == 1 ? (unsigned)i : (unsigned)(i - o->programs) *
		    10, key);
		buf_printf(&out, "set %s 1 0 %zu\r\n", key, sizeof val);
		buf_add(&out, val, sizeof val);
		buf_add(&out, "\r\n", 2);
		if (++n == 500) {
			send_all(fd, (char *)out.data, out.len);
			read_replies(fd, n, false, &in);
			buf_truncate(&out, 0);
			n = 0;
		}
	}
	send_all(fd, (char *)out.data, out.len);
	read_replies(fd, n, false, &in);
	buf_free(&out);
	buf_free(&in);
	close(fd);
}

/* One connection's load. */
static void *
run(void *arg)
{
	struct worker		*w = arg;
	const struct opts	*o = w->o;
	unsigned short		 seed[3] = { 7, 11, (unsigned short)w->id };
	char			 key[KEY_MAX + 1];
	struct buf		 out, in;
	double			 start, end, per, next;
	int			 fd = dial(o), i, kind;
	long			 r;

	buf_init(&out);
	buf_init(&in);
	per = o->rate > 0 ? o->rate / o->conns : 0;
	start = next = now();
	end = start + o->seconds;
	while (now() < end) {
		buf_truncate(&out, 0);
		for (i = 0; i < o->batch; i++) {
			r = nrand48(seed);
			if ((double)(r % 10000) < o->family * 100)
				kind = r & 1 ? 1 : 2;
			else
				kind = 0;
			wire_key(kind, kind == 1 ?
			    (unsigned)(nrand48(seed) % o->programs) :
			    (unsigned)(nrand48(seed) % SESSIONS), key);
			buf_printf(&out, "get %s\r\n", key);
		}
		send_all(fd, (char *)out.data, out.len);
		w->hits += read_replies(fd, o->batch, true, &in);
		w->gets += (uint64_t)o->batch;
		if (per > 0) {
			next += o->batch / per;
			while (now() < next)
				usleep((useconds_t)((next - now()) * 1e6) + 1);
		}
	}
	w->elapsed = now() - start;
	buf_free(&out);
	buf_free(&in);
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct opts	 o = { NULL, NULL, 10, 50000, 4, 1, 1000, 50, false };
	struct worker	*w;
	uint64_t	 gets = 0, hits = 0;
	double		 secs = 0;
	char		*colon;
	int		 ch, i;

	while ((ch = getopt(argc, argv, "s:t:r:c:f:n:b:p")) != -1) {
		switch (ch) {
		case 's':
			if ((colon = strrchr(optarg, ':')) == NULL)
				usage();
			*colon = '\0';
			o.host = optarg;
			o.port = colon + 1;
			break;
		case 't':
			o.seconds = atof(optarg);
			break;
		case 'r':
			o.rate = atof(optarg);
			break;
		case 'c':
			o.conns = atoi(optarg);
			break;
		case 'f':
			o.family = atof(optarg);
			break;
		case 'n':
			o.programs = atoi(optarg);
			break;
		case 'b':
			o.batch = atoi(optarg);
			break;
		case 'p':
			o.populate = true;
			break;
		default:
			usage();
		}
	}
	if (o.host == NULL || o.conns < 1 || o.batch < 1 ||
	    o.batch > MAXBATCH || o.programs < 1)
		usage();
	log_setup(LOG_FORMAT_JSON, LOG_WARNING);
	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	if (o.populate)
		populate(&o);
	w = xcalloc((size_t)o.conns, sizeof *w);
	for (i = 0; i < o.conns; i++) {
		w[i].o = &o;
		w[i].id = i;
		if (pthread_create(&w[i].t, NULL, run, &w[i]) != 0)
			fatalx("pthread_create failed");
	}
	for (i = 0; i < o.conns; i++) {
		pthread_join(w[i].t, NULL);
		gets += w[i].gets;
		hits += w[i].hits;
		if (w[i].elapsed > secs)
			secs = w[i].elapsed;
	}
	printf("{\"gets\": %llu, \"hits\": %llu, \"seconds\": %.3f, "
	    "\"gets_per_s\": %.0f, \"conns\": %d, \"rate\": %.0f}\n",
	    (unsigned long long)gets, (unsigned long long)hits, secs,
	    (double)gets / secs, o.conns, o.rate);
	free(w);
	key_clear(&kf);
	return 0;
}
