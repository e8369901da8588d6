/*
 * writer.c: pipelined, phased writes with an outcome per entry, in
 * batches each fenced by the gate.
 */
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "log.h"
#include "writer.h"
#include "util.h"

/*
 * A batch: entries queued on one server between two flushes, and so what
 * a process paused just after a look at the gate may still send.
 */
#define GATE_EVERY	256
#define GATE_BYTES	(16 * 1024 * 1024)

/* Entries queued on one server since its last round trip. */
struct sent {
	size_t	*v;
	size_t	 n;
	size_t	 cap;
	size_t	 bytes;
};

/* A batch being queued: every server's, the entries, the notes before it. */
struct batch {
	struct sent		 sent[STORE_MAX_SERVERS];
	size_t			*v;		/* entries of the batch */
	size_t			 n;
	size_t			 cap;
	size_t			 notes0;	/* rep->nnotes at its start */
	bool			 full;		/* a server reached a bound */
};

/* What the store's refusal callback needs. */
struct refusal {
	enum write_outcome	*out;
};

/* How bad an outcome is: the worst of an entry's servers is its own. */
static int
severity(enum write_outcome o)
{
	switch (o) {
	case WRITE_PENDING:
	case WRITE_SAME:
	case WRITE_OK:
		return 0;
	case WRITE_TOO_BIG:
		return 1;
	case WRITE_KEPT:
		return 2;
	case WRITE_INVALID:
		return 3;
	case WRITE_REFUSED:
		return 4;
	case WRITE_DOWN:
	default:
		return 5;
	}
}

static void
worsen(enum write_outcome *o, enum write_outcome w)
{
	if (severity(w) > severity(*o))
		*o = w;
}

bool
writer_in_cache(enum write_outcome o)
{
	return o == WRITE_OK || o == WRITE_SAME;
}

static void
push(size_t **v, size_t *n, size_t *cap, size_t i)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 256 : *cap * 2;
		*v = xreallocarray(*v, *cap, sizeof **v);
	}
	(*v)[(*n)++] = i;
}

/* Queued entry i (len value bytes) on server j. */
static void
sent_add(struct batch *b, size_t j, size_t i, size_t len)
{
	struct sent	*s = &b->sent[j];

	push(&s->v, &s->n, &s->cap, i);
	s->bytes += len;
	if (s->n >= GATE_EVERY || s->bytes >= GATE_BYTES)
		b->full = true;
}

/* Something for the loop to log about entry e (its key is copied). */
static void
note(struct writer_report *rep, const struct entry *e, size_t srv,
    enum write_outcome w)
{
	struct writer_note	*no;

	if (rep == NULL)
		return;
	if (rep->nnotes == rep->capnotes) {
		rep->capnotes = rep->capnotes == 0 ? 16 : rep->capnotes * 2;
		rep->notes = xreallocarray(rep->notes, rep->capnotes,
		    sizeof *rep->notes);
	}
	no = &rep->notes[rep->nnotes++];
	no->key = xstrdup(e->key);
	no->bytes = e->len;
	no->srv = srv;
	no->what = w;
}

/* Forget the notes from k on (a batch dropped). */
static void
notes_cut(struct writer_report *rep, size_t k)
{
	while (rep->nnotes > k)
		free(rep->notes[--rep->nnotes].key);
}

/* store_flush's callback: the server does not hold entry tag's value. */
static void
on_refused(size_t tag, bool kept, void *arg)
{
	struct refusal	*r = arg;

	worsen(&r->out[tag], kept ? WRITE_KEPT : WRITE_REFUSED);
}

/* Queue entry i on every server it belongs on. */
static void
send_entry(struct store *st, const struct entry *e, size_t i,
    enum write_outcome *out, struct batch *b, struct writer_report *rep,
    bool *down)
{
	size_t	j;

	out[i] = WRITE_OK;
	push(&b->v, &b->n, &b->cap, i);
	for (j = 0; j < store_nservers(st); j++) {
		if ((e->servers >> j & 1) == 0)
			continue;
		switch (store_set(st, j, e->wire, e->wirelen, e->val, e->len,
		    e->flags, i)) {
		case STORE_OK:
			sent_add(b, j, i, e->len);
			break;
		case STORE_TOO_BIG:
			note(rep, e, j, WRITE_TOO_BIG);
			worsen(&out[i], WRITE_TOO_BIG);
			break;
		case STORE_DOWN:
			*down = true;
			worsen(&out[i], WRITE_DOWN);
			break;
		case STORE_ERROR:
			worsen(&out[i], WRITE_REFUSED);
			break;
		}
	}
}

/* Queue a delete of entry i on every server it is on. */
static void
delete_entry(struct store *st, const struct entry *e, size_t i,
    enum write_outcome *out, struct batch *b)
{
	size_t	j;

	out[i] = WRITE_OK;
	push(&b->v, &b->n, &b->cap, i);
	for (j = 0; e->wire != NULL && j < store_nservers(st); j++) {
		if ((e->servers >> j & 1) == 0)
			continue;
		if (store_delete(st, j, e->wire, e->wirelen) == STORE_OK)
			sent_add(b, j, i, 0);
		else
			worsen(&out[i], WRITE_DOWN);
	}
}

/* Whether the gate lets this process write now. */
static bool
gate_open(const struct writer_gate *gate)
{
	return gate == NULL || gate->may_write(gate->arg);
}

/* Start the next batch (the queues are empty). */
static void
batch_reset(struct batch *b, const struct writer_report *rep)
{
	size_t	j;

	for (j = 0; j < STORE_MAX_SERVERS; j++)
		b->sent[j].n = b->sent[j].bytes = 0;
	b->n = 0;
	b->full = false;
	b->notes0 = rep != NULL ? rep->nnotes : 0;
}

static void
batch_free(struct batch *b)
{
	size_t	j;

	for (j = 0; j < STORE_MAX_SERVERS; j++)
		free(b->sent[j].v);
	free(b->v);
}

/*
 * End the batch: if the gate is still open (asked now, just before
 * anything is sent), send every server's queue and wait for it with a
 * round trip; nothing of a batch is known written until then.  If it is
 * closed, drop the queues unsent and leave the batch's entries
 * WRITE_PENDING.  Whether the gate was open; *down if a server failed.
 */
static bool
flush_batch(struct store *st, const struct writer_gate *gate,
    struct batch *b, enum write_outcome *out, struct writer_report *rep,
    bool *down)
{
	struct refusal	 r = { out };
	size_t		 j, k;

	if (!gate_open(gate)) {
		for (j = 0; j < store_nservers(st); j++)
			if (b->sent[j].n > 0)
				store_reconnect(st, j);
		for (k = 0; k < b->n; k++)
			out[b->v[k]] = WRITE_PENDING;
		if (rep != NULL) {
			notes_cut(rep, b->notes0);
			rep->lost = true;
		}
		batch_reset(b, rep);
		return false;
	}
	for (j = 0; j < store_nservers(st); j++) {
		if (b->sent[j].n == 0)
			continue;
		if (store_flush(st, j, on_refused, &r) == -1) {
			*down = true;
			for (k = 0; k < b->sent[j].n; k++)
				worsen(&out[b->sent[j].v[k]], WRITE_DOWN);
		}
	}
	batch_reset(b, rep);
	return true;
}

/* Count a phase's outcomes. */
static void
tally(const struct entry *v, size_t n, int phase,
    const enum write_outcome *out, struct write_stats *ws)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (v[i].phase != phase)
			continue;
		if (out[i] == WRITE_OK) {
			ws->written++;
			ws->bytes += v[i].len;
		} else if (out[i] == WRITE_SAME)
			ws->skipped++;
		else if (out[i] != WRITE_PENDING)
			ws->failed++;
	}
}

enum writer_rc
writer_phase(struct store *st, const struct entry *v, size_t n, int phase,
    const struct writer_gate *gate, enum write_outcome *out,
    struct writer_report *rep)
{
	struct batch	 b;
	size_t		 i;
	bool		 down = false, open = true;

	memset(&b, 0, sizeof b);
	batch_reset(&b, rep);
	for (i = 0; i < n && open; i++) {
		const struct entry *e = &v[i];

		if (out[i] != WRITE_PENDING || e->phase != phase)
			continue;
		if (e->wire == NULL) {
			/* Never sent: nothing for the gate to stop. */
			note(rep, e, SIZE_MAX, WRITE_INVALID);
			out[i] = WRITE_INVALID;
			continue;
		}
		send_entry(st, e, i, out, &b, rep, &down);
		if (b.full)
			open = flush_batch(st, gate, &b, out, rep, &down);
	}
	if (open && b.n > 0)
		open = flush_batch(st, gate, &b, out, rep, &down);
	batch_free(&b);
	if (rep != NULL)
		tally(v, n, phase, out, &rep->ws);
	return !open ? WRITER_LEASE_LOST : down ? WRITER_FAILED : WRITER_OK;
}

enum writer_rc
writer_delete(struct store *st, const struct entry *v, size_t n,
    const struct writer_gate *gate, enum write_outcome *out)
{
	struct batch	 b;
	size_t		 i;
	bool		 down = false, open = true;

	memset(&b, 0, sizeof b);
	batch_reset(&b, NULL);
	for (i = 0; i < n && open; i++) {
		delete_entry(st, &v[i], i, out, &b);
		if (b.full)
			open = flush_batch(st, gate, &b, out, NULL, &down);
	}
	if (open && b.n > 0)
		open = flush_batch(st, gate, &b, out, NULL, &down);
	batch_free(&b);
	return !open ? WRITER_LEASE_LOST : down ? WRITER_FAILED : WRITER_OK;
}

void
writer_report_free(struct writer_report *rep)
{
	notes_cut(rep, 0);
	free(rep->notes);
	memset(rep, 0, sizeof *rep);
}

void
writer_report_log(const struct writer_report *rep, const struct store *st,
    bool stopping)
{
	const struct writer_note	*no;
	size_t				 k;

	for (k = 0; k < rep->nnotes; k++) {
		no = &rep->notes[k];
		if (no->what == WRITE_TOO_BIG)
			log_event(LOG_ERR, "memcached_error", "server=%s op=set "
			    "key=%s bytes=%zu error=%s",
			    store_server_name(st, no->srv), no->key, no->bytes,
			    "value over the server's item size limit: not "
			    "written, the old value stays");
		else
			log_event(LOG_ERR, "memcached_error", "op=set key=%s "
			    "error=%s", no->key, "not a valid memcached key "
			    "with this key_function (space, control character "
			    "or over 250 bytes)");
	}
	if (rep->lost && !stopping)
		log_event(LOG_WARNING, "write_stopped", "error=%s", "the lease "
		    "is no longer held: nothing more is written");
}
