/*
 * pickle_json: pickle one JSON document the way the daemon does, for the
 * differential test against CPython (tests/integration/test_pickle_diff.py).
 *
 * usage: pickle_json [-c] PROTO [FILE]
 * Reads FILE (or stdin), writes the pickle to stdout.  Exit 1 with a message
 * on stderr if the JSON does not parse or the value cannot be pickled.
 *
 * -c: if the document is a non-empty object, write all but its last item,
 * take a checkpoint and finish the value from it three times (from a copy of
 * the prefix, in place on the finished bytes, from a copy of those), as the
 * daemon finishes a program once its pathway ids are known.  The three must
 * agree.  The last item must not refer to earlier memo entries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonld.h"
#include "pickle.h"
#include "util.h"

static int	read_all(FILE *, struct buf *);
static int	last_item(struct pickle *, void *);
static int	encode_resumed(struct pickle *, int, json_t *);

/* Read a whole stream into b.  0, or -1 on a read error. */
static int
read_all(FILE *f, struct buf *b)
{
	size_t	n;

	for (;;) {
		buf_reserve(b, 65536);
		n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
		b->len += n;
		b->data[b->len] = '\0';
		if (n == 0)
			return ferror(f) ? -1 : 0;
	}
}

/* Write the item at iterator it, close the dict and finish. */
static int
last_item(struct pickle *p, void *it)
{
	pickle_str(p, json_object_iter_key(it), json_object_iter_key_len(it),
	    PICKLE_KEY);
	pickle_json(p, json_object_iter_value(it));
	pickle_end(p);
	return pickle_finish(p);
}

/* The -c mode: p (begun) ends up with the value, finished three times. */
static int
encode_resumed(struct pickle *p, int proto, json_t *o)
{
	struct pickle		q;
	struct pickle_ckpt	ck;
	struct buf		prefix, first;
	void			*it, *last = NULL;
	int			 rc = -1;

	pickle_dict_begin(p, json_object_size(o));
	for (it = json_object_iter(o); it != NULL;
	    it = json_object_iter_next(o, it)) {
		if (json_object_iter_next(o, it) == NULL) {
			last = it;
			break;
		}
		pickle_str(p, json_object_iter_key(it),
		    json_object_iter_key_len(it), PICKLE_KEY);
		pickle_json(p, json_object_iter_value(it));
	}
	pickle_checkpoint(p, &ck);
	buf_init(&prefix);
	buf_add(&prefix, p->out.data, p->out.len);
	buf_init(&first);
	pickle_init(&q, proto);

	pickle_resume(&q, &prefix, &ck);
	if (last_item(&q, last) != 0)
		goto out;
	buf_add(&first, q.out.data, q.out.len);
	pickle_resume(&q, &q.out, &ck);
	if (last_item(&q, last) != 0)
		goto out;
	if (q.out.len != first.len || memcmp(q.out.data, first.data,
	    first.len) != 0) {
		fprintf(stderr, "pickle_json: resumed in place differs\n");
		goto out;
	}
	buf_truncate(&prefix, 0);
	buf_add(&prefix, q.out.data, q.out.len);
	pickle_resume(p, &prefix, &ck);
	if (last_item(p, last) != 0)
		goto out;
	if (p->out.len != first.len || memcmp(p->out.data, first.data,
	    first.len) != 0) {
		fprintf(stderr, "pickle_json: resumed from a copy differs\n");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && pickle_error(&q) != NULL)
		fprintf(stderr, "pickle_json: %s\n", pickle_error(&q));
	pickle_free(&q);
	buf_free(&prefix);
	buf_free(&first);
	return rc;
}

/* pickle_json [-c] PROTO [FILE] */
int
main(int argc, char **argv)
{
	struct pickle	 p;
	struct buf	 in;
	json_error_t	 jerr;
	json_t		*j;
	FILE		*f = stdin;
	char		*end;
	long		 proto;
	int		 rc = 1, resumed = 0;

	if (argc > 1 && strcmp(argv[1], "-c") == 0) {
		resumed = 1;
		argc--;
		argv++;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pickle_json [-c] PROTO [FILE]\n");
		return 2;
	}
	proto = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || proto < 2 || proto > 5) {
		fprintf(stderr, "pickle_json: bad protocol %s\n", argv[1]);
		return 2;
	}
	if (argc == 3 && (f = fopen(argv[2], "rb")) == NULL) {
		fprintf(stderr, "pickle_json: %s: %s\n", argv[2],
		    strerror(errno));
		return 1;
	}
	buf_init(&in);
	if (read_all(f, &in) != 0) {
		fprintf(stderr, "pickle_json: read: %s\n", strerror(errno));
		goto out;
	}
	j = jsonld_load((const char *)in.data, in.len, JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		fprintf(stderr, "pickle_json: %d:%d: %s\n", jerr.line,
		    jerr.column, jerr.text);
		goto out;
	}
	pickle_init(&p, (int)proto);
	pickle_begin(&p);
	if (resumed && json_is_object(j) && json_object_size(j) != 0) {
		if (encode_resumed(&p, (int)proto, j) != 0)
			goto done;
	} else if (pickle_json(&p, j) != 0 || pickle_finish(&p) != 0) {
		fprintf(stderr, "pickle_json: %s\n", pickle_error(&p));
		goto done;
	}
	if (fwrite(p.out.data, 1, p.out.len, stdout) != p.out.len ||
	    fflush(stdout) != 0)
		fprintf(stderr, "pickle_json: write: %s\n", strerror(errno));
	else
		rc = 0;
done:
	pickle_free(&p);
	json_decref(j);
out:
	buf_free(&in);
	if (f != stdin)
		fclose(f);
	return rc;
}
