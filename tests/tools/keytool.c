/*
 * keytool: print what keys.c and place.c compute for each line of stdin,
 * for tests/integration/test_keys_diff.py to compare with Python.
 *
 *	keytool edx md4|blake2b PREFIX VERSION	key_make (safe_key)
 *	keytool django PREFIX VERSION		key_make, "-" if refused
 *	keytool quote				key_quote_plus
 *	keytool place NODE ...			place_rendezvous's index
 *
 * A line ends at '\n' only; everything before it, whatever the bytes, is
 * the key.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "place.h"
#include "util.h"

/* Say how to call us and fail. */
static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: keytool edx md4|blake2b prefix version\n"
	    "       keytool django prefix version\n"
	    "       keytool quote\n"
	    "       keytool place node ...\n");
	exit(2);
}

/* Print the answer for one key. */
static void
one(int argc, char **argv, const struct keyfn *kf, const char *line,
    size_t len)
{
	struct buf	b;

	if (strcmp(argv[1], "quote") == 0) {
		buf_init(&b);
		key_quote_plus(&b, line, len);
		fwrite(b.data, 1, b.len, stdout);
		putchar('\n');
		buf_free(&b);
	} else if (strcmp(argv[1], "place") == 0) {
		printf("%zu\n", place_rendezvous((const char *const *)argv + 2,
		    (size_t)argc - 2, line, len));
	} else {
		buf_init(&b);
		if (key_make(kf, line, len, &b) == -1)
			puts("-");
		else
			puts((const char *)b.data);
		buf_free(&b);
	}
}

int
main(int argc, char **argv)
{
	struct keyfn	 kf;
	char		*line = NULL;
	size_t		 cap = 0;
	ssize_t		 n;

	if (argc < 2)
		usage();
	memset(&kf, 0, sizeof kf);
	if (strcmp(argv[1], "edx") == 0) {
		if (argc != 5)
			usage();
		if (strcmp(argv[2], "md4") == 0)
			key_init(&kf, KEYFN_EDX, KEYHASH_MD4, argv[3], argv[4]);
		else if (strcmp(argv[2], "blake2b") == 0) {
			key_init(&kf, KEYFN_EDX, KEYHASH_BLAKE2B, argv[3],
			    argv[4]);
		} else
			usage();
	} else if (strcmp(argv[1], "django") == 0) {
		if (argc != 4)
			usage();
		key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, argv[2], argv[3]);
	} else if (strcmp(argv[1], "place") == 0) {
		if (argc < 3)
			usage();
	} else if (strcmp(argv[1], "quote") != 0 || argc != 2)
		usage();

	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		one(argc, argv, &kf, line, (size_t)n);
	}
	free(line);
	if (kf.prefix != NULL)
		key_clear(&kf);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("keytool: stdout");
		return 1;
	}
	return 0;
}
