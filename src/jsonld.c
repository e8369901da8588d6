/*
 * jsonld.c: jansson with numbers it cannot hold carried as marked strings.
 *
 * jansson reports the overflow with the byte position just past the number
 * (json_error_numeric_overflow), so the number is found there, replaced by
 * a string, and the document parsed again.  This is not a JSON parser: it
 * only rewrites a token jansson has already lexed.
 */
#include <string.h>

#include "jarena.h"
#include "jsonld.h"
#include "util.h"

/* A document with more numbers than this that jansson cannot hold is
 * refused: each one costs a parse. */
#define MAX_REWRITES	64

static const char escaped_mark[] = "\\u0000pcd-number:";

/* The number that ends at end: the bytes a JSON number is made of. */
static size_t
number_start(const char *buf, size_t end)
{
	size_t	i = end;

	while (i > 0 && strchr("0123456789+-.eE", buf[i - 1]) != NULL &&
	    buf[i - 1] != '\0')
		i--;
	return i;
}

json_t *
jsonld_load(const char *buf, size_t len, size_t flags, json_error_t *e)
{
	struct buf	 cur, nb;
	json_t		*j;
	size_t		 end, start;
	int		 n;

	j = json_loadb(buf, len, flags | JSON_ALLOW_NUL, e);
	if (j != NULL || json_error_code(e) != json_error_numeric_overflow)
		return j;
	if (memmem(buf, len, escaped_mark, sizeof escaped_mark - 1) != NULL)
		return NULL;	/* the document spells our mark itself */

	buf_init(&cur);
	buf_add(&cur, buf, len);
	for (n = 0; n < MAX_REWRITES; n++) {
		end = (size_t)e->position;
		if (end > cur.len || (start = number_start((char *)cur.data,
		    end)) == end)
			break;
		buf_init(&nb);
		buf_add(&nb, cur.data, start);
		buf_addc(&nb, '"');
		buf_add(&nb, escaped_mark, sizeof escaped_mark - 1);
		buf_add(&nb, cur.data + start, end - start);
		buf_addc(&nb, '"');
		buf_add(&nb, cur.data + end, cur.len - end);
		buf_free(&cur);
		cur = nb;
		j = json_loadb((char *)cur.data, cur.len, flags | JSON_ALLOW_NUL, e);
		if (j != NULL ||
		    json_error_code(e) != json_error_numeric_overflow)
			break;
	}
	buf_free(&cur);
	return j;
}

const char *
jsonld_number(const json_t *v, size_t *len)
{
	const char	*s;
	size_t		 n;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n <= JSONLD_NUMBER_MARKLEN ||
	    memcmp(s, JSONLD_NUMBER_MARK, JSONLD_NUMBER_MARKLEN) != 0)
		return NULL;
	if (len != NULL)
		*len = n - JSONLD_NUMBER_MARKLEN;
	return s + JSONLD_NUMBER_MARKLEN;
}

char *
jsonld_dumps(const json_t *v)
{
	struct buf	 b;
	char		*s, *p, *q;

	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return NULL;
	if (strstr(s, escaped_mark) == NULL) {
		/* jansson's memory may be a parse's arena: copy it out. */
		p = xstrdup(s);
		jarena_free(s);
		return p;
	}
	/* "\u0000pcd-number:123" -> 123; the loader made sure that only
	 * marked numbers are spelt this way. */
	buf_init(&b);
	for (p = s; (q = strstr(p, escaped_mark)) != NULL; ) {
		buf_add(&b, p, (size_t)(q - p - 1));	/* drop the quote */
		q += sizeof escaped_mark - 1;
		p = strchr(q, '"');
		buf_add(&b, q, (size_t)(p - q));
		p++;
	}
	buf_adds(&b, p);
	jarena_free(s);
	return (char *)buf_steal(&b, NULL);
}
