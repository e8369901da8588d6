/*
 * snapshot.c: what the cache holds, in memory (the file is snapfile.c).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "util.h"

#define CHUNK_LEN	(256 * 1024)

struct snapshot {
	uint64_t		  serial;
	struct entry		 *entries;
	size_t			  n;
	size_t			  cap;
	size_t			  bytes;
	uint64_t		  created;
	char			**chunks;	/* copies; never moved */
	size_t			  nchunks;
	size_t			  used;		/* in the last chunk */
	struct snapshot_text	 *texts;
	size_t			  ntexts;
	size_t			  captexts;
	void			**kept;		/* freed with the snapshot */
	size_t			  nkept;
};

struct snapshot *
snapshot_new(void)
{
	static _Atomic uint64_t	 serial;
	struct snapshot		*s;

	s = xcalloc(1, sizeof *s);
	s->serial = atomic_fetch_add(&serial, 1) + 1;
	s->created = wall_ms();
	return s;
}

/* Room for len bytes that stay where they are. */
static char *
arena_alloc(struct snapshot *s, size_t len)
{
	char	*p;

	if (s->nchunks == 0 || s->used + len > CHUNK_LEN) {
		s->chunks = xreallocarray(s->chunks, s->nchunks + 1,
		    sizeof *s->chunks);
		s->chunks[s->nchunks++] = xmalloc(len > CHUNK_LEN ? len :
		    CHUNK_LEN);
		s->used = 0;
	}
	p = s->chunks[s->nchunks - 1] + s->used;
	s->used += len;
	return p;
}

/* Append an entry whose strings are already where they will stay. */
static void
push(struct snapshot *s, const struct entry *e)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 256 : s->cap * 2;
		s->entries = xreallocarray(s->entries, s->cap,
		    sizeof *s->entries);
	}
	s->entries[s->n++] = *e;
	s->bytes += e->len;
}

void
snapshot_add(struct snapshot *s, const struct entry *e)
{
	struct entry	 c = *e;
	char		*w;

	if (e->wire != NULL) {
		w = arena_alloc(s, (size_t)e->wirelen + 1);
		memcpy(w, e->wire, e->wirelen);
		w[e->wirelen] = '\0';
		c.wire = w;
	}
	push(s, &c);
}

void
snapshot_free(struct snapshot *s)
{
	size_t	i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	for (i = 0; i < s->nkept; i++)
		free(s->kept[i]);
	free(s->kept);
	free(s->entries);
	free(s->texts);
	free(s);
}

/* A copy of len bytes and a NUL, in the snapshot's own memory. */
static char *
copy(struct snapshot *s, const void *p, size_t len)
{
	char	*c = arena_alloc(s, len + 1);

	if (len > 0)
		memcpy(c, p, len);
	c[len] = '\0';
	return c;
}

void
snapshot_add_copy(struct snapshot *s, const struct entry *e)
{
	struct entry	c = *e;

	c.key = copy(s, e->key, strlen(e->key));
	c.val = (const unsigned char *)copy(s, e->val, e->len);
	snapshot_add(s, &c);
}

void
snapshot_add_text_ref(struct snapshot *s, const struct snapshot_text *t)
{
	if (s->ntexts == s->captexts) {
		s->captexts = s->captexts == 0 ? 16 : s->captexts * 2;
		s->texts = xreallocarray(s->texts, s->captexts,
		    sizeof *s->texts);
	}
	s->texts[s->ntexts++] = *t;
}

void
snapshot_add_text(struct snapshot *s, const char *name, const char *text,
    size_t len)
{
	struct snapshot_text	t;

	t.name = copy(s, name, strlen(name));
	t.text = copy(s, text, len);
	t.len = len;
	snapshot_add_text_ref(s, &t);
}

void
snapshot_copy_texts(struct snapshot *s, const struct snapshot *src)
{
	size_t	i;

	for (i = 0; src != NULL && i < src->ntexts; i++)
		snapshot_add_text(s, src->texts[i].name, src->texts[i].text,
		    src->texts[i].len);
}

void
snapshot_keep(struct snapshot *s, void *p)
{
	s->kept = xreallocarray(s->kept, s->nkept + 1, sizeof *s->kept);
	s->kept[s->nkept++] = p;
}

void
snapshot_set_created(struct snapshot *s, uint64_t ms)
{
	s->created = ms;
}

size_t
snapshot_ntexts(const struct snapshot *s)
{
	return s->ntexts;
}

const struct snapshot_text *
snapshot_texts(const struct snapshot *s)
{
	return s->texts;
}

uint64_t
snapshot_serial(const struct snapshot *s)
{
	return s != NULL ? s->serial : 0;
}

size_t
snapshot_count(const struct snapshot *s)
{
	return s->n;
}

size_t
snapshot_bytes(const struct snapshot *s)
{
	return s->bytes;
}

const struct entry *
snapshot_entries(const struct snapshot *s)
{
	return s->entries;
}

uint64_t
snapshot_created(const struct snapshot *s)
{
	return s->created;
}

/* The settings' names for enums, as the configuration spells them. */
static const char *
keyfn_name(enum key_function f)
{
	return f == KEYFN_DJANGO ? "django" : f == KEYFN_DJANGO_ANY ?
	    "django-redis" : "edx";
}

static const char *
keyhash_name(enum key_hash h)
{
	return h == KEYHASH_BLAKE2B ? "blake2b" : "md4";
}

static const char *
dist_name(enum cfg_distribution d)
{
	switch (d) {
	case DIST_KETAMA:
		return "ketama";
	case DIST_ALL:
		return "all";
	case DIST_RENDEZVOUS:
	default:
		return "rendezvous";
	}
}

char *
snapshot_settings(const struct cfg *cfg)
{
	struct buf	b;
	size_t		i;

	buf_init(&b);
	buf_printf(&b, "key_function=%s\n", keyfn_name(cfg->key_function));
	buf_printf(&b, "key_prefix=%s\n", cfg->key_prefix);
	buf_printf(&b, "key_version=%s\n", cfg->key_version);
	buf_printf(&b, "long_key_hash=%s\n", keyhash_name(cfg->long_key_hash));
	buf_printf(&b, "value_format=%s\n",
	    cfg->value_format == VALUE_JSON ? "json" : "pickle");
	buf_printf(&b, "pickle_protocol=%d\n", cfg->pickle_protocol);
	buf_printf(&b, "pathway_ids=%s\n",
	    cfg->pathway_ids == PATHWAY_IDS_IDS ? "ids" : "keys");
	buf_printf(&b, "distribution=%s\n", dist_name(cfg->distribution));
	buf_adds(&b, "servers=");
	for (i = 0; i < cfg->nservers; i++)
		buf_printf(&b, "%s%s", i > 0 ? "," : "",
		    cfg->servers[i].name);
	buf_adds(&b, "\n");
	return (char *)buf_steal(&b, NULL);
}

char *
snapshot_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, SNAPSHOT_FILE);
}

