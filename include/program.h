/*
 * program.h: one program as the cache needs it (configuration.md: Keys, values
 * and servers): its value, encoded as the detail arrives and left open before
 * "pathway_ids" (known only once the site's pathways are read), and the facts
 * the index families are made of.  Whole JSON trees are not kept.
 *
 * Records are reference counted: a generation shares the records of the
 * one before for programs whose detail did not change.  A shared record is
 * never changed; program_finish() copies it first.
 *
 * A kept record holds a value that is final whatever the pathways say: a
 * program whose detail failed keeps the value the last publish wrote
 * (design.md: Failures), whether that publish is in memory or only in the
 * snapshot file.
 */
#ifndef PCD_PROGRAM_H
#define PCD_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "util.h"

struct program;

/* What the index families are made of; borrowed from the record. */
struct program_facts {
	const char		*uuid;		/* from the site's list: the key */
	const char		*value_uuid;	/* program["uuid"] */
	const char *const	*runs;		/* course_run_keys_for_program */
	size_t			 nruns;
	const char *const	*courses;	/* course_uuids_for_program */
	size_t			 ncourses;
	const char		*type;		/* normalize_program_type */
	const char		*slug;		/* str(type_attrs.get("slug")) */
	const char *const	*orgs;		/* authoring organization keys */
	size_t			 norgs;
	/* the detail's data_modified_timestamp (Discovery's clock), or NULL
	   when not known: incremental refreshes fetch the detail again */
	const char		*modified;
};

/*
 * A record from a parsed detail (borrowed).  list_uuid is the UUID from the
 * site's list (the key); a detail whose "uuid" is another one is refused.
 * prev, if not NULL, is the record the last generation had: when the new
 * one encodes to the same bytes, prev is returned with one more reference.
 * NULL with the reason in why (exactly where cache_programs would have
 * raised, or the shape rules of design.md: Failures).
 */
struct program	*program_new(const json_t *detail, const char *list_uuid,
		    enum cfg_value_format, int proto, struct program *prev,
		    char *why, size_t whylen);
/*
 * A kept record: the facts (copied) and a final value.  With base set the
 * value is base's (a reference is held); otherwise val is borrowed and
 * must outlive the record (the snapshot file's mapping).
 */
struct program	*program_kept(const struct program_facts *,
		    struct program *base, const unsigned char *val, size_t len);
bool		 program_is_kept(const struct program *);
/*
 * Whether the record's data_modified_timestamp was already found to be
 * ahead of Discovery's clock (incr.c logs that once per record); marks it.
 * Loop only (the workers never read the mark).
 */
bool		 program_note_future(struct program *);
struct program	*program_ref(struct program *);
void		 program_unref(struct program *);
const char	*program_uuid(const struct program *);
void		 program_facts(const struct program *, struct program_facts *);
/* The value as it stands (finished, or kept). */
const unsigned char *program_value(const struct program *, size_t *len);
/*
 * Finish *pp's value with these pathway ids (a JSON list, borrowed).  A
 * shared record is copied first (*pp then changes); a kept one is left as
 * it is.  0, or -1 if the value cannot be encoded.
 */
int		 program_finish(struct program **pp, json_t *ids) PCD_WUR;

/*
 * The response a record was made from, by a 128-bit hash (XXH3): a refresh
 * whose detail body hashes the same reuses the record without parsing it
 * again, which is most of a refresh when little changes.
 */
#define PROGRAM_BODY_HASH	16
void		 program_body_hash(const void *, size_t,
		    unsigned char out[PROGRAM_BODY_HASH]);
void		 program_set_body(struct program *,
		    const unsigned char hash[PROGRAM_BODY_HASH]);
bool		 program_same_body(const struct program *,
		    const unsigned char hash[PROGRAM_BODY_HASH],
		    enum cfg_value_format, int proto);

#endif
