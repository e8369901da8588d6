/*
 * main.c: the command line (configuration.md: Configuration).
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
#include "health.h"
#include "jarena.h"
#include "log.h"
#include "monitor.h"
#include "settings.h"
#include "show.h"
#include "snapfile.h"
#include "snapshot.h"
#include "statedir.h"
#include "store.h"

static const char usage_text[] =
"usage: programs-cached [-c FILE] [--once | --dry-run [--diff KEY]]\n"
"                       [--domain DOMAIN] [--force]\n"
"       programs-cached [-c FILE] --check-config | --verify | --health\n"
"       programs-cached [-c FILE] --show KEY [--json]\n"
"       programs-cached --print-settings | --version | --help\n"
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
"                      that would be written (new or changed), deleted\n"
"                      (stale) or held (shrink guard), and a summary\n"
"      --diff KEY      with --dry-run: the field-level changes of KEY's\n"
"                      value (a program's detail) against the cache's\n"
"      --force         publish sites whose program count fell by more than\n"
"                      max_shrink (or to zero) instead of holding them\n"
"      --check-config  validate the configuration and exit (0 or 2); a\n"
"                      secret file it cannot read is only a warning\n"
"      --verify        compare the cache with the last published snapshot:\n"
"                      print each key missing or different, then a\n"
"                      summary; exit 0 if none, 1 if any, 2 if there is\n"
"                      no snapshot or bad usage or configuration\n"
"      --print-settings\n"
"                      print every configuration key with its help and\n"
"                      default, as a configuration file, and exit\n"
"      --health        ask the running daemon's listener (listen) for\n"
"                      /readyz: exit 0 if ready, 1 if not or no answer\n"
"      --show KEY      what the cache and the snapshot hold under an LMS\n"
"                      key (or a course run key alone), decoded, and\n"
"                      whether they agree (exit 0) or not (exit 1);\n"
"                      writes nothing\n"
"      --json          with --show: one JSON object instead of text\n"
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
	OPT_HEALTH,
	OPT_VERSION,
	OPT_PRINT_SETTINGS,
	OPT_SHOW,
	OPT_JSON,
	OPT_DIFF
};

static const struct option longopts[] = {
	{ "config",		required_argument,	NULL, 'c' },
	{ "once",		no_argument,		NULL, OPT_ONCE },
	{ "domain",		required_argument,	NULL, OPT_DOMAIN },
	{ "force",		no_argument,		NULL, OPT_FORCE },
	{ "dry-run",		no_argument,		NULL, OPT_DRY_RUN },
	{ "check-config",	no_argument,		NULL, OPT_CHECK_CONFIG },
	{ "verify",		no_argument,		NULL, OPT_VERIFY },
	{ "health",		no_argument,		NULL, OPT_HEALTH },
	{ "show",		required_argument,	NULL, OPT_SHOW },
	{ "json",		no_argument,		NULL, OPT_JSON },
	{ "diff",		required_argument,	NULL, OPT_DIFF },
	{ "version",		no_argument,		NULL, OPT_VERSION },
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
	const char		*show = NULL;
	char			*key = NULL;
	bool			 check = false, verify = false, once = false;
	bool			 health = false, json = false;
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
			opts.once = once = true;
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
		case OPT_HEALTH:
			health = true;
			break;
		case OPT_SHOW:
			show = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_DIFF:
			opts.diff = optarg;
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
	/* --dry-run is a one-shot run of its own: with --once, which wins? */
	if (once && opts.dry_run)
		usage_error("%s and --dry-run exclude each other (--dry-run "
		    "runs once and writes nothing)", "--once");
	if (verify && (opts.once || check || opts.domain != NULL))
		usage_error("%s cannot be combined with --once, --domain or "
		    "--check-config", "--verify");
	if (health && (verify || opts.once || check || opts.domain != NULL ||
	    opts.force || show != NULL))
		usage_error("%s cannot be combined with another mode or "
		    "--domain", "--health");
	if (show != NULL && (opts.once || check || verify ||
	    opts.domain != NULL || opts.force))
		usage_error("%s cannot be combined with --once, --dry-run, "
		    "--domain, --force, --check-config or --verify", "--show");
	if (json && show == NULL)
		usage_error("%s is only for --show", "--json");
	if (opts.diff != NULL && !opts.dry_run)
		usage_error("%s is only for --dry-run", "--diff");
	if (show != NULL && (key = show_key_of(show)) == NULL)
		usage_error("--show %s names no key of the programs cache",
		    show);
	if (opts.diff != NULL && (key = show_key_of(opts.diff)) == NULL)
		usage_error("--diff %s names no key of the programs cache",
		    opts.diff);
	opts.diff = key;

	/*
	 * The secret may be readable only by the unit (LoadCredential):
	 * --check-config warns if it cannot read it, --verify never needs it.
	 */
	if ((cfg = cfg_load_with(opts.config_path, check ? CFG_SECRETS_WARN :
	    verify || health || show != NULL ? CFG_SECRETS_SKIP :
	    CFG_SECRETS_READ, NULL, 0)) == NULL)
		return health ? PCD_EXIT_FAIL : PCD_EXIT_USAGE;
	if (health) {
		/* Before config_loaded: a container manager runs it often. */
		ch = health_check(cfg);
		cfg_free(cfg);
		return ch;
	}
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
	if (show != NULL) {
		/* Read-only: the snapshot read, the servers asked. */
		ch = show_key(cfg, key, json, stdout) == 0 ? PCD_EXIT_OK :
		    PCD_EXIT_FAIL;
		free(key);
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
	ch = daemon_run(cfg, &opts);
	free(key);
	return ch;
}
