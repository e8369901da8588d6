/*
 * genfile.h: a generation as the snapshot file keeps it: each site's UUID
 * list, its programs' facts (not their values: those are the snapshot's
 * entries) and its pathways, as JSON text (SPEC §4, §7).
 *
 * A run that starts from the file (--once, --domain, the daemon after a
 * restart) gets back the generation that was published, program records
 * and all, so that a program whose detail fails keeps its value and its
 * place in the indexes exactly as the daemon that published it would
 * keep them.  The text is checked as it is read: what does not hold is
 * left out, never trusted (the file's checksum is snapshot.c's).
 */
#ifndef PCD_GENFILE_H
#define PCD_GENFILE_H

#include "catalog.h"
#include "snapshot.h"

/* The text of gen (caller frees). */
char		*genfile_text(const struct catalog *gen);
/*
 * The generation snap was published from: kept records whose values
 * point into snap's entries (snap must outlive it).  NULL (logged,
 * snapshot_ignored) if the text cannot be read at all.
 */
struct catalog	*genfile_read(const struct snapshot *snap, const char *path);

#endif
