/*
 * jarena.h: an arena for the jansson values of one parse.
 *
 * Parsing a detail allocates thousands of small values that all die
 * together a moment later; between jarena_begin() and jarena_end() on a
 * thread, jansson allocates them from a few large chunks instead (a bump
 * pointer; free is a no-op), and jarena_end() drops the chunks at once.
 * Other threads, and this one outside the bracket, use malloc as before.
 *
 * jarena_init() installs the hooks (json_set_alloc_funcs) once for the
 * whole process, before any thread starts and before any jansson value
 * exists.  Nothing allocated inside the bracket may outlive it: keep a
 * value by copying it with jarena_pause() in effect.  Strings jansson
 * hands out (json_dumps) must be freed with jarena_free(), not free().
 */
#ifndef PCD_JARENA_H
#define PCD_JARENA_H

#include <stdbool.h>
#include <stddef.h>

struct jarena_chunk;

struct jarena {
	struct jarena_chunk	*chunks;	/* newest first */
	struct jarena		*saved;		/* the one it replaced */
	size_t			 used;		/* bytes handed out */
	bool			 paused;	/* malloc for now */
};

void	jarena_init(void);
/* Allocate this thread's jansson values from a (until jarena_end). */
void	jarena_begin(struct jarena *a);
/* Free everything allocated from a; the previous arena (or none) again. */
void	jarena_end(struct jarena *a);
/*
 * Allocate with malloc for a while inside a bracket (what is kept after
 * it); the arena's values may still be freed meanwhile.  The arena (or
 * NULL) is returned for jarena_resume().
 */
struct jarena	*jarena_pause(void);
void		 jarena_resume(struct jarena *);
/* jansson's free: for what json_dumps returns. */
void	jarena_free(void *);

#endif
