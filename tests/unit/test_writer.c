/*
 * test_writer.c: the one writer, against the test backend: phases, skips,
 * refusals, values too big, invalid keys, a server down or failing at the
 * flush, the lease's gate (closed before a phase, closing between
 * batches: the batch queued then is dropped unsent), and deletes; each
 * with the outcome of every entry and the call's return.  What the loop
 * must log (values too big, invalid keys, the gate closed) is noted in
 * the report, not logged by the writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "log.h"
#include "testbe.h"
#include "writer.h"
#include "t.h"

#define N	600

static struct store	*st;
static char		 keys[N][40], wires[N][48], vals[N][32];
static struct entry	 v[N];

/* n entries: the first half phase 0, then phase 1; placed by the store. */
static void
entries(size_t n)
{
	size_t	i, idx[STORE_MAX_SERVERS];

	memset(v, 0, sizeof v);
	for (i = 0; i < n; i++) {
		snprintf(keys[i], sizeof keys[i], "program-%zu", i);
		snprintf(wires[i], sizeof wires[i], "w:program-%zu", i);
		snprintf(vals[i], sizeof vals[i], "\"v%zu\"", i);
		v[i].key = keys[i];
		v[i].wire = wires[i];
		v[i].wirelen = (uint32_t)strlen(wires[i]);
		v[i].val = (const unsigned char *)vals[i];
		v[i].len = strlen(vals[i]);
		v[i].flags = 1;
		v[i].phase = i < n / 2 ? 0 : 1;
		store_place(st, wires[i], v[i].wirelen, idx);
		v[i].servers = (uint64_t)1 << idx[0];
	}
}

/* How many outcomes of out[0..n) are o. */
static size_t
count(const enum write_outcome *out, size_t n, enum write_outcome o)
{
	size_t	i, c = 0;

	for (i = 0; i < n; i++)
		c += out[i] == o;
	return c;
}

/* Phase by phase; what the caller marks as the same is not sent. */
static void
test_phases(void)
{
	enum write_outcome	out[N];
	struct writer_report	rep;

	testbe_reset();
	entries(10);
	memset(out, 0, sizeof out);
	memset(&rep, 0, sizeof rep);
	out[1] = WRITE_SAME;
	T_INTEQ(writer_phase(st, v, 10, 0, NULL, out, &rep), WRITER_OK);
	T_INTEQ(count(out, 5, WRITE_OK), 4);
	T_INTEQ(count(out + 5, 5, WRITE_PENDING), 5);	/* phase 1: not yet */
	T_INTEQ(rep.ws.written, 4);
	T_INTEQ(rep.ws.skipped, 1);
	T_STREQ(testbe_get("w:program-0"), "\"v0\"");
	T_CHECK(testbe_get("w:program-1") == NULL);	/* skipped: not sent */
	T_CHECK(testbe_get("w:program-5") == NULL);
	T_INTEQ(writer_phase(st, v, 10, 1, NULL, out, &rep), WRITER_OK);
	T_INTEQ(count(out, 10, WRITE_OK), 9);
	T_STREQ(testbe_get("w:program-9"), "\"v9\"");
	T_INTEQ(tb.sets, 9);
	T_INTEQ(rep.nnotes, 0);
	T_CHECK(!rep.lost);
	writer_report_free(&rep);
}

/* Batches of 256 entries per server, each ended by its own flush. */
static void
test_batches(void)
{
	enum write_outcome	out[N];

	testbe_reset();
	entries(N);
	for (size_t i = 0; i < N; i++) {
		v[i].phase = 0;
		v[i].servers = 1;	/* one server: 600 = 256 + 256 + 88 */
	}
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, N, 0, NULL, out, NULL), WRITER_OK);
	T_INTEQ(count(out, N, WRITE_OK), N);
	T_INTEQ(tb.flushes, 3);
	T_INTEQ(tb.reconnects, 0);
}

/* Refused, too big, invalid: each its outcome, nothing else touched. */
static void
test_refusals(void)
{
	enum write_outcome	out[N];
	struct writer_report	rep;
	char			longval[2001];

	testbe_reset();
	entries(8);
	memset(longval, 'x', sizeof longval - 1);
	longval[sizeof longval - 1] = '\0';
	v[2].wire = NULL;			/* the key function refused */
	v[3].val = (const unsigned char *)longval;
	v[3].len = 2000;			/* over the item size */
	testbe_item_max(1000);
	testbe_refuse("program-1");		/* out of memory, say */
	memset(out, 0, sizeof out);
	memset(&rep, 0, sizeof rep);
	CAPTURE(T_INTEQ(writer_phase(st, v, 8, 0, NULL, out, &rep),
	    WRITER_OK));
	T_STREQ(captured, "");			/* the writer logs nothing */
	T_INTEQ(out[0], WRITE_OK);
	T_INTEQ(out[1], WRITE_REFUSED);
	T_INTEQ(out[2], WRITE_INVALID);
	T_INTEQ(out[3], WRITE_TOO_BIG);
	T_CHECK(testbe_get("w:program-1") == NULL);
	T_CHECK(testbe_get("w:program-3") == NULL);
	T_INTEQ(rep.ws.written, 1);
	T_INTEQ(rep.ws.failed, 3);
	T_CHECK(writer_in_cache(WRITE_OK) && writer_in_cache(WRITE_SAME) &&
	    !writer_in_cache(WRITE_REFUSED) && !writer_in_cache(WRITE_DOWN) &&
	    !writer_in_cache(WRITE_KEPT));
	/* Noted for the loop, which logs them. */
	T_INTEQ(rep.nnotes, 2);
	T_STREQ(rep.notes[0].key, "program-2");
	T_INTEQ(rep.notes[0].what, WRITE_INVALID);
	T_STREQ(rep.notes[1].key, "program-3");
	T_INTEQ(rep.notes[1].what, WRITE_TOO_BIG);
	T_INTEQ(rep.notes[1].bytes, 2000);
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(writer_report_log(&rep, st, false));
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	T_CHECK(strstr(captured, "\"key\":\"program-2\"") != NULL);
	T_CHECK(strstr(captured, "\"key\":\"program-3\",\"bytes\":2000") !=
	    NULL);
	writer_report_free(&rep);

	/* Refused by a cache that keeps the old value (Redis): KEPT. */
	testbe_heal();
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, 2, 0, NULL, out, NULL), WRITER_OK);
	T_STREQ(testbe_get("w:program-1"), "\"v1\"");
	v[1].val = (const unsigned char *)"\"new\"";
	v[1].len = 5;
	testbe_refuse_keep("program-1");
	memset(out, 0, sizeof out);
	memset(&rep, 0, sizeof rep);
	T_INTEQ(writer_phase(st, v, 2, 0, NULL, out, &rep), WRITER_OK);
	T_INTEQ(out[0], WRITE_OK);
	T_INTEQ(out[1], WRITE_KEPT);
	T_STREQ(testbe_get("w:program-1"), "\"v1\"");
	T_INTEQ(rep.ws.failed, 1);
	writer_report_free(&rep);
	testbe_heal();
}

/* A server down, a flush that fails: unknown outcomes, WRITER_FAILED. */
static void
test_servers_fail(void)
{
	enum write_outcome	out[N];
	size_t			i, down = 0, ok = 0;

	testbe_reset();
	entries(20);
	testbe_down(1, true);
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, 20, 0, NULL, out, NULL), WRITER_FAILED);
	for (i = 0; i < 10; i++) {
		if ((v[i].servers & 2) != 0)
			down += out[i] == WRITE_DOWN;
		else
			ok += out[i] == WRITE_OK;
	}
	T_INTEQ(down + ok, 10);
	T_CHECK(down > 0 && ok > 0);

	testbe_reset();
	entries(20);
	testbe_fail_flush(0);
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, 20, 0, NULL, out, NULL), WRITER_FAILED);
	for (i = 0; i < 10; i++)
		T_INTEQ(out[i], (v[i].servers & 1) != 0 ? WRITE_DOWN :
		    WRITE_OK);
	/* Nothing of the failed batch is in the cache. */
	for (i = 0; i < 10; i++)
		if ((v[i].servers & 1) != 0)
			T_CHECK(testbe_get(wires[i]) == NULL);
	store_retry_now(st);
}

/* The gate: asked immediately before every batch is sent. */
static int	gate_calls, gate_open_for;
static size_t	sets_at_gate[8];

static bool
may_write(void *arg)
{
	(void)arg;
	if (gate_calls < 8)
		sets_at_gate[gate_calls] = tb.sets;
	return gate_calls++ < gate_open_for;
}

/* Where the first batch ends: the entry that fills a server's 256. */
static size_t
first_batch(size_t n)
{
	size_t	i, per[TESTBE_SERVERS] = { 0 };

	for (i = 0; i < n; i++)
		if (++per[v[i].servers == 1 ? 0 : 1] == 256)
			return i + 1;
	return n;
}

static void
test_gate(void)
{
	struct writer_gate	 gate = { may_write, NULL };
	struct writer_report	 rep;
	enum write_outcome	 out[N];
	size_t			 i, b1;

	/* Closed from the start: the first batch is queued, then dropped. */
	testbe_reset();
	entries(N);
	gate_calls = 0;
	gate_open_for = 0;
	memset(out, 0, sizeof out);
	memset(&rep, 0, sizeof rep);
	T_INTEQ(writer_phase(st, v, N, 0, &gate, out, &rep),
	    WRITER_LEASE_LOST);
	T_INTEQ(count(out, N, WRITE_PENDING), N);
	T_INTEQ(tb.nitems, 0);
	T_INTEQ(tb.flushes, 0);
	T_CHECK(rep.lost);
	writer_report_free(&rep);

	/*
	 * Open for one batch: it is sent and flushed; the gate closes while
	 * the second is queued, which is never sent: its entries stay
	 * pending, its servers' queues are dropped.
	 */
	testbe_reset();
	entries(N);
	for (i = 0; i < N; i++)
		v[i].phase = 0;
	b1 = first_batch(N);
	T_CHECK(b1 < N);
	gate_calls = 0;
	gate_open_for = 1;
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, N, 0, &gate, out, NULL),
	    WRITER_LEASE_LOST);
	T_INTEQ(gate_calls, 2);
	/* Asked after each batch was queued, before it was sent. */
	T_INTEQ(sets_at_gate[0], b1);
	T_CHECK(sets_at_gate[1] > b1);
	T_INTEQ(count(out, b1, WRITE_OK), b1);
	T_INTEQ(count(out + b1, N - b1, WRITE_PENDING), N - b1);
	T_INTEQ(tb.nitems, b1);
	T_INTEQ(tb.nqueue[0] + tb.nqueue[1], 0);	/* dropped */
	T_CHECK(tb.reconnects > 0);
	T_STREQ(testbe_get("w:program-0"), "\"v0\"");
	T_CHECK(testbe_get(wires[b1]) == NULL);
	T_CHECK(testbe_get(wires[N - 1]) == NULL);
}

/* Deletes go through the writer too, gated like the rest. */
static void
test_deletes(void)
{
	struct writer_gate	 gate = { may_write, NULL };
	enum write_outcome	 out[N];

	testbe_reset();
	entries(4);
	memset(out, 0, sizeof out);
	T_INTEQ(writer_phase(st, v, 4, 0, NULL, out, NULL), WRITER_OK);
	T_INTEQ(writer_phase(st, v, 4, 1, NULL, out, NULL), WRITER_OK);
	T_INTEQ(tb.nitems, 4);
	gate_calls = 0;
	gate_open_for = 0;
	memset(out, 0, sizeof out);
	T_INTEQ(writer_delete(st, v, 2, &gate, out), WRITER_LEASE_LOST);
	T_INTEQ(tb.nitems, 4);
	T_INTEQ(out[0], WRITE_PENDING);
	T_INTEQ(writer_delete(st, v, 2, NULL, out), WRITER_OK);
	T_INTEQ(out[0], WRITE_OK);
	T_INTEQ(out[1], WRITE_OK);
	T_INTEQ(tb.nitems, 2);
	T_CHECK(testbe_get("w:program-0") == NULL);
	T_STREQ(testbe_get("w:program-3"), "\"v3\"");
	/* A server down: that delete's outcome is unknown. */
	testbe_down((int)(v[2].servers == 1 ? 0 : 1), true);
	T_INTEQ(writer_delete(st, v + 2, 1, NULL, out), WRITER_OK);
	T_INTEQ(out[0], WRITE_DOWN);
	T_STREQ(testbe_get("w:program-2"), "\"v2\"");
}

int
main(void)
{
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	testbe_reset();
	st = store_new_with(&testbe, NULL);
	test_phases();
	test_batches();
	test_refusals();
	test_servers_fail();
	test_gate();
	test_deletes();
	store_free(st);
	testbe_reset();
	return t_done();
}
