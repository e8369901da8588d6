/*
 * unpickle_json: read pickles back into JSON the way --show does, for the
 * differential test against CPython (tests/integration/test_unpickle.py).
 *
 * usage: unpickle_json [-n]
 * One pickle on stdin: its value as JSON (jsonld_dumps) on stdout, or
 * exit 1 with the reason on stderr.  -n: stdin is any number of records,
 * each a 4-byte little-endian length and that many bytes of pickle; one
 * line out for each, "ok JSON" or "error REASON".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonld.h"
#include "unpickle.h"
#include "util.h"

/* Read a whole stream into b.  0, or -1 on a read error. */
static int
read_all(FILE *f, struct buf *b)
{
	size_t	n;

	for (;;) {
		buf_reserve(b, 65536);
		n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
		b->len += n;
		if (n == 0)
			return ferror(f) ? -1 : 0;
	}
}

/* One pickle: "ok JSON" or "error REASON" (tagged), or the bare forms. */
static int
one(const unsigned char *p, size_t len, bool tagged)
{
	char	 why[256];
	char	*text;
	json_t	*v;

	if ((v = unpickle(p, len, why, sizeof why)) == NULL) {
		if (tagged)
			printf("error %s\n", why);
		else
			fprintf(stderr, "unpickle_json: %s\n", why);
		return 1;
	}
	text = jsonld_dumps(v);
	json_decref(v);
	if (text == NULL) {
		fprintf(stderr, "unpickle_json: cannot dump the value\n");
		exit(2);
	}
	printf("%s%s\n", tagged ? "ok " : "", text);
	free(text);
	return 0;
}

int
main(int argc, char **argv)
{
	struct buf	 in;
	size_t		 at = 0, n;
	bool		 records = argc > 1 && strcmp(argv[1], "-n") == 0;
	int		 rc = 0;

	buf_init(&in);
	if (read_all(stdin, &in) != 0) {
		fprintf(stderr, "unpickle_json: cannot read stdin\n");
		return 2;
	}
	if (!records) {
		rc = one(in.data, in.len, false);
		buf_free(&in);
		return rc;
	}
	while (at + 4 <= in.len) {
		n = (size_t)in.data[at] | (size_t)in.data[at + 1] << 8 |
		    (size_t)in.data[at + 2] << 16 | (size_t)in.data[at + 3] << 24;
		at += 4;
		if (n > in.len - at) {
			fprintf(stderr, "unpickle_json: a record runs past "
			    "the end\n");
			return 2;
		}
		(void)one(in.data + at, n, true);
		at += n;
	}
	buf_free(&in);
	return 0;
}
