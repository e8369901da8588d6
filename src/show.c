/*
 * show.c: --show KEY, the cache and the snapshot side by side.
 *
 * Gathering (look_*) and printing (print_*) are apart: the same findings
 * become text or one JSON object.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "family.h"
#include "jarena.h"
#include "jsonld.h"
#include "keys.h"
#include "show.h"
#include "snapfile.h"
#include "snapshot.h"
#include "store.h"
#include "tstamp.h"
#include "unpickle.h"
#include "util.h"

/* What one side holds under the key. */
enum side_state {
	SIDE_HIT,		/* the value is there */
	SIDE_MISSING,		/* the server answered: no such key */
	SIDE_DOWN,		/* the server could not be read */
	SIDE_ABSENT,		/* the snapshot has no entry for the key */
	SIDE_NO_SNAPSHOT	/* there is no snapshot to ask */
};

static const char *const side_names[] = {
	"hit", "missing", "unreachable", "absent", "no snapshot"
};

/* One copy of the value: a server's, or the snapshot's. */
struct side {
	const char	*where;		/* server name, or "snapshot" */
	enum side_state	 state;
	unsigned char	*val;		/* owned */
	size_t		 len;
	uint32_t	 flags;
	json_t		*value;		/* decoded, or NULL (why) */
	char		 why[256];
};

/* A server's copy compared with the snapshot's. */
enum verdict {
	SAME_BYTES,
	SAME_VALUE,		/* other bytes (another pickler) */
	DIFFERS,
	NOT_IN_CACHE,		/* the snapshot has it, the server not */
	NOT_IN_SNAPSHOT,	/* the server has it, the snapshot not */
	IN_NEITHER,
	UNREADABLE		/* the server could not be read */
};

static const char *const verdict_names[] = {
	"same bytes", "same value (other bytes)", "differs",
	"missing from the cache", "not in the snapshot", "in neither",
	"server unreachable"
};

/* An index key of the snapshot that lists the program. */
struct listing {
	const struct entry	*e;
	enum side_state		 cache;		/* its copy in the cache */
	bool			 cache_lists;	/* and that copy lists it */
};

struct look {
	const char		*key;
	int			 family;
	char			*wire;		/* NULL: refused */
	size_t			 wirelen;
	size_t			 srv[STORE_MAX_SERVERS];
	size_t			 nsrv;
	struct side		 cache[STORE_MAX_SERVERS];
	enum verdict		 verdict[STORE_MAX_SERVERS];
	struct side		 snap;
	uint64_t		 saved_ms;	/* the snapshot's */
	struct listing		*lists;
	size_t			 nlists;
};

char *
show_key_of(const char *arg)
{
	size_t	pl, n = strlen(arg);

	if (n == 0)
		return NULL;
	if (family_of_key(arg, n, &pl) >= 0)
		return pl < n ? xstrdup(arg) : NULL;
	/* A course run key alone: the programs that contain it. */
	return family_key(FAM_COURSE, arg);
}

/* --- gathering --------------------------------------------------------- */

/* Decode a side's bytes as the flags say they were written. */
static void
decode(struct side *sd)
{
	sd->value = unpickle_value(sd->val, sd->len, sd->flags, sd->why,
	    sizeof sd->why);
}

/* store_mget's callback: keep a copy of the one value asked for. */
static void
on_value(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	struct side	*sd = arg;

	(void)j;
	free(sd->val);
	sd->val = xmalloc(len + 1);
	memcpy(sd->val, val, len);
	sd->len = len;
	sd->flags = flags;
	sd->state = SIDE_HIT;
}

/* Ask server i for one wire key. */
static void
read_side(struct store *st, size_t i, const char *wire, size_t wirelen,
    struct side *sd)
{
	const char	*keys[1] = { wire };
	size_t		 lens[1] = { wirelen };

	sd->where = store_server_name(st, i);
	sd->state = SIDE_MISSING;
	if (store_mget(st, i, keys, lens, 1, on_value, sd) == -1)
		sd->state = SIDE_DOWN;
	else if (sd->state == SIDE_HIT)
		decode(sd);
}

static void
side_free(struct side *sd)
{
	free(sd->val);
	json_decref(sd->value);
}

/* The snapshot's entry for key, or NULL. */
static const struct entry *
find_entry(const struct snapshot *snap, const char *key)
{
	const struct entry	*v = snapshot_entries(snap);
	size_t			 i;

	for (i = 0; i < snapshot_count(snap); i++)
		if (strcmp(v[i].key, key) == 0)
			return &v[i];
	return NULL;
}

/* A server's copy against the snapshot's. */
static enum verdict
judge(const struct side *c, const struct side *s)
{
	bool	in_snap = s->state == SIDE_HIT;

	if (c->state == SIDE_DOWN)
		return UNREADABLE;
	if (c->state != SIDE_HIT)
		return in_snap ? NOT_IN_CACHE : IN_NEITHER;
	if (!in_snap)
		return NOT_IN_SNAPSHOT;
	if (c->len == s->len && c->flags == s->flags &&
	    memcmp(c->val, s->val, c->len) == 0)
		return SAME_BYTES;
	if (c->value != NULL && s->value != NULL &&
	    json_equal(c->value, s->value))
		return SAME_VALUE;
	return DIFFERS;
}

/* Whether an index value (a list of UUIDs, or a pathway) names uuid. */
static bool
names(int family, const json_t *v, const char *uuid)
{
	const json_t	*x;
	size_t		 i;

	if (family == FAM_PATHWAY)
		v = json_object_get(v, "program_uuids");
	json_array_foreach(v, i, x)
		if (json_is_string(x) && strcmp(json_string_value(x), uuid) == 0)
			return true;
	return false;
}

/* Whether entries of a family name programs (indexes and pathways). */
static bool
lists_programs(int family)
{
	return family != FAM_PROGRAM && family != FAM_SITE_PATHWAYS;
}

/* The snapshot's index keys that list program uuid, and their cache copies. */
static void
look_listings(struct look *lk, struct store *st, const struct snapshot *snap,
    const char *uuid)
{
	const struct entry	*v = snapshot_entries(snap);
	struct side		 sd;
	size_t			 i, idx[STORE_MAX_SERVERS];
	char			 why[256];
	json_t			*x;
	struct listing		*l;

	for (i = 0; i < snapshot_count(snap); i++) {
		if (!lists_programs(v[i].family) || (x = unpickle_value(
		    v[i].val, v[i].len, v[i].flags, why, sizeof why)) == NULL)
			continue;
		if (names(v[i].family, x, uuid)) {
			lk->lists = xreallocarray(lk->lists, lk->nlists + 1,
			    sizeof *lk->lists);
			l = &lk->lists[lk->nlists++];
			memset(l, 0, sizeof *l);
			l->e = &v[i];
			memset(&sd, 0, sizeof sd);
			l->cache = SIDE_DOWN;
			if (v[i].wire != NULL && store_place(st, v[i].wire,
			    v[i].wirelen, idx) > 0) {
				read_side(st, idx[0], v[i].wire, v[i].wirelen,
				    &sd);
				l->cache = sd.state;
				l->cache_lists = sd.value != NULL &&
				    names(v[i].family, sd.value, uuid);
			}
			side_free(&sd);
		}
		json_decref(x);
	}
}

/* Everything about key: placement, each server's copy, the snapshot's. */
static void
look(struct look *lk, const struct cfg *cfg, struct store *st,
    const struct snapshot *snap)
{
	struct keyfn		 kf;
	struct buf		 wb;
	const struct entry	*e = NULL;
	int			 n;
	size_t			 i;

	lk->family = family_of_key(lk->key, strlen(lk->key), NULL);
	key_init(&kf, cfg->key_function, cfg->long_key_hash, cfg->key_prefix,
	    cfg->key_version);
	/* Any length: a Redis key with the django key function can be long. */
	buf_init(&wb);
	n = key_make(&kf, lk->key, strlen(lk->key), &wb);
	key_clear(&kf);
	if (n == 0)
		lk->wire = (char *)buf_steal(&wb, &lk->wirelen);
	buf_free(&wb);
	lk->snap.where = "snapshot";
	lk->snap.state = snap == NULL ? SIDE_NO_SNAPSHOT : SIDE_ABSENT;
	if (snap != NULL && (e = find_entry(snap, lk->key)) != NULL) {
		lk->snap.state = SIDE_HIT;
		lk->snap.val = xmalloc(e->len + 1);
		memcpy(lk->snap.val, e->val, e->len);
		lk->snap.len = e->len;
		lk->snap.flags = e->flags;
		decode(&lk->snap);
	}
	if (snap != NULL)
		lk->saved_ms = snapshot_created(snap);
	if (lk->wire == NULL)
		return;		/* the key function refuses it: no wire key */
	lk->nsrv = store_place(st, lk->wire, lk->wirelen, lk->srv);
	for (i = 0; i < lk->nsrv; i++) {
		read_side(st, lk->srv[i], lk->wire, lk->wirelen, &lk->cache[i]);
		lk->verdict[i] = judge(&lk->cache[i], &lk->snap);
	}
	if (lk->family == FAM_PROGRAM && snap != NULL)
		look_listings(lk, st, snap, lk->key +
		    strlen(family_prefix(FAM_PROGRAM)));
}

/* Whether every server's copy agrees with the snapshot. */
static bool
agreed(const struct look *lk)
{
	size_t	i;

	if (lk->nsrv == 0)
		return false;
	for (i = 0; i < lk->nsrv; i++)
		if (lk->verdict[i] != SAME_BYTES &&
		    lk->verdict[i] != SAME_VALUE && lk->verdict[i] != IN_NEITHER)
			return false;
	return true;
}

static void
look_free(struct look *lk)
{
	size_t	i;

	for (i = 0; i < lk->nsrv; i++)
		side_free(&lk->cache[i]);
	side_free(&lk->snap);
	free(lk->lists);
	free(lk->wire);
}

/* --- printing ---------------------------------------------------------- */

/* A value as indented JSON (compact if it holds numbers jansson cannot). */
static char *
pretty(const json_t *v)
{
	char	*s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY), *p;

	if (s == NULL)
		return jsonld_dumps(v);
	p = xstrdup(s);
	jarena_free(s);
	return p;
}

/* One side, for people: its state, size, flags, and the value. */
static void
print_side(FILE *out, const char *label, const struct side *sd)
{
	char	*text;

	if (sd->state != SIDE_HIT) {
		fprintf(out, "%-9s %s: %s\n", label, sd->where,
		    side_names[sd->state]);
		return;
	}
	fprintf(out, "%-9s %s: %zu bytes, flags %u (%s)\n", label, sd->where,
	    sd->len, (unsigned)sd->flags, sd->flags == 1 ? "pickle" : "JSON");
	if (sd->value == NULL) {
		fprintf(out, "          cannot be read: %s\n", sd->why);
		return;
	}
	text = pretty(sd->value);
	fprintf(out, "%s\n", text != NULL ? text : "(cannot be printed)");
	free(text);
}

/* When the snapshot was saved, as ISO 8601. */
static void
saved_at(const struct look *lk, char *out, size_t len)
{
	tstamp_format((int64_t)lk->saved_ms * 1000, out, len);
}

static void
print_text(const struct look *lk, FILE *out)
{
	char	 when[64];
	size_t	 i;

	fprintf(out, "key       %s\n", lk->key);
	fprintf(out, "family    %s\n", lk->family >= 0 ?
	    family_name((enum family)lk->family) : "none");
	fprintf(out, "wire      %s\n", lk->wire != NULL ? lk->wire :
	    "(the key function refuses this key)");
	for (i = 0; i < lk->nsrv; i++)
		print_side(out, "cache", &lk->cache[i]);
	print_side(out, "snapshot", &lk->snap);
	if (lk->snap.state != SIDE_NO_SNAPSHOT) {
		saved_at(lk, when, sizeof when);
		fprintf(out, "          (saved %s)\n", when);
	}
	for (i = 0; i < lk->nsrv; i++)
		fprintf(out, "agree     %s: %s\n", lk->cache[i].where,
		    verdict_names[lk->verdict[i]]);
	if (lk->family != FAM_PROGRAM)
		return;
	fprintf(out, "listed by %zu index key%s of the snapshot%s\n",
	    lk->nlists, lk->nlists == 1 ? "" : "s", lk->nlists > 0 ? ":" : "");
	for (i = 0; i < lk->nlists; i++)
		fprintf(out, "          %-24s %s (in the cache: %s)\n",
		    family_name((enum family)lk->lists[i].e->family),
		    lk->lists[i].e->key, lk->lists[i].cache != SIDE_HIT ?
		    side_names[lk->lists[i].cache] : lk->lists[i].cache_lists ?
		    "listed" : "not listed");
}

/* One side as a JSON object. */
static json_t *
side_json(const struct side *sd)
{
	json_t	*o = json_pack("{s:s, s:s}", "where", sd->where, "state",
	    side_names[sd->state]);

	if (sd->state != SIDE_HIT)
		return o;
	json_object_set_new(o, "bytes", json_integer((json_int_t)sd->len));
	json_object_set_new(o, "flags", json_integer(sd->flags));
	if (sd->value != NULL)
		json_object_set(o, "value", sd->value);
	else
		json_object_set_new(o, "error", json_string(sd->why));
	return o;
}

static void
print_json(const struct look *lk, bool agree, FILE *out)
{
	json_t	*o, *a, *x;
	char	*text, when[64];
	size_t	 i;

	o = json_pack("{s:s, s:o, s:o}", "key", lk->key, "family",
	    lk->family >= 0 ? json_string(family_name(
	    (enum family)lk->family)) : json_null(), "wire", lk->wire != NULL ?
	    json_string(lk->wire) : json_null());
	a = json_array();
	for (i = 0; i < lk->nsrv; i++) {
		x = side_json(&lk->cache[i]);
		json_object_set_new(x, "agreement",
		    json_string(verdict_names[lk->verdict[i]]));
		json_array_append_new(a, x);
	}
	json_object_set_new(o, "cache", a);
	x = side_json(&lk->snap);
	if (lk->snap.state != SIDE_NO_SNAPSHOT) {
		saved_at(lk, when, sizeof when);
		json_object_set_new(x, "saved", json_string(when));
	}
	json_object_set_new(o, "snapshot", x);
	json_object_set_new(o, "agree", json_boolean(agree));
	if (lk->family == FAM_PROGRAM) {
		a = json_array();
		for (i = 0; i < lk->nlists; i++)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, "
			    "s:b}", "key", lk->lists[i].e->key, "family",
			    family_name((enum family)lk->lists[i].e->family),
			    "cache", side_names[lk->lists[i].cache],
			    "cache_lists", lk->lists[i].cache_lists));
		json_object_set_new(o, "listed_by", a);
	}
	text = jsonld_dumps(o);
	fprintf(out, "%s\n", text != NULL ? text : "null");
	free(text);
	json_decref(o);
}

int
show_key(const struct cfg *cfg, const char *key, bool json, FILE *out)
{
	struct look	 lk;
	struct snapshot	*snap;
	struct store	*st;
	struct keyfn	 kf;
	char		*path, *set;
	bool		 agree;

	memset(&lk, 0, sizeof lk);
	lk.key = key;
	st = store_new(cfg);
	key_init(&kf, cfg->key_function, cfg->long_key_hash, cfg->key_prefix,
	    cfg->key_version);
	path = snapshot_path(cfg->state_dir);
	set = snapshot_settings(cfg);
	/* NULL: none, or not trusted.  Read only: no snapfile, no lock. */
	snap = snapshot_load(path, set, &kf, st, NULL);
	key_clear(&kf);
	free(set);
	free(path);
	look(&lk, cfg, st, snap);
	agree = agreed(&lk);
	if (json)
		print_json(&lk, agree, out);
	else
		print_text(&lk, out);
	look_free(&lk);
	store_free(st);
	snapshot_free(snap);
	return agree ? 0 : 1;
}
