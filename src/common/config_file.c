/*
 * config_file: called by config_load_file (common/config.c) for every file it
 * loads, in the daemon at start-up and on SIGHUP, and in the client and the
 * socket generator. A reload runs in the daemon's only thread, so nothing
 * here may block or take long: no FIFO, device or directory is read, the
 * text is capped, and every step is linear in its size.
 */
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Lines first_line.. of the joined text are lines file_line.. of file. */
struct config_segment {
	unsigned first_line;
	size_t file;
	unsigned file_line;
};

/* Where libconfig's scanner is at the start of a line: an @include is
 * only one in its INITIAL state, so only there is it spliced. */
enum lex_state { LEX_INITIAL, LEX_COMMENT, LEX_STRING };

struct reader {
	struct config_text *text;
	size_t size;   /* allocated bytes of text->text */
	unsigned line; /* line of the joined text being written, from 1 */
	enum lex_state lex;
	size_t read_bytes; /* of every file read, each time: includes cannot fan out */
	config_report_fn *report;
	void *ctx;
	int errors;
};

static void PRINTF_LIKE(2, 3) fail(struct reader *rd, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	rd->errors++;
	if (!rd->report)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	rd->report(rd->ctx, message);
}

static const char *file_kind(mode_t mode)
{
	return S_ISDIR(mode)                    ? "a directory"
	       : S_ISFIFO(mode)                 ? "a FIFO"
	       : S_ISSOCK(mode)                 ? "a socket"
	       : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
						: "not a regular file";
}

/*
 * Reads one whole regular file of at most limit bytes. Non-blocking open:
 * a FIFO swapped in after the stat() must not hang us either. where is how
 * an error names the file: "path" or "including-file:line: @include path".
 */
static char *slurp(struct reader *rd, const char *path, const char *where, size_t limit, size_t *len,
		   int *open_errno)
{
	struct stat st;
	char *data = NULL;
	int fd = -1;

	*open_errno = 0;
	if (stat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
		/* /dev/null: "no settings", and reading it never blocks. */
		*len = 0;
		return calloc(1, 1);
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fail(rd, "%s: is %s, not a regular file", where, file_kind(st.st_mode));
		return NULL;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		*open_errno = errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(rd, "%s: is %s, not a regular file", where, file_kind(st.st_mode));
		goto out;
	}
	if ((size_t)st.st_size > limit) {
		fail(rd, "%s: is %lld bytes; a config may have %d bytes at most, includes and all",
		     where, (long long)st.st_size, CONFIG_FILE_MAX);
		goto out;
	}
	/* One byte more than allowed, to notice a file that grows meanwhile. */
	data = malloc((size_t)st.st_size + 2);
	if (data == NULL) {
		fail(rd, "%s: out of memory", where);
		goto out;
	}
	*len = 0;
	for (;;) {
		ssize_t n = read(fd, data + *len, (size_t)st.st_size + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(rd, "%s: %s", where, strerror(errno));
			free(data);
			data = NULL;
			goto out;
		}
		if (n == 0 || (*len += (size_t)n) > (size_t)st.st_size)
			break;
	}
	if (*len > (size_t)st.st_size) {
		fail(rd, "%s: changed while it was read", where);
		free(data);
		data = NULL;
		goto out;
	}
	data[*len] = '\0';
out:
	close(fd);
	return data;
}

static int append(struct reader *rd, const char *bytes, size_t len)
{
	struct config_text *t = rd->text;

	if (t->len + len + 1 > rd->size) {
		size_t size = rd->size ? rd->size : 4096;
		while (size < t->len + len + 1)
			size *= 2;
		char *grown = realloc(t->text, size);
		if (grown == NULL)
			return -1;
		t->text = grown;
		rd->size = size;
	}
	memcpy(t->text + t->len, bytes, len);
	t->len += len;
	t->text[t->len] = '\0';
	return 0;
}

static int add_segment(struct reader *rd, size_t file, unsigned file_line)
{
	struct config_text *t = rd->text;

	if (t->segment_count == t->segment_size) {
		size_t size = t->segment_size ? t->segment_size * 2 : 8;
		struct config_segment *grown = realloc(t->segments, size * sizeof(*grown));
		if (grown == NULL)
			return -1;
		t->segments = grown;
		t->segment_size = size;
	}
	t->segments[t->segment_count++] = (struct config_segment){rd->line, file, file_line};
	return 0;
}

/* Follows libconfig's scanner through one line, to know its state after it. */
static void lex_line(struct reader *rd, const char *p, const char *end)
{
	for (; p < end; p++) {
		if (rd->lex == LEX_STRING) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				rd->lex = LEX_INITIAL;
		} else if (rd->lex == LEX_COMMENT) {
			if (*p == '*' && p + 1 < end && p[1] == '/')
				rd->lex = LEX_INITIAL, p++;
		} else if (*p == '"') {
			rd->lex = LEX_STRING;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			rd->lex = LEX_COMMENT, p++;
		} else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
			return; /* the rest of the line is a comment */
		}
	}
}

/*
 * The file name of an "@include" line, as libconfig reads it: [ \t]* then
 * @include, [ \t]+, a quoted name with \\ and \" escapes. Returns 0 if the
 * line is no include, 1 with name filled in, -1 (reported) if malformed.
 */
static int parse_include(struct reader *rd, const char *where, const char *p, const char *end,
			 char *name, size_t size)
{
	static const char keyword[] = "@include";
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if ((size_t)(end - p) < sizeof(keyword) - 1 || memcmp(p, keyword, sizeof(keyword) - 1) != 0)
		return 0;
	p += sizeof(keyword) - 1;
	const char *blanks = p;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == blanks || p == end || *p != '"')
		return 0; /* not libconfig's include either: a syntax error there */
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\') {
			if (p + 1 == end || (p[1] != '\\' && p[1] != '"')) {
				fail(rd, "%s: @include: only \\\\ and \\\" may follow a backslash",
				     where);
				return -1;
			}
			p++;
		}
		if (n + 1 == size) {
			fail(rd, "%s: @include: the file name is too long", where);
			return -1;
		}
		name[n++] = *p;
	}
	name[n] = '\0';
	if (p == end) {
		fail(rd, "%s: @include: the file name has no closing quote on its line", where);
		return -1;
	}
	for (p++; p < end && (*p == ' ' || *p == '\t' || *p == '\r'); p++)
		;
	if (p < end && *p != '#' && !(*p == '/' && p + 1 < end && p[1] == '/')) {
		fail(rd, "%s: @include must be alone on its line (a comment may follow)", where);
		return -1;
	}
	if (n == 0) {
		fail(rd, "%s: @include: empty file name", where);
		return -1;
	}
	return 1;
}

static int read_file(struct reader *rd, const char *path, const char *where, int depth,
		     bool must_exist, bool *missing);

/* Copies one file's lines into the joined text, splicing its includes. */
static int splice_file(struct reader *rd, size_t file, const char *data, size_t len, int depth)
{
	const char *path = rd->text->files[file];
	const char *p = data, *end = data + len;
	unsigned file_line = 1;

	if (memchr(data, '\0', len) != NULL) {
		unsigned at = 1;
		for (const char *q = data; *q; q++)
			at += *q == '\n';
		fail(rd, "%s:%u: contains a NUL byte", path, at);
		return -1;
	}
	if (add_segment(rd, file, 1) < 0)
		return -1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		char name[4096], where[4352];
		int found = 0;

		if (rd->lex == LEX_INITIAL) {
			snprintf(where, sizeof(where), "%s:%u", path, file_line);
			found = parse_include(rd, where, p, eol ? eol : end, name, sizeof(name));
		}
		if (found < 0)
			return -1;
		if (found > 0) {
			if (depth == CONFIG_INCLUDE_DEPTH_MAX) {
				fail(rd, "%s: @include nested more than %d deep", where,
				     CONFIG_INCLUDE_DEPTH_MAX);
				return -1;
			}
			snprintf(where + strlen(where), sizeof(where) - strlen(where),
				 ": @include \"%s\"", name);
			if (read_file(rd, name, where, depth + 1, true, NULL) < 0 ||
			    add_segment(rd, file, file_line + 1) < 0)
				return -1;
		} else {
			lex_line(rd, p, eol ? eol : end);
			if (append(rd, p, (size_t)(next - p)) < 0)
				return -1;
			rd->line += eol != NULL;
		}
		file_line++;
		p = next;
	}
	/* The next file's first line starts a line of its own. */
	if (len > 0 && data[len - 1] != '\n') {
		if (append(rd, "\n", 1) < 0)
			return -1;
		rd->line++;
	}
	return 0;
}

static int read_file(struct reader *rd, const char *path, const char *where, int depth,
		     bool must_exist, bool *missing)
{
	struct config_text *t = rd->text;
	size_t len = 0;
	int open_errno;
	char *data;

	if (t->file_count == CONFIG_INCLUDE_FILES_MAX) {
		fail(rd, "%s: more than %d files included in all", where, CONFIG_INCLUDE_FILES_MAX);
		return -1;
	}
	data = slurp(rd, path, where, CONFIG_FILE_MAX - rd->read_bytes, &len, &open_errno);

	if (data == NULL) {
		if (open_errno == ENOENT && !must_exist) {
			*missing = true;
			return 0;
		}
		if (open_errno)
			fail(rd, "%s: %s", where, strerror(open_errno));
		return -1;
	}
	char **files = realloc(t->files, (t->file_count + 1) * sizeof(*files));
	char *copy = strdup(path);
	if (files)
		t->files = files;
	if (files == NULL || copy == NULL) {
		free(copy);
		free(data);
		fail(rd, "%s: out of memory", where);
		return -1;
	}
	t->files[t->file_count++] = copy;
	rd->read_bytes += len;
	int rc = splice_file(rd, t->file_count - 1, data, len, depth);
	free(data);
	if (rc < 0 && rd->errors == 0)
		fail(rd, "%s: out of memory", where);
	return rc;
}

int config_text_read(struct config_text *text, const char *path, bool must_exist, bool *missing,
		     config_report_fn *report, void *ctx)
{
	struct reader rd = {
		.text = text, .line = 1, .lex = LEX_INITIAL, .report = report, .ctx = ctx};

	memset(text, 0, sizeof(*text));
	*missing = false;
	if (read_file(&rd, path, path, 0, must_exist, missing) < 0 && rd.errors == 0)
		rd.errors = 1;
	if (rd.errors == 0 && !*missing && append(&rd, "", 0) < 0)
		fail(&rd, "%s: out of memory", path);
	return rd.errors;
}

void config_text_where(const struct config_text *text, unsigned line, const char **file,
		       unsigned *file_line)
{
	const struct config_segment *seg = NULL;

	/* Segments come in order of first_line; the last one not after line wins. */
	for (size_t i = 0; i < text->segment_count && text->segments[i].first_line <= line; i++)
		seg = &text->segments[i];
	if (seg == NULL) {
		*file = text->file_count ? text->files[0] : "?";
		*file_line = line;
		return;
	}
	*file = text->files[seg->file];
	*file_line = seg->file_line + (line - seg->first_line);
}

void config_text_free(struct config_text *text)
{
	for (size_t i = 0; i < text->file_count; i++)
		free(text->files[i]);
	free(text->files);
	free(text->segments);
	free(text->text);
	memset(text, 0, sizeof(*text));
}
