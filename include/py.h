/*
 * py.h: Python's semantics where cache_programs' output depends on them:
 * str() of a scalar in a key template, str.lower() of a type name, and the
 * truthiness of a JSON value.
 */
#ifndef PCD_PY_H
#define PCD_PY_H

#include <stdbool.h>

#include <jansson.h>

/*
 * str(v) for a JSON scalar used in a key template: strings as they are,
 * null "None", booleans "True"/"False", integers in decimal.  NULL for
 * anything else (reals, lists, objects: keys no reader asks for) and for
 * strings with a NUL.  The caller frees.
 */
char	*py_str(const json_t *);
/* str.lower() (simple case mapping; see py.c).  The caller frees. */
char	*py_lower(const char *);
/* bool(v); NULL (absent, as .get() gives) is false. */
bool	 py_truthy(const json_t *);

#endif
