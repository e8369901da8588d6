/*
 * settings.h: the table of every configuration key (configuration.md:
 * Configuration).
 *
 * One row per key, as tmux's options-table.c: its section, name, type,
 * range or choices, default, what a change of it needs on SIGHUP (nothing,
 * a new store, a new token, or a restart: settings_differ() compares two
 * configurations by it) and a one-line help.  config.c parses with it
 * and takes every default from it (the default is text, parsed like a
 * value in the file, so what the documentation shows is what is applied);
 * tests/unit/test_settings.c checks that the example configuration and
 * programs-cached.conf(5) name every key of it and nothing else.
 *
 * A new section is new rows with its name; a key of a per-site section
 * ([site DOMAIN]) has scope SETTING_SITE and an offset in struct cfg_site.
 * The table is constant and lives for the whole process.
 */
#ifndef PCD_SETTINGS_H
#define PCD_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util.h"

struct cfg;

enum setting_type {
	SETTING_STRING,		/* char *, any text */
	SETTING_DURATION,	/* "250ms", "5s", "15m", "1h": milliseconds */
	SETTING_SIZE,		/* "64M", "1K", bytes */
	SETTING_INT,		/* an integer */
	SETTING_BOOL,		/* true/false, yes/no, on/off, 1/0 */
	SETTING_FRACTION,	/* "10%" or "0.1", 0 to 1 */
	SETTING_CHOICE,		/* one of choices: stored as its index */
	SETTING_SERVERS,	/* memcached servers: cfg->servers, nservers */
	SETTING_LISTEN,		/* host:port of the HTTP listener */
	SETTING_LOGFORMAT,	/* enum log_format */
	SETTING_LOGLEVEL,	/* syslog priority */
	SETTING_SITE_ID,	/* a Django Site id: long, >= 0 */
	SETTING_URL		/* http:// or https://, trailing / removed */
};

enum setting_scope {
	SETTING_GLOBAL,		/* a field of struct cfg */
	SETTING_SITE		/* a field of struct cfg_site, per [site D] */
};

/* The C type of the field a number is stored in. */
enum setting_ctype {
	SETTING_C_INT,
	SETTING_C_LONG,
	SETTING_C_SIZE,		/* size_t */
	SETTING_C_OTHER
};

/*
 * What a change of a key needs when SIGHUP loads a new configuration: each
 * row has exactly one.
 */
enum setting_change {
	SETTING_APPLIES = 1 << 0,	/* nothing: read anew from now on */
	SETTING_NEW_STORE = 1 << 1,	/* a new store, every key rewritten */
	SETTING_NEW_TOKEN = 1 << 2,	/* a new OAuth2 client and token */
	SETTING_RESTART = 1 << 3	/* read at start-up only */
};

struct setting {
	const char		*section;	/* "site" for [site D] */
	const char		*name;
	enum setting_type	 type;
	enum setting_scope	 scope;
	size_t			 off;		/* of the field */
	enum setting_ctype	 ctype;
	unsigned		 change;	/* one enum setting_change */
	long long		 min, max;	/* numbers, in ms or bytes */
	const char *const	*choices;	/* NULL-terminated, or NULL */
	const char		*dflt;		/* as in a file; NULL: unset */
	const char		*help;		/* one line */
};

extern const struct setting	settings_table[];
extern const size_t		settings_count;

/* The row of section's key name, or NULL. */
const struct setting	*settings_find(const char *section,
			    const char *name) PCD_WUR;
/* Whether any key belongs to section ("site" for [site DOMAIN]). */
bool			 settings_section_known(const char *section);
/*
 * Whether a and b differ in any key whose change is one of changes
 * (SETTING_NEW_STORE | SETTING_NEW_TOKEN, ...): every row of the table
 * with such a change is compared, so a new row needs no code here.
 */
bool			 settings_differ(const struct cfg *a,
			    const struct cfg *b, unsigned changes) PCD_WUR;
/*
 * The next row from *i on (start at 0) whose change is one of changes and
 * whose value differs in a and b, with *i moved past it; NULL at the end.
 */
const struct setting	*settings_next_differ(const struct cfg *a,
			    const struct cfg *b, unsigned changes, size_t *i);
/*
 * Copy into to from's value of every key whose change is one of changes
 * (SETTING_RESTART: what a reload cannot change stays as it runs).  For
 * the keys of [daemon] and the other global sections, but servers.
 */
void			 settings_keep(struct cfg *to, const struct cfg *from,
			    unsigned changes);
/*
 * Every key as a commented-out "key = default" line under its section,
 * each after a line of help with its type and range and what a change of
 * it needs on SIGHUP (the hidden option --print-settings).
 */
void			 settings_print(FILE *);

#endif
