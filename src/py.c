/*
 * py.c: the few of Python's semantics the key families depend on.
 */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "jsonld.h"
#include "log.h"
#include "py.h"
#include "util.h"

/*
 * Python's str() of a JSON scalar used in a key template: strings as they
 * are, null "None", booleans "True"/"False", integers in decimal.  Anything
 * else (reals, lists, objects) is refused: upstream would make keys such as
 * "organization-programs-{'a': 1}", which no reader asks for.  NULL if
 * refused; the caller frees.  Strings with a NUL are refused too.
 */
char *
py_str(const json_t *v)
{
	const char	*num;
	size_t		 len;

	if ((num = jsonld_number(v, &len)) != NULL)
		return strchr(num, '.') == NULL && strpbrk(num, "eE") == NULL ?
		    xstrndup(num, len) : NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (strlen(json_string_value(v)) != json_string_length(v))
			return NULL;
		return xstrdup(json_string_value(v));
	case JSON_NULL:
		return xstrdup("None");
	case JSON_TRUE:
		return xstrdup("True");
	case JSON_FALSE:
		return xstrdup("False");
	case JSON_INTEGER:
		return xasprintf("%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	default:
		return NULL;
	}
}

/* The C.UTF-8 locale, made once whichever thread asks first. */
static pthread_once_t	utf8_once = PTHREAD_ONCE_INIT;
static locale_t		utf8_loc;

static void
utf8_init(void)
{
	utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/*
 * str.lower() for a type name.  Simple (one-to-one) Unicode case mapping
 * from the C.UTF-8 locale: the same as Python's for every letter used in
 * program type names; Python's full mappings (U+0130 to "i̇", final sigma)
 * are not reproduced.
 */
char *
py_lower(const char *s)
{
	locale_t	 loc, old;
	struct buf	 b;
	mbstate_t	 in, out;
	size_t		 len = strlen(s), n;
	wchar_t		 wc;
	char		 mb[8];

	pthread_once(&utf8_once, utf8_init);
	if ((loc = utf8_loc) == (locale_t)0)
		fatal("newlocale C.UTF-8");
	old = uselocale(loc);
	buf_init(&b);
	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	while (len > 0) {
		n = mbrtowc(&wc, s, len, &in);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			/* Not UTF-8 (jansson never gives us that): keep it. */
			buf_addc(&b, (unsigned char)*s);
			memset(&in, 0, sizeof in);
			s++;
			len--;
			continue;
		}
		wc = (wchar_t)towlower((wint_t)wc);
		buf_add(&b, mb, wcrtomb(mb, wc, &out));
		s += n;
		len -= n;
	}
	uselocale(old);
	if (b.data == NULL)
		buf_add(&b, "", 0);
	return (char *)buf_steal(&b, NULL);
}

/* Python truthiness of a JSON value (NULL: absent, as .get() gives). */
bool
py_truthy(const json_t *v)
{
	if (v == NULL)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return json_object_size(v) != 0;
	case JSON_ARRAY:
		return json_array_size(v) != 0;
	case JSON_STRING:
		return json_string_length(v) != 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0;
	case JSON_TRUE:
		return true;
	default:
		return false;
	}
}
