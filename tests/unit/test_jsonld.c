/*
 * test_jsonld.c: jsonld_load_bounded's value budget.  The count before
 * the parse is 1 plus every ',' ':' '[' '{' outside strings: what is in a
 * string never counts, however it is escaped (a quote after an odd run of
 * backslashes is in the string; after an even run it ends it), and a
 * document at its budget parses while one value more is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "jsonld.h"
#include "t.h"

/* Whether text parses within max values (refused: the budget's error). */
static bool
fits(const char *text, size_t max)
{
	json_error_t	 e;
	json_t		*j;

	j = jsonld_load_bounded(text, strlen(text), JSON_DECODE_ANY, max, &e);
	if (j == NULL) {
		T_CHECK(strstr(e.text, "values") != NULL);
		return false;
	}
	json_decref(j);
	return true;
}

/* text counts exactly n: it fits n and not n - 1. */
static void
counts(const char *text, size_t n)
{
	T_CHECK(fits(text, n));
	T_CHECK(!fits(text, n - 1));
}

static void
test_structure(void)
{
	counts("[1,2,3]", 4);
	counts("{\"a\":1,\"b\":[2,{}]}", 8);
	counts("[[]]", 3);
	counts("[]", 2);
}

static void
test_strings_do_not_count(void)
{
	counts("[\"a,b:c[d{e\"]", 2);
	/* An escaped quote does not end the string: its comma is inside. */
	counts("[\"a\\\",b\"]", 2);
	counts("[\"\\\"\\\"\\\",\"]", 2);
	/* An escaped backslash does not escape the quote after it. */
	counts("[\"a\\\\\",1]", 3);
	counts("[\"\\\\\\\\\",1,2]", 4);
	/* Three backslashes: an escaped backslash, then an escaped quote. */
	counts("[\"\\\\\\\",x\",1]", 3);
	counts("{\"k,\\\"[\":\"v:{\"}", 3);
}

static void
test_long_string(void)
{
	size_t	 n = 200000, i;
	char	*s = malloc(n + 8);

	s[0] = '[';
	s[1] = '"';
	for (i = 2; i < n; i++)
		s[i] = i % 7 == 0 ? ',' : i % 11 == 0 ? '{' : 'x';
	memcpy(s + n, "\",1]", 5);
	counts(s, 3);
	free(s);
}

static void
test_unterminated(void)
{
	json_error_t	e;

	/* Counted to the end (nothing after the open quote counts), then
	 * refused by the parser, not by the budget. */
	T_CHECK(jsonld_load_bounded("[\",,,,", 6, JSON_DECODE_ANY, 2, &e) ==
	    NULL);
	T_CHECK(strstr(e.text, "values") == NULL);
	T_CHECK(jsonld_load_bounded("[1,\"\\", 5, JSON_DECODE_ANY, 3, &e) ==
	    NULL);
	T_CHECK(strstr(e.text, "values") == NULL);
}

int
main(void)
{
	test_structure();
	test_strings_do_not_count();
	test_long_string();
	test_unterminated();
	return t_done();
}
