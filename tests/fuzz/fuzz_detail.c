/*
 * fuzz_detail.c: a Discovery program detail, as bytes off the network,
 * through the loader, the program record, the generation (finished with
 * its pathway ids) and the plan: whatever the bytes, the program is
 * either rejected with a reason or encoded, and the entries built from it
 * are well formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gen.h"
#include "jsonld.h"
#include "log.h"
#include "plan.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct plan_opts opts[] = {
		{ VALUE_PICKLE, 4, PATHWAY_IDS_KEYS },
		{ VALUE_PICKLE, 2, PATHWAY_IDS_IDS },
		{ VALUE_JSON, 4, PATHWAY_IDS_KEYS },
	};
	json_error_t		 e;
	json_t			*j, *pw;
	struct catalog		*c;
	struct catalog_site	*s;
	struct program		*p;
	struct plan		*pl;
	struct keyfn		 kf;
	const char		*uuid;
	char			 why[256];
	size_t			 i, k, errors;

	log_setup(LOG_FORMAT_JSON, -1);		/* silence */
	why[0] = '\0';
	if ((j = jsonld_load((const char *)data, len, JSON_DECODE_ANY,
	    &e)) == NULL)
		return 0;
	/* The list names the program the detail says it is, mostly. */
	uuid = json_string_value(json_object_get(j, "uuid"));
	if (uuid == NULL || *uuid == '\0' || len % 7 == 0)
		uuid = "fuzz-uuid";
	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	for (k = 0; k < sizeof opts / sizeof opts[0]; k++) {
		p = program_new(j, uuid, opts[k].format, opts[k].proto, NULL,
		    why, sizeof why);
		if (p == NULL) {
			if (why[0] == '\0')
				abort();	/* a rejection must say why */
			continue;
		}
		c = catalog_new();
		s = catalog_site_new("fuzz.example", 1);
		s->has_data = true;
		s->uuids = malloc(sizeof *s->uuids);
		s->uuids[0] = strdup(uuid);
		s->nuuids = 1;
		catalog_site_add_program(s, p);
		/* A pathway naming it, so that pathway_ids gets an id. */
		pw = json_pack("[{s:i, s:[{s:s}]}]", "id", 7, "programs",
		    "uuid", uuid);
		s->pathways = pw;
		catalog_add_site(c, s);
		errors = 0;
		gen_finish(c, false, &errors);
		pl = plan_build(c, &opts[k], &kf, NULL, 1);
		for (i = 0; i < pl->n; i++)
			if (pl->v[i].val == NULL || pl->v[i].len == 0 ||
			    pl->v[i].wire == NULL)
				abort();
		plan_free(pl);
		catalog_unref(c);
	}
	key_clear(&kf);
	json_decref(j);
	return 0;
}
