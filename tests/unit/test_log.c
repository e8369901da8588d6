/*
 * test_log.c: events come out as one well-formed line each, with typed
 * fields, in every format; a debug build stops at an event the table
 * lacks.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "capture.h"
#include "t.h"

/* Not a constant, so that the compiler lets a NULL %s through. */
static const char *volatile nothing;


/* The text after the timestamp, which changes from run to run. */
static const char *
after_ts(const char *line, const char *marker)
{
	const char *p = strstr(line, marker);

	return p != NULL ? p : "(marker not found)";
}

static void
test_json(void)
{
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(log_event(LOG_ERR, "refresh_failed",
	    "site=%s stage=uuids url=%s http_status=%ld error=%s attempt=%d",
	    "lms.example.com", "http://d/api/v1/programs/?a=1&b=2", 503L,
	    "HTTP 503 \"busy\"\n", 3));
	T_STREQ(after_ts(captured, "\"level\""),
	    "\"level\":\"error\",\"event\":\"refresh_failed\","
	    "\"site\":\"lms.example.com\",\"stage\":\"uuids\","
	    "\"url\":\"http://d/api/v1/programs/?a=1&b=2\","
	    "\"http_status\":503,\"error\":\"HTTP 503 \\\"busy\\\"\\n\","
	    "\"attempt\":3}\n");
	T_CHECK(strncmp(captured, "{\"ts\":\"", 7) == 0);

	/* NULL strings are null; sizes and doubles are numbers. */
	CAPTURE(log_event(LOG_INFO, "cache_verified", "reason=%s keys=%zu "
	    "missing=%.1f servers_skipped=%llu duration_ms=%u", nothing,
	    (size_t)42, 2.5, 18446744073709551615ULL, 7u));
	T_STREQ(after_ts(captured, "\"reason\""),
	    "\"reason\":null,\"keys\":42,\"missing\":2.5,"
	    "\"servers_skipped\":18446744073709551615,\"duration_ms\":7}\n");

	/* Literal text around a conversion makes a string. */
	CAPTURE(log_event(LOG_NOTICE, "signal", "signal=SIG%s "
	    "refreshing=%d%%", "HUP", 5));
	T_STREQ(after_ts(captured, "\"signal\":"),
	    "\"signal\":\"SIGHUP\",\"refreshing\":\"5%\"}\n");

	/* Below the level: nothing at all. */
	CAPTURE(log_event(LOG_DEBUG, "debug", "msg=%s", "hidden"));
	T_STREQ(captured, "");
}

static void
test_text(void)
{
	log_setup(LOG_FORMAT_TEXT, LOG_DEBUG);
	CAPTURE(log_event(LOG_WARNING, "program_rejected",
	    "uuid=%s index=%d reason=%s", "abc", 1, "missing uuid"));
	T_STREQ(after_ts(captured, " warning"),
	    " warning program_rejected uuid=abc index=1 "
	    "reason=\"missing uuid\"\n");
	CAPTURE(log_debug("hello %d", 7));
	T_STREQ(after_ts(captured, " debug"), " debug debug msg=\"hello 7\"\n");
}

static void
test_journal(void)
{
	struct sockaddr_un	 sa = { .sun_family = AF_UNIX };
	char			 path[64], dg[4096];
	ssize_t			 n;
	int			 fd;

	snprintf(path, sizeof path, "/tmp/pcd-test-journal.%d", (int)getpid());
	unlink(path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	T_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	setenv("PCD_JOURNAL_SOCKET", path, 1);
	log_setup(LOG_FORMAT_JOURNAL, LOG_INFO);
	log_event(LOG_ERR, "refresh_failed", "site=%s http_status=%d error=%s",
	    "lms.example.com", 500, "two\nlines");
	n = recv(fd, dg, sizeof dg - 1, MSG_DONTWAIT);
	T_CHECK(n > 0);
	dg[n > 0 ? n : 0] = '\0';
	T_CHECK(memmem(dg, (size_t)n, "\nPRIORITY=3\n", 12) != NULL);
	T_CHECK(memmem(dg, (size_t)n, "\nEVENT=refresh_failed\n", 22) !=
	    NULL);
	T_CHECK(memmem(dg, (size_t)n, "\nSITE=lms.example.com\n", 22) != NULL);
	T_CHECK(memmem(dg, (size_t)n, "\nHTTP_STATUS=500\n", 17) != NULL);
	/* A value with a newline uses the binary form: NAME\n<u64 len>. */
	T_CHECK(memmem(dg, (size_t)n, "\nERROR\n\x09\0\0\0\0\0\0\0two\nlines\n",
	    24) != NULL);
	T_CHECK(strncmp(dg, "MESSAGE", 7) == 0);
	/* The table's id, the one journal queries already use. */
	T_CHECK(memmem(dg, (size_t)n,
	    "\nMESSAGE_ID=9a0cd848f6f3af2b7112858e6585c181\n", 45) != NULL);
	close(fd);
	unlink(path);
	unsetenv("PCD_JOURNAL_SOCKET");
}

/* Log one event in a child (on our stderr); its wait status, or -1. */
static int
in_child(const char *event, const char *fields)
{
	pid_t	pid;
	int	status = 0;

	fflush(stderr);
	if ((pid = fork()) == 0) {
		log_setup(LOG_FORMAT_JSON, LOG_INFO);
		log_event(LOG_ERR, event, fields, 1);
		_exit(0);
	}
	if (pid == -1 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/*
 * What the table lacks: a debug build aborts saying so (debug_says), any
 * other logs the line as it is (logged).
 */
static void
expect_refused(int st, const char *debug_says, const char *logged)
{
#ifdef PCD_DEBUG
	T_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	T_CHECK(strstr(captured, debug_says) != NULL);
	(void)logged;
#else
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_CHECK(strstr(captured, logged) != NULL);
	(void)debug_says;
#endif
}

/* An event or a field the table does not have; one it has. */
static void
test_unknown(void)
{
	int	st;

	CAPTURE(st = in_child("no_such_event", "error=%d"));
	expect_refused(st, "event \"no_such_event\" is not in the table",
	    "\"event\":\"no_such_event\",\"error\":1}");
	CAPTURE(st = in_child("refresh_failed", "no_such_field=%d"));
	expect_refused(st, "event refresh_failed has no field no_such_field",
	    "\"no_such_field\":1}");
	CAPTURE(st = in_child("refresh_failed", "attempt=%d"));
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_CHECK(strstr(captured, "\"attempt\":1}") != NULL);
}

static void
test_parse(void)
{
	T_INTEQ(log_format_parse("json"), LOG_FORMAT_JSON);
	T_INTEQ(log_format_parse("journal"), LOG_FORMAT_JOURNAL);
	T_INTEQ(log_format_parse("xml"), -1);
	T_INTEQ(log_level_parse("warning"), LOG_WARNING);
	T_INTEQ(log_level_parse("loud"), -1);
}

int
main(void)
{
	test_json();
	test_text();
	test_journal();
	test_unknown();
	test_parse();
	return t_done();
}
