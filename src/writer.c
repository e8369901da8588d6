/*
 * writer.c: pipelined, phased writes with an outcome per entry.
 */
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "log.h"
#include "writer.h"
#include "util.h"

/* Entries sent between two looks at the gate. */
#define GATE_EVERY	256

/* Entries sent to one server since its last round trip. */
struct sent {
	size_t	*v;
	size_t	 n;
	size_t	 cap;
};

/* What the store's refusal callback needs. */
struct batch {
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
sent_add(struct sent *s, size_t i)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 256 : s->cap * 2;
		s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
	}
	s->v[s->n++] = i;
}

/* store_flush's callback: the server does not hold entry tag's value. */
static void
on_refused(size_t tag, bool kept, void *arg)
{
	struct batch	*b = arg;

	worsen(&b->out[tag], kept ? WRITE_KEPT : WRITE_REFUSED);
}

/* Queue entry i on every server it belongs on. */
static void
send_entry(struct store *st, const struct entry *e, size_t i,
    enum write_outcome *out, struct sent *sent, bool *down)
{
	size_t	j;

	out[i] = WRITE_OK;
	for (j = 0; j < store_nservers(st); j++) {
		if ((e->servers >> j & 1) == 0)
			continue;
		switch (store_set(st, j, e->wire, e->wirelen, e->val, e->len,
		    e->flags, i)) {
		case STORE_OK:
			sent_add(&sent[j], i);
			break;
		case STORE_TOO_BIG:
			log_event(LOG_ERR, "memcached_error", "server=%s op=set "
			    "key=%s bytes=%zu error=%s",
			    store_server_name(st, j), e->key, e->len,
			    "value over the server's item size limit: not "
			    "written, the old value stays");
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

/* Whether the gate lets this process write now; logs when it does not. */
static bool
gate_open(const struct writer_gate *gate)
{
	if (gate == NULL || gate->may_write(gate->arg))
		return true;
	log_event(LOG_WARNING, "write_stopped", "error=%s", "the lease is no "
	    "longer held: nothing more is written");
	return false;
}

/*
 * End every server's batch with a round trip: nothing of a batch is
 * known written until then.  Whether a server failed.
 */
static bool
flush_all(struct store *st, struct sent *sent, enum write_outcome *out)
{
	struct batch	 b = { out };
	size_t		 j, k;
	bool		 down = false;

	for (j = 0; j < store_nservers(st); j++) {
		if (sent[j].n == 0)
			continue;
		if (store_flush(st, j, on_refused, &b) == -1) {
			down = true;
			for (k = 0; k < sent[j].n; k++)
				worsen(&out[sent[j].v[k]], WRITE_DOWN);
		}
		free(sent[j].v);
	}
	return down;
}

/* Count a phase's outcomes. */
static void
tally(const struct entry *v, size_t n, int phase,
    const enum write_outcome *out, struct write_stats *ws)
{
	size_t	i;

	for (i = 0; ws != NULL && i < n; i++) {
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
    struct write_stats *ws)
{
	struct sent	 sent[STORE_MAX_SERVERS];
	size_t		 i, nsent = 0;
	bool		 down = false, lost = false;

	memset(sent, 0, sizeof sent);
	for (i = 0; i < n; i++) {
		const struct entry *e = &v[i];

		if (out[i] != WRITE_PENDING || e->phase != phase)
			continue;
		if (nsent++ % GATE_EVERY == 0 && !gate_open(gate)) {
			lost = true;
			break;
		}
		if (e->wire == NULL) {
			log_event(LOG_ERR, "memcached_error", "op=set key=%s "
			    "error=%s", e->key, "not a valid memcached key "
			    "with this key_function (space, control character "
			    "or over 250 bytes)");
			out[i] = WRITE_INVALID;
			continue;
		}
		send_entry(st, e, i, out, sent, &down);
	}
	down |= flush_all(st, sent, out);
	tally(v, n, phase, out, ws);
	return lost ? WRITER_LEASE_LOST : down ? WRITER_FAILED : WRITER_OK;
}

enum writer_rc
writer_delete(struct store *st, const struct entry *v, size_t n,
    const struct writer_gate *gate, enum write_outcome *out)
{
	struct sent	 sent[STORE_MAX_SERVERS];
	size_t		 i, j;
	bool		 down = false;

	if (n == 0)
		return WRITER_OK;
	if (!gate_open(gate))
		return WRITER_LEASE_LOST;
	memset(sent, 0, sizeof sent);
	for (i = 0; i < n; i++) {
		out[i] = WRITE_OK;
		for (j = 0; v[i].wire != NULL && j < store_nservers(st); j++) {
			if ((v[i].servers >> j & 1) == 0)
				continue;
			if (store_delete(st, j, v[i].wire, v[i].wirelen) ==
			    STORE_OK)
				sent_add(&sent[j], i);
			else
				worsen(&out[i], WRITE_DOWN);
		}
	}
	down = flush_all(st, sent, out);
	return down ? WRITER_FAILED : WRITER_OK;
}
