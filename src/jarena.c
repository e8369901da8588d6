/*
 * jarena.c: jansson's allocator hooks, with a per-thread arena bracket.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jarena.h"
#include "util.h"

/* Chunks of this size; a larger allocation gets a chunk of its own. */
#define CHUNK_SIZE	(256 * 1024)
#define ALIGN		16

struct jarena_chunk {
	struct jarena_chunk	*next;
	size_t			 size;		/* of data */
	size_t			 off;		/* first free byte */
	_Alignas(ALIGN) unsigned char data[];
};

/* This thread's arena, or NULL: malloc. */
static __thread struct jarena	*cur;

/* A new chunk of at least n bytes, first in a's list. */
static struct jarena_chunk *
chunk_new(struct jarena *a, size_t n)
{
	struct jarena_chunk	*c;
	size_t			 size = n > CHUNK_SIZE ? n : CHUNK_SIZE;

	c = xmalloc(sizeof *c + size);
	c->size = size;
	c->off = 0;
	c->next = a->chunks;
	a->chunks = c;
	return c;
}

/* jansson's malloc: from the arena when there is one. */
static void *
hook_malloc(size_t n)
{
	struct jarena		*a = cur;
	struct jarena_chunk	*c;
	void			*p;

	if (a == NULL || a->paused)
		return malloc(n);
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	c = a->chunks;
	if (c == NULL || c->size - c->off < n) {
		if (n > CHUNK_SIZE / 4 && c != NULL) {
			/* A big one: its own chunk, behind the current. */
			c = chunk_new(a, n);
			a->chunks = c->next;
			c->next = a->chunks->next;
			a->chunks->next = c;
		} else
			c = chunk_new(a, n);
	}
	p = c->data + c->off;
	c->off += n;
	a->used += n;
	return p;
}

/* Whether p was handed out by a. */
static int
in_arena(const struct jarena *a, const void *p)
{
	const struct jarena_chunk	*c;
	uintptr_t			 u = (uintptr_t)p;

	for (c = a->chunks; c != NULL; c = c->next)
		if (u >= (uintptr_t)c->data && u < (uintptr_t)c->data + c->size)
			return 1;
	return 0;
}

/* jansson's free: nothing for the arena's, free() for the rest. */
static void
hook_free(void *p)
{
	struct jarena	*a = cur;

	if (p == NULL || (a != NULL && in_arena(a, p)))
		return;
	free(p);
}

void
jarena_init(void)
{
	json_set_alloc_funcs(hook_malloc, hook_free);
}

void
jarena_begin(struct jarena *a)
{
	a->chunks = NULL;
	a->used = 0;
	a->paused = false;
	a->saved = cur;
	cur = a;
}

void
jarena_end(struct jarena *a)
{
	struct jarena_chunk	*c, *next;

	for (c = a->chunks; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->chunks = NULL;
	cur = a->saved;
}

struct jarena *
jarena_pause(void)
{
	struct jarena	*a = cur;

	if (a != NULL)
		a->paused = true;
	return a;
}

void
jarena_resume(struct jarena *a)
{
	if (a != NULL)
		a->paused = false;
}

void
jarena_free(void *p)
{
	hook_free(p);
}
