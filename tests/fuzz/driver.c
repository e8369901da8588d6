/*
 * driver.c: run a fuzz target's entry point over files, without libFuzzer,
 * so that the corpus and the inputs that once crashed are replayed by
 * `make check` with gcc and the sanitizers of check-asan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
main(int argc, char *argv[])
{
	int	i;

	for (i = 1; i < argc; i++) {
		FILE		*f;
		uint8_t		*buf;
		long		 n;

		if ((f = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		if ((buf = malloc((size_t)n + 1)) == NULL ||
		    fread(buf, 1, (size_t)n, f) != (size_t)n) {
			perror(argv[i]);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)n);
		free(buf);
	}
	printf("%d inputs replayed\n", argc - 1);
	return 0;
}
