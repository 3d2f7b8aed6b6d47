/*
 * config_file: reads a config file and every file it @includes into one
 * buffer for the config module, which hands it to libconfig as a string.
 * libconfig left to itself opens includes with fopen and reads them through
 * a scanner that exits the process on a directory, blocks on a FIFO and
 * takes quadratic time on a long line; here every file must be a regular
 * file, the whole text is capped, and reading is linear. Line numbers of
 * the joined text map back to each file's own lines for error messages.
 */
#ifndef TURNCHAT_CONFIG_FILE_H
#define TURNCHAT_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* The most bytes a config may have, all its includes together. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* As deep as libconfig itself would follow @include. */
#define CONFIG_INCLUDE_DEPTH_MAX 10
/* Files read in all, each time it is included counting once. */
#define CONFIG_INCLUDE_FILES_MAX 64

/* Receives one complete error line, "file:line: message", without newline. */
typedef void config_report_fn(void *ctx, const char *message);

struct config_segment;

struct config_text {
	char *text; /* NUL-terminated, includes spliced in, no @include left */
	size_t len;
	struct config_segment *segments; /* where each run of lines came from */
	size_t segment_count, segment_size;
	char **files; /* every file read, the first being the top one */
	size_t file_count;
};

/*
 * Reads path and what it includes into text. A missing top file is no
 * error unless must_exist: then *missing is set and 0 returned. Every
 * problem is reported as "file:line: message" (or "file: message"); returns
 * the number of errors. text is filled in only when there are none, and is
 * always to be given back with config_text_free.
 */
int config_text_read(struct config_text *text, const char *path, bool must_exist, bool *missing,
		     config_report_fn *report, void *ctx);

/* The file and line that line (1-based) of the joined text came from. */
void config_text_where(const struct config_text *text, unsigned line, const char **file,
		       unsigned *file_line);

void config_text_free(struct config_text *text);

#endif
