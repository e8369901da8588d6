/*
 * notify.c: the service manager's notify protocol and watchdog.
 *
 * Why not libsystemd: the protocol is one datagram per message, and
 * systemd documents it as stable and publishes a self-contained reference
 * implementation for exactly this use (man/notify-selfcontained-example.c,
 * MIT-0).  Copying its ~30 lines keeps the daemon free of a link-time
 * dependency on libsystemd, which matters in containers and on systems
 * without systemd, and sd_watchdog_enabled() is ten more lines.
 * notify_send() below is that example, adapted to our error idiom, in its
 * fixed form: connect() gets offsetof(sun_path) + strlen(path), not
 * sizeof(struct sockaddr_un), or an abstract ("@") name would take in the
 * trailing NULs and reach the wrong socket (unix(7)).
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "notify.h"

struct notify_watchdog {
	struct event	*ev;
};

static bool	ready_sent;
static bool	failure_logged;

/* Log the first failure only: the watchdog would repeat it forever. */
static int
notify_fail(const char *socket_path, const char *why, int err)
{
	if (!failure_logged)
		log_event(LOG_WARNING, "notify_failed", "socket=%s error=%s%s%s",
		    socket_path, why, err != 0 ? ": " : "",
		    err != 0 ? strerror(err) : "");
	failure_logged = true;
	return -1;
}

bool
notify_enabled(void)
{
	const char	*p = getenv("NOTIFY_SOCKET");

	return p != NULL && *p != '\0';
}

/* SPDX-License-Identifier: MIT-0 (from systemd's reference, adapted). */
int
notify_send(const char *state)
{
	union {
		struct sockaddr		sa;
		struct sockaddr_un	sun;
	}		 addr = { .sun.sun_family = AF_UNIX };
	const char	*path = getenv("NOTIFY_SOCKET");
	size_t		 path_len, len = strlen(state);
	ssize_t		 n;
	int		 fd, saved;

	if (path == NULL || *path == '\0')
		return 0;
	if (path[0] != '/' && path[0] != '@')
		return notify_fail(path, "not an absolute path or @name", 0);
	path_len = strlen(path);
	if (path_len >= sizeof addr.sun.sun_path)
		return notify_fail(path, "path too long", 0);
	memcpy(addr.sun.sun_path, path, path_len);
	if (addr.sun.sun_path[0] == '@')
		addr.sun.sun_path[0] = '\0';

	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return notify_fail(path, "socket", errno);
	if (connect(fd, &addr.sa, (socklen_t)(offsetof(struct sockaddr_un,
	    sun_path) + path_len)) == -1) {
		saved = errno;
		close(fd);
		return notify_fail(path, "connect", saved);
	}
	n = send(fd, state, len, MSG_NOSIGNAL);
	saved = errno;
	close(fd);
	if (n != (ssize_t)len)
		return notify_fail(path, "send", n == -1 ? saved : EPROTO);
	return 1;
}

void
notify_ready(void)
{
	if (ready_sent)
		return;
	ready_sent = true;
	notify_send("READY=1");
}

/* RELOADING=1 with the time it began, as Type=notify-reload (v253) wants. */
void
notify_reloading(void)
{
	struct timespec	ts;
	char		msg[64];

	if (!ready_sent)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	notify_send(msg);
}

void
notify_reloaded(void)
{
	if (ready_sent)
		notify_send("READY=1");
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void
notify_status(const char *fmt, ...)
{
	va_list	 ap;
	char	*line, *msg, *p;

	if (!notify_enabled())
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	/* STATUS= is a single line. */
	for (p = line; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	msg = xasprintf("STATUS=%s", line);
	notify_send(msg);
	free(msg);
	free(line);
}

/* A decimal without sign, spaces or trailing junk. */
static int
parse_u64(const char *s, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
notify_watchdog_usec(uint64_t *usec)
{
	const char	*u = getenv("WATCHDOG_USEC");
	const char	*p = getenv("WATCHDOG_PID");
	uint64_t	 v, pid;

	if (u == NULL)
		return 0;
	if (parse_u64(u, &v) == -1 || v == 0) {
		log_event(LOG_WARNING, "notify_failed", "error=%s value=%s",
		    "WATCHDOG_USEC is not a positive number: no watchdog", u);
		return -1;
	}
	if (p != NULL) {
		if (parse_u64(p, &pid) == -1 || pid == 0) {
			log_event(LOG_WARNING, "notify_failed", "error=%s "
			    "value=%s", "WATCHDOG_PID is not a pid: no "
			    "watchdog", p);
			return -1;
		}
		if (pid != (uint64_t)getpid())
			return 0;	/* meant for another process */
	}
	*usec = v;
	return 1;
}

/* The loop is alive: say so. */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

struct notify_watchdog *
notify_watchdog_start(struct event_base *base)
{
	struct notify_watchdog	*w;
	struct timeval		 tv;
	uint64_t		 usec, half;

	if (notify_watchdog_usec(&usec) != 1)
		return NULL;
	half = usec / 2;
	tv.tv_sec = (time_t)(half / 1000000);
	tv.tv_usec = (suseconds_t)(half % 1000000);
	w = xcalloc(1, sizeof *w);
	w->ev = event_new(base, -1, EV_PERSIST, on_watchdog, w);
	if (w->ev == NULL)
		fatalx("event_new failed");
	event_add(w->ev, &tv);
	log_event(LOG_INFO, "watchdog_enabled", "interval_ms=%llu "
	    "ping_ms=%llu", (unsigned long long)(usec / 1000),
	    (unsigned long long)(half / 1000));
	notify_send("WATCHDOG=1");
	return w;
}

void
notify_watchdog_stop(struct notify_watchdog *w)
{
	if (w == NULL)
		return;
	event_free(w->ev);
	free(w);
}
