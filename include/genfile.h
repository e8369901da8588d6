/*
 * genfile.h: a generation as the snapshot file keeps it, in named texts
 * (snapshot.h) of JSON (design.md: What a refresh does, Failures):
 *
 *	"sites"			{"version": 2, "sites": [domain, ...]}
 *	"site\nDOMAIN"		the site: its status, UUID list, the UUIDs of
 *				its programs in order, its pathways
 *	"program\nDOMAIN\nUUID"	one program's facts (not its value: that is
 *				the snapshot's program-UUID entry)
 *
 * One text a program, so that a save after one program changed writes
 * that program's text again, not every site's (snapfile.h keeps only
 * what changed).
 *
 * A run that starts from the file (--once, --domain, the daemon after a
 * restart) gets back the generation that was published, program records
 * and all, so that a program whose detail fails keeps its value and its
 * place in the indexes exactly as the daemon that published it would
 * keep them.  The texts are checked as they are read: what does not hold
 * is left out, never trusted (the file's checksums are snapfile.c's).
 */
#ifndef PCD_GENFILE_H
#define PCD_GENFILE_H

#include "catalog.h"
#include "snapshot.h"

#define GENFILE_VERSION	2
#define GENFILE_SITES	"sites"
#define GENFILE_SITE	"site"
#define GENFILE_PROGRAM	"program"

/* Add gen's texts to snap. */
void		 genfile_put(struct snapshot *snap, const struct catalog *gen);
/*
 * The generation snap was published from: kept records whose values
 * point into snap's entries (snap must outlive it).  NULL (logged,
 * snapshot_ignored) if the texts cannot be read at all.
 */
struct catalog	*genfile_read(const struct snapshot *snap, const char *path);

#endif
