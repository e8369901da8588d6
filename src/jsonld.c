/*
 * jsonld.c: jansson with numbers it cannot hold carried as marked strings.
 *
 * jansson reports the overflow with the byte position just past the number
 * (json_error_numeric_overflow), so the number is found there, replaced by
 * a placeholder string, and the document parsed again.  This is not a JSON
 * parser: it only rewrites a token jansson has already lexed.  Once the
 * document parses, every placeholder becomes a marked number.  The
 * placeholder holds a random nonce, new for each document, so a string of
 * the document spells it only by chance; if more strings spell it than
 * were written, the document is refused all the same.
 */
#include <sys/random.h>

#include <stdio.h>
#include <string.h>

#include "jarena.h"
#include "jsonld.h"
#include "log.h"
#include "util.h"

/* A document with more numbers than this that jansson cannot hold is
 * refused: each one costs a parse. */
#define MAX_REWRITES	64

/* What the rewrite writes in the text: "\u0000pcd-number-NONCE:". */
#define PLACEHOLDER_TEXT	"\\u0000pcd-number-%016llx:"
/* What the parse makes of it: NUL, then the same from 'p'. */
#define PLACEHOLDER_LEN		(1 + 11 + 16 + 1)

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

/* Fail a load the way jansson does, with our own reason. */
static void
set_error(json_error_t *e, const char *text)
{
	snprintf(e->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", text);
	e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_invalid_format;
}

/* The marked number a placeholder string stands for, or NULL if v is not
 * one. */
static json_t *
marked(const json_t *v, const char *ph)
{
	struct buf	 b;
	json_t		*m;
	size_t		 n;

	if (!json_is_string(v) || (n = json_string_length(v)) <=
	    PLACEHOLDER_LEN || memcmp(json_string_value(v), ph,
	    PLACEHOLDER_LEN) != 0)
		return NULL;
	buf_init(&b);
	buf_add(&b, JSONLD_NUMBER_MARK, JSONLD_NUMBER_MARKLEN);
	buf_add(&b, json_string_value(v) + PLACEHOLDER_LEN,
	    n - PLACEHOLDER_LEN);
	m = json_stringn_nocheck((const char *)b.data, b.len);
	buf_free(&b);
	if (m == NULL)
		fatalx("json_stringn_nocheck failed");
	return m;
}

/* Replace every placeholder under v by its marked number; how many. */
static size_t
mark_numbers(json_t *v, const char *ph)
{
	json_t		*m, *c;
	void		*it;
	size_t		 i, n = 0;

	if (json_is_array(v)) {
		json_array_foreach(v, i, c) {
			if ((m = marked(c, ph)) != NULL) {
				json_array_set_new(v, i, m);
				n++;
			} else
				n += mark_numbers(c, ph);
		}
	} else if (json_is_object(v)) {
		for (it = json_object_iter(v); it != NULL;
		    it = json_object_iter_next(v, it)) {
			c = json_object_iter_value(it);
			if ((m = marked(c, ph)) != NULL) {
				json_object_iter_set_new(v, it, m);
				n++;
			} else
				n += mark_numbers(c, ph);
		}
	}
	return n;
}

/* Whether the integer text [s, s + n) has more digits than Python takes. */
static bool
too_many_digits(const char *s, size_t n)
{
	if (n > 0 && *s == '-') {
		s++;
		n--;
	}
	return n > JSONLD_MAX_DIGITS && memchr(s, '.', n) == NULL &&
	    memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL;
}

/*
 * Where the string whose contents start at p ends (its closing quote), or
 * end: memchr to each quote, which closes the string unless an odd run of
 * backslashes escapes it.  Most of a detail's bytes are string contents:
 * a byte at a time, this pass cost a twentieth of a parse.
 */
static const char *
string_end(const char *p, const char *end)
{
	const char	*q, *b;

	while ((q = memchr(p, '"', (size_t)(end - p))) != NULL) {
		for (b = q; b > p && b[-1] == '\\'; b--)
			;
		if ((q - b) % 2 == 0)
			return q;
		p = q + 1;
	}
	return end;
}

/* How many values and keys the text has, at most: a pass over the bytes
 * counting what starts one outside strings. */
static size_t
count_values(const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len;
	size_t		 n = 1;

	for (; p < end; p++) {
		if (*p == '"') {
			if ((p = string_end(p + 1, end)) == end)
				break;
		} else if (*p == ',' || *p == ':' || *p == '[' || *p == '{')
			n++;
	}
	return n;
}

json_t *
jsonld_load(const char *buf, size_t len, size_t flags, json_error_t *e)
{
	return jsonld_load_bounded(buf, len, flags, 0, e);
}

json_t *
jsonld_load_bounded(const char *buf, size_t len, size_t flags,
    size_t max_values, json_error_t *e)
{
	struct buf		 cur, nb;
	json_t			*j, *m;
	size_t			 end, start, n;
	unsigned long long	 nonce = 0;
	char			 text[64], ph[64];

	if (max_values > 0 && count_values(buf, len) > max_values) {
		memset(e, 0, sizeof *e);
		e->line = e->column = -1;
		snprintf(e->text, JSON_ERROR_TEXT_LENGTH - 1, "more than %zu "
		    "values (a small multiple of the size limit in memory)",
		    max_values);
		e->text[JSON_ERROR_TEXT_LENGTH - 1] =
		    (char)json_error_invalid_format;
		return NULL;
	}
	j = json_loadb(buf, len, flags | JSON_ALLOW_NUL, e);
	if (j != NULL || json_error_code(e) != json_error_numeric_overflow)
		return j;
	/* No nonce (no getrandom): the count below still refuses a spoof. */
	(void)getrandom(&nonce, sizeof nonce, 0);
	snprintf(text, sizeof text, PLACEHOLDER_TEXT, nonce);
	ph[0] = '\0';
	snprintf(ph + 1, sizeof ph - 1, "%s", text + 6);

	buf_init(&cur);
	buf_add(&cur, buf, len);
	for (n = 0; n < MAX_REWRITES; n++) {
		end = (size_t)e->position;
		if (end > cur.len || (start = number_start((char *)cur.data,
		    end)) == end)
			break;
		if (too_many_digits((char *)cur.data + start, end - start)) {
			set_error(e, "an integer of more than 4300 digits");
			break;
		}
		buf_init(&nb);
		buf_add(&nb, cur.data, start);
		buf_addc(&nb, '"');
		buf_adds(&nb, text);
		buf_add(&nb, cur.data + start, end - start);
		buf_addc(&nb, '"');
		buf_add(&nb, cur.data + end, cur.len - end);
		buf_free(&cur);
		cur = nb;
		j = json_loadb((char *)cur.data, cur.len,
		    flags | JSON_ALLOW_NUL, e);
		if (j != NULL ||
		    json_error_code(e) != json_error_numeric_overflow)
			break;
	}
	buf_free(&cur);
	if (j == NULL)
		return NULL;
	if ((m = marked(j, ph)) != NULL) {	/* the document is one number */
		json_decref(j);
		return m;
	}
	if (mark_numbers(j, ph) != n + 1) {
		/* A string of the document spells the placeholder. */
		json_decref(j);
		set_error(e, "a string spells the loader's number mark");
		return NULL;
	}
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

/* Append v as compact JSON, marked numbers as numbers; -1 on failure. */
static int
dump(const json_t *v, struct buf *b)
{
	json_t		*o = (json_t *)v;	/* iterators are not const */
	json_t		*k;
	const char	*num;
	char		*s;
	void		*it;
	size_t		 i, n;

	if ((num = jsonld_number(v, &n)) != NULL) {
		buf_add(b, num, n);
		return 0;
	}
	if (json_is_array(v)) {
		buf_addc(b, '[');
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				buf_addc(b, ',');
			if (dump(json_array_get(v, i), b) == -1)
				return -1;
		}
		buf_addc(b, ']');
		return 0;
	}
	if (json_is_object(v)) {
		buf_addc(b, '{');
		for (it = json_object_iter(o); it != NULL;
		    it = json_object_iter_next(o, it)) {
			if (it != json_object_iter(o))
				buf_addc(b, ',');
			k = json_stringn(json_object_iter_key(it),
			    json_object_iter_key_len(it));
			s = k != NULL ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
			json_decref(k);
			if (s == NULL)
				return -1;
			buf_adds(b, s);
			jarena_free(s);
			buf_addc(b, ':');
			if (dump(json_object_iter_value(it), b) == -1)
				return -1;
		}
		buf_addc(b, '}');
		return 0;
	}
	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return -1;
	buf_adds(b, s);
	jarena_free(s);
	return 0;
}

char *
jsonld_dumps(const json_t *v)
{
	struct buf	 b;
	char		*s, *p;

	/* jansson refuses the 0xFF of a mark: only then walk ourselves. */
	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		/* jansson's memory may be a parse's arena: copy it out. */
		p = xstrdup(s);
		jarena_free(s);
		return p;
	}
	buf_init(&b);
	if (dump(v, &b) == -1) {
		buf_free(&b);
		return NULL;
	}
	return (char *)buf_steal(&b, NULL);	/* NUL-terminated */
}
