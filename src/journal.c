/*
 * journal.c: native journald entries (see journal.h).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"

#define JOURNAL_SOCKET	"/run/systemd/journal/socket"

/* The datagram socket, -1 until journal_open (the loop's alone). */
static int	journal_fd = -1;

/* journald's own fields, which ours must not overwrite (systemd.journal-fields(7)). */
static const char *const journal_own[] = {
	"message", "message_id", "priority", "code_file", "code_line",
	"code_func", "errno", "invocation_id", "user_invocation_id",
	"syslog_facility", "syslog_identifier", "syslog_pid",
	"syslog_timestamp", "syslog_raw", "documentation", "tid", "unit",
	"user_unit", "exit_code", "exit_status", "event", NULL
};

/* systemd.exec(5): $JOURNAL_STREAM is "device:inode" of stderr's socket. */
bool
journal_is_stderr(void)
{
	const char		*e = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			*end;

	if (e == NULL)
		return false;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (*end != ':' || errno != 0)
		return false;
	ino = strtoull(end + 1, &end, 10);
	if (*end != '\0' || errno != 0)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

int
journal_open(void)
{
	int	fd;

	if (journal_fd != -1)
		return 0;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	journal_fd = fd;
	return 0;
}

bool
journal_field_collides(const char *name)
{
	size_t	i;

	for (i = 0; journal_own[i] != NULL; i++)
		if (strcmp(journal_own[i], name) == 0)
			return true;
	return false;
}

/* One journal field; values with a newline use the binary form. */
static void
journal_field(struct buf *dg, const char *name, const void *v, size_t len)
{
	size_t		i;
	uint64_t	le;
	unsigned char	n8[8];

	for (i = 0; name[i] != '\0'; i++)
		buf_addc(dg, (unsigned char)toupper((unsigned char)name[i]));
	if (memchr(v, '\n', len) == NULL) {
		buf_addc(dg, '=');
		buf_add(dg, v, len);
	} else {
		buf_addc(dg, '\n');
		le = len;
		for (i = 0; i < 8; i++)
			n8[i] = (unsigned char)(le >> (8 * i));
		buf_add(dg, n8, 8);
		buf_add(dg, v, len);
	}
	buf_addc(dg, '\n');
}

int
journal_send(int prio, const char *event, const char *message_id,
    const struct buf *message, const struct logfmt_field *fv, size_t nf,
    const struct buf *sb)
{
	struct sockaddr_un	 sa = { .sun_family = AF_UNIX };
	struct buf		 dg;
	char			 p[4], name[40];
	const char		*path = getenv("PCD_JOURNAL_SOCKET");
	size_t			 i;
	ssize_t			 n;

	buf_init(&dg);
	journal_field(&dg, "MESSAGE", message->data, message->len);
	snprintf(p, sizeof p, "%d", prio);
	journal_field(&dg, "PRIORITY", p, strlen(p));
	journal_field(&dg, "EVENT", event, strlen(event));
	journal_field(&dg, "MESSAGE_ID", message_id, strlen(message_id));
	journal_field(&dg, "SYSLOG_IDENTIFIER", "programs-cached",
	    strlen("programs-cached"));
	for (i = 0; i < nf; i++) {
		if (fv[i].kind == LOGFMT_NULL)
			continue;
		/* Our own names never overwrite journald's (unit test). */
		if (journal_field_collides(fv[i].name))
			snprintf(name, sizeof name, "pcd_%.31s", fv[i].name);
		else
			snprintf(name, sizeof name, "%s", fv[i].name);
		journal_field(&dg, name, sb->data + fv[i].off, fv[i].len);
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s",
	    path != NULL ? path : JOURNAL_SOCKET);
	n = sendto(journal_fd, dg.data,
	    dg.len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
	buf_free(&dg);
	return n == -1 ? -1 : 0;
}
