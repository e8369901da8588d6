/*
 * fuzz_config.c: any file as the configuration: cfg_load either refuses it
 * (having said why) or returns a configuration whose invariants hold.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char	 path[64];
	struct cfg	*cfg;
	FILE		*f;
	size_t		 i;

	log_setup(LOG_FORMAT_JSON, -1);
	if (path[0] == '\0')
		snprintf(path, sizeof path, "/tmp/pcd-fuzz-config.%d",
		    (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, len, f);
	fclose(f);
	if ((cfg = cfg_load(path)) == NULL)
		return 0;
	if (cfg->nsites == 0 || cfg->nservers == 0 || cfg->max_in_flight < 1 ||
	    cfg->pickle_protocol < 2 || cfg->pickle_protocol > 5 ||
	    cfg->max_shrink < 0 || cfg->max_shrink > 1)
		abort();
	for (i = 0; i < cfg->nsites; i++) {
		if (cfg->sites[i].site_id < 0 || cfg->sites[i].domain[0] == '\0')
			abort();
		if (i > 0 && strcmp(cfg->sites[i - 1].domain,
		    cfg->sites[i].domain) >= 0)
			abort();	/* sorted, no duplicates */
	}
	for (i = 0; i < cfg->nservers; i++)
		if (cfg->servers[i].port < 1 || cfg->servers[i].port > 65535)
			abort();
	cfg_free(cfg);
	return 0;
}
