/*
 * catalog.c: generations and their sites.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "util.h"

struct catalog_site *
catalog_site_new(const char *domain, long site_id)
{
	struct catalog_site	*s;

	s = xcalloc(1, sizeof *s);
	s->domain = xstrdup(domain);
	s->site_id = site_id;
	s->status = SITE_OK;
	return s;
}

struct catalog_site *
catalog_site_copy(const struct catalog_site *src)
{
	struct catalog_site	*s;
	size_t			 i;

	s = catalog_site_new(src->domain, src->site_id);
	s->status = src->status;
	s->has_data = src->has_data;
	s->pathways_failed = src->pathways_failed;
	s->full_ok = src->full_ok;
	s->incr = src->incr;
	s->uuids = xreallocarray(NULL, src->nuuids + 1, sizeof *s->uuids);
	for (i = 0; i < src->nuuids; i++)
		s->uuids[i] = xstrdup(src->uuids[i]);
	s->nuuids = src->nuuids;
	s->programs = xreallocarray(NULL, src->nprograms + 1,
	    sizeof *s->programs);
	for (i = 0; i < src->nprograms; i++)
		s->programs[i] = program_ref(src->programs[i]);
	s->nprograms = src->nprograms;
	s->pathways = src->pathways != NULL ? json_incref(src->pathways) :
	    NULL;
	return s;
}

void
catalog_site_free(struct catalog_site *s)
{
	size_t	i;

	if (s == NULL)
		return;
	free(s->domain);
	for (i = 0; i < s->nuuids; i++)
		free(s->uuids[i]);
	free(s->uuids);
	for (i = 0; i < s->nprograms; i++)
		program_unref(s->programs[i]);
	free(s->programs);
	json_decref(s->pathways);
	free(s);
}

void
catalog_site_add_program(struct catalog_site *s, struct program *p)
{
	s->programs = xreallocarray(s->programs, s->nprograms + 1,
	    sizeof *s->programs);
	s->programs[s->nprograms++] = p;
}

struct program *
catalog_site_program(const struct catalog_site *s, const char *uuid)
{
	size_t	i;

	for (i = 0; i < s->nprograms; i++)
		if (strcmp(program_uuid(s->programs[i]), uuid) == 0)
			return s->programs[i];
	return NULL;
}

struct catalog *
catalog_new(void)
{
	struct catalog	*c = xcalloc(1, sizeof *c);

	c->refs = 1;
	return c;
}

struct catalog *
catalog_ref(struct catalog *c)
{
	c->refs++;
	return c;
}

void
catalog_unref(struct catalog *c)
{
	size_t	i;

	if (c == NULL || --c->refs > 0)
		return;
	for (i = 0; i < c->nsites; i++)
		catalog_site_free(c->sites[i]);
	free(c->sites);
	free(c);
}

void
catalog_add_site(struct catalog *c, struct catalog_site *s)
{
	c->sites = xreallocarray(c->sites, c->nsites + 1, sizeof *c->sites);
	c->sites[c->nsites++] = s;
}

struct catalog_site *
catalog_find_site(const struct catalog *c, const char *domain)
{
	size_t	i;

	for (i = 0; c != NULL && i < c->nsites; i++)
		if (strcmp(c->sites[i]->domain, domain) == 0)
			return c->sites[i];
	return NULL;
}

const struct catalog *
catalog_hold(const struct catalog *c)
{
	return catalog_ref((struct catalog *)c);
}

void
catalog_release(const struct catalog *c)
{
	catalog_unref((struct catalog *)c);
}

long long
catalog_site_count(const struct catalog *c, const char *domain)
{
	const struct catalog_site	*s = catalog_find_site(c, domain);

	if (s == NULL || !s->has_data)
		return -1;
	return (long long)s->nprograms;
}
