/* Replays fuzz inputs through a target's LLVMFuzzerTestOneInput() without
 * libFuzzer, so the seed corpora and the saved reproducers run in the
 * normal test suite (gcc, and the ASan+UBSan build).
 *
 *   replay_<name> PATH...
 *
 * Each PATH is a file or a folder whose regular files are replayed in
 * name order (not recursively). With a single folder argument
 * tests/fuzz/corpus/<name>, the sibling tests/fuzz/regressions/<name> is
 * replayed too when it exists. A missing or empty first PATH is an error,
 * so a corpus that went missing cannot pass silently; later PATHs may be
 * absent (regressions/ exists only once something was found).
 *
 * Every input is copied into a heap buffer of exactly its size, as
 * libFuzzer does, so AddressSanitizer sees a read one byte past the end.
 * A target signals a broken invariant by aborting; this driver does not
 * catch it. Exit status: 0, 1 (an input could not be read), 2 (usage). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than any target accepts are still replayed; this only
 * bounds what a stray file in the folder can make us read. */
#define REPLAY_MAX_INPUT (16u * 1024 * 1024)

static int replay_file(const char *path, size_t *count)
{
	struct stat st;
	uint8_t *buf;
	size_t got;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
	    (uintmax_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: cannot size it, or larger than %u bytes\n",
		    path, REPLAY_MAX_INPUT);
		fclose(f);
		return -1;
	}
	/* Exactly the input's size, never rounded up: an overread is a bug. */
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (got != (size_t)st.st_size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	(*count)++;
	return 0;
}

static int not_hidden(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Returns 0, or -1 when a file could not be read. Counts what ran. */
static int replay_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	char path[PATH_MAX];
	struct stat st;
	int n, i, rc = 0;

	n = scandir(dir, &names, not_hidden, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >=
		    sizeof(path)) {
			rc = -1;
		} else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path, count) != 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* tests/fuzz/corpus/<name> -> tests/fuzz/regressions/<name>, or "". */
static void regressions_of(const char *corpus, char *out, size_t cap)
{
	char copy[PATH_MAX];
	const char *name;
	char *slash;
	size_t n;

	out[0] = '\0';
	n = strlen(corpus);
	if (n == 0 || n >= sizeof(copy))
		return;
	memcpy(copy, corpus, n + 1);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	if ((slash = strrchr(copy, '/')) == NULL)
		return;
	name = slash + 1;
	*slash = '\0';
	/* copy is now .../corpus: its parent holds regressions/. */
	if ((slash = strrchr(copy, '/')) == NULL || strcmp(slash + 1, "corpus") != 0)
		return;
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/regressions/%s", copy, name) >= cap)
		out[0] = '\0';
}

static int replay_path(const char *path, bool required, size_t *count)
{
	struct stat st;
	size_t before = *count;
	int rc;

	if (stat(path, &st) != 0) {
		if (!required)
			return 0;
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	rc = S_ISDIR(st.st_mode) ? replay_dir(path, count) : replay_file(path, count);
	printf("replay: %zu inputs from %s\n", *count - before, path);
	if (rc == 0 && required && *count == before) {
		fprintf(stderr, "replay: %s: no inputs\n", path);
		return -1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	char regressions[PATH_MAX];
	struct stat st;
	size_t count = 0;
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i], i == 1, &count) != 0)
			rc = 1;
	if (argc == 2 && stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode)) {
		regressions_of(argv[1], regressions, sizeof(regressions));
		if (regressions[0] != '\0' && replay_path(regressions, false, &count) != 0)
			rc = 1;
	}
	printf("replay: %zu inputs, %s\n", count, rc == 0 ? "all ran" : "some could not be read");
	return rc;
}
