/*
 * main.c: the command line (SPEC §8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include "config.h"
#include "daemon.h"
#include "jarena.h"
#include "log.h"
#include "monitor.h"
#include "settings.h"
#include "snapfile.h"
#include "snapshot.h"
#include "statedir.h"
#include "store.h"

static const char usage_text[] =
"usage: programs-cached [-c FILE] [--once | --dry-run] [--domain DOMAIN]\n"
"                       [--force]\n"
"       programs-cached [-c FILE] --check-config | --verify\n"
"       programs-cached --version | --help\n"
"\n"
"Keep the Open edX LMS programs cache in memcached or Redis filled from\n"
"Discovery.\n"
"\n"
"  -c, --config FILE   configuration file\n"
"                      (default " CFG_DEFAULT_PATH ")\n"
"      --once          refresh and publish once, then exit: 0 when every\n"
"                      site was published, 1 on any failure, 2 on bad\n"
"                      usage or configuration\n"
"      --domain DOMAIN only refresh the site with this domain\n"
"      --dry-run       fetch and build once, write nothing: print each key\n"
"                      that would change and a summary per family\n"
"      --force         publish sites whose program count fell by more than\n"
"                      max_shrink (or to zero) instead of holding them\n"
"      --check-config  validate the configuration and exit (0 or 2); a\n"
"                      secret file it cannot read is only a warning\n"
"      --verify        compare the cache with the last published snapshot:\n"
"                      print each key missing or different, then a\n"
"                      summary; exit 0 if none, 1 if any, 2 if there is\n"
"                      no snapshot or bad usage or configuration\n"
"      --version       print the version and exit\n"
"  -h, --help          print this help and exit\n"
"\n"
"Signals: SIGHUP re-reads the configuration and refreshes now;\n"
"SIGUSR1 re-publishes the snapshot without asking Discovery;\n"
"SIGTERM and SIGINT stop.  See programs-cached(8).\n";

enum {
	OPT_ONCE = 256,
	OPT_DOMAIN,
	OPT_FORCE,
	OPT_DRY_RUN,
	OPT_CHECK_CONFIG,
	OPT_VERIFY,
	OPT_VERSION,
	OPT_PRINT_SETTINGS
};

static const struct option longopts[] = {
	{ "config",		required_argument,	NULL, 'c' },
	{ "once",		no_argument,		NULL, OPT_ONCE },
	{ "domain",		required_argument,	NULL, OPT_DOMAIN },
	{ "force",		no_argument,		NULL, OPT_FORCE },
	{ "dry-run",		no_argument,		NULL, OPT_DRY_RUN },
	{ "check-config",	no_argument,		NULL, OPT_CHECK_CONFIG },
	{ "verify",		no_argument,		NULL, OPT_VERIFY },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	/* Not in --help: every key, its help and default, for the docs. */
	{ "print-settings",	no_argument,		NULL,
	    OPT_PRINT_SETTINGS },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL,			0,			NULL, 0 }
};

/* Bad usage: say what and how to get help, exit 2. */
static void
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "programs-cached: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'programs-cached --help'.\n");
	exit(PCD_EXIT_USAGE);
}

static void
print_version(void)
{
	printf("programs-cached %s\n", PCD_VERSION);
	printf("libcurl %s, libevent %s, jansson %s, libmemcached %s, "
	    "hiredis %d.%d.%d\n", curl_version_info(CURLVERSION_NOW)->version,
	    event_get_version(), jansson_version_str(),
	    memcached_lib_version(), HIREDIS_MAJOR, HIREDIS_MINOR,
	    HIREDIS_PATCH);
}

/*
 * --verify: the cache against the snapshot file, on stdout.  Read-only:
 * nothing in state_dir is created, locked or removed.
 */
static int
verify_cache(const struct cfg *cfg)
{
	struct snapshot	*snap;
	struct store	*st;
	struct keyfn	 kf;
	char		*path, *set;
	int		 rc = PCD_EXIT_USAGE;

	path = snapshot_path(cfg->state_dir);
	set = snapshot_settings(cfg);
	st = store_new(cfg);
	key_init(&kf, cfg->key_function, cfg->long_key_hash, cfg->key_prefix,
	    cfg->key_version);
	if ((snap = snapshot_load(path, set, &kf, st, NULL)) == NULL) {
		if (errno == ENOENT)
			fprintf(stderr, "programs-cached: no snapshot at %s: "
			    "nothing was published with this state_dir\n",
			    path);
		goto out;
	}
	rc = monitor_compare(st, snap, stdout) == 0 ? PCD_EXIT_OK :
	    PCD_EXIT_FAIL;
	snapshot_free(snap);
out:
	key_clear(&kf);
	store_free(st);
	free(set);
	free(path);
	return rc;
}

/*
 * The daemon, --once and --domain write state_dir: become its one writer
 * for the life of the process.  0, or the exit status when another
 * process is the writer.  A directory that may not be used is reported
 * by the load and by every save (snapshot_ignored, snapshot_error), which
 * it never makes; the cache is still refreshed.
 */
static int
lock_state_dir(const struct cfg *cfg)
{
	char	why[512];
	pid_t	holder;

	switch (statedir_lock(cfg->state_dir, &holder, why, sizeof why)) {
	case STATEDIR_LOCKED:
	case STATEDIR_UNTRUSTED:
		return 0;
	case STATEDIR_BUSY:
		log_event(LOG_ERR, "state_dir_locked", "dir=%s pid=%ld "
		    "error=%s", cfg->state_dir, (long)holder, why);
		return PCD_EXIT_FAIL;
	case STATEDIR_ERROR:
	default:
		log_event(LOG_ERR, "snapshot_error", "file=%s/%s op=lock "
		    "error=%s", cfg->state_dir, STATEDIR_LOCK, why);
		return 0;
	}
}

int
main(int argc, char *argv[])
{
	struct daemon_opts	 opts;
	struct cfg		*cfg;
	bool			 check = false, verify = false;
	int			 ch;

	memset(&opts, 0, sizeof opts);
	opts.config_path = CFG_DEFAULT_PATH;
	log_setup(LOG_FORMAT_AUTO, LOG_INFO);

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opts.config_path = optarg;
			break;
		case OPT_ONCE:
			opts.once = true;
			break;
		case OPT_DOMAIN:
			opts.domain = optarg;
			break;
		case OPT_FORCE:
			opts.force = true;
			break;
		case OPT_DRY_RUN:
			opts.dry_run = opts.once = true;
			break;
		case OPT_CHECK_CONFIG:
			check = true;
			break;
		case OPT_VERIFY:
			verify = true;
			break;
		case OPT_VERSION:
			print_version();
			return 0;
		case OPT_PRINT_SETTINGS:
			settings_print(stdout);
			return 0;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			usage_error("option %s needs an argument",
			    argv[optind - 1]);
			break;
		default:
			usage_error("unknown option %s", argv[optind - 1]);
			break;
		}
	}
	if (optind < argc)
		usage_error("unexpected argument %s", argv[optind]);
	if (verify && (opts.once || check || opts.domain != NULL))
		usage_error("%s cannot be combined with --once, --domain or "
		    "--check-config", "--verify");

	/*
	 * The secret may be readable only by the unit (LoadCredential):
	 * --check-config warns if it cannot read it, --verify never needs it.
	 */
	if ((cfg = cfg_load_with(opts.config_path, check ? CFG_SECRETS_WARN :
	    verify ? CFG_SECRETS_SKIP : CFG_SECRETS_READ, NULL, 0)) == NULL)
		return PCD_EXIT_USAGE;
	log_setup(cfg->log_format, cfg->log_level);
	if (opts.domain != NULL && cfg_site(cfg, opts.domain) == NULL) {
		log_event(LOG_ERR, "config_error", "file=%s key=site error=%s "
		    "domain=%s", cfg->path, "--domain names no [site] section",
		    opts.domain);
		cfg_free(cfg);
		return PCD_EXIT_USAGE;
	}
	log_event(LOG_INFO, "config_loaded", "file=%s sites=%zu servers=%zu "
	    "version=%s", cfg->path, cfg->nsites, cfg->nservers, PCD_VERSION);
	if (check) {
		cfg_free(cfg);
		return PCD_EXIT_OK;
	}
	if (verify) {
		ch = verify_cache(cfg);
		cfg_free(cfg);
		return ch;
	}

	if (!opts.dry_run && (ch = lock_state_dir(cfg)) != 0) {
		cfg_free(cfg);
		return ch;
	}
	/* A write to a closed socket must be an error, not death. */
	signal(SIGPIPE, SIG_IGN);
	json_object_seed(0);
	jarena_init();
	return daemon_run(cfg, &opts);
}
