/*
 * journal.h: native journald entries, sent as datagrams to the journal's
 * socket (systemd's native protocol: NAME=value lines, the binary form for
 * values with a newline).  log.c decides when and renders MESSAGE.
 *
 * The socket is opened once (journal_open) and then only read: safe from
 * any thread.  $PCD_JOURNAL_SOCKET, when set, names another socket (the
 * tests stand in for journald with their own).
 */
#ifndef PCD_JOURNAL_H
#define PCD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "logfmt.h"
#include "util.h"

/* Whether stderr is the journal's stream socket ($JOURNAL_STREAM). */
bool	journal_is_stderr(void);
/* Open the datagram socket if it is not open: 0, or -1 (no socket). */
int	journal_open(void);
/*
 * Send one entry: MESSAGE (message, the event as text), PRIORITY, EVENT,
 * MESSAGE_ID (32 hex digits), SYSLOG_IDENTIFIER and each field of fv
 * whose value is not null, upper-cased, as PCD_NAME where NAME is one of
 * journald's own.  0, or -1 if it was not sent (no journal, too big): the
 * caller puts it on stderr instead.
 */
int	journal_send(int prio, const char *event, const char *message_id,
	    const struct buf *message, const struct logfmt_field *fv,
	    size_t nf, const struct buf *sb);
/* Whether a field name is one of journald's own (sent as pcd_NAME). */
bool	journal_field_collides(const char *name);

#endif
