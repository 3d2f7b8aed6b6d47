/*
 * Unit tests for config_file.c through config_load_file: what a config and
 * its @includes may be (regular files only, capped in size and count),
 * that includes land where libconfig would put them, and that every error
 * names the right file and line. Files are made in a fresh temporary
 * directory, so the paths in messages are known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define MAX_REPORTS 8

static char dir[] = "/tmp/turnchat-test-config-file-XXXXXX";

struct reports {
	int count;
	char lines[MAX_REPORTS][512];
};

static void collect(void *ctx, const char *message)
{
	struct reports *r = ctx;

	if (r->count < MAX_REPORTS)
		snprintf(r->lines[r->count], sizeof(r->lines[0]), "%s", message);
	r->count++;
}

/* The path of name in the test directory; a few may be in use at once. */
static const char *path_of(const char *name)
{
	static char paths[4][256];
	static int next;
	char *path = paths[next++ % 4];

	snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
	return path;
}

static void write_file(const char *name, const char *fmt, ...)
{
	FILE *fp = fopen(path_of(name), "w");
	va_list ap;

	assert_non_null(fp);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(fp), 0);
}

static int load(struct config *cfg, const char *name, struct reports *r)
{
	memset(r, 0, sizeof(*r));
	config_set_defaults(cfg);
	return config_load_file(cfg, path_of(name), true, collect, r);
}

/* Report i is "<dir>/" followed by rest. */
static void assert_report(const struct reports *r, int i, const char *rest)
{
	char expected[1024];

	snprintf(expected, sizeof(expected), "%s/%s", dir, rest);
	assert_true(i < r->count);
	assert_string_equal(r->lines[i], expected);
}

static void test_include_applies_settings(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	write_file("inc.conf", "server: {\n  name = \"included\";\n};\n");
	write_file("top.conf", "# top\n  @include \"%s\" # the server part\nport = 4000;\n",
		   path_of("inc.conf"));
	assert_int_equal(load(&cfg, "top.conf", &r), 0);
	assert_string_equal(cfg.server.name, "included");
	assert_int_equal(cfg.port, 4000);
}

/* Errors after an include, inside it and in a nested one name their own lines. */
static void test_errors_name_file_and_line(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	write_file("inner.conf", "\n\nbogus_inner = 1;\n");
	write_file("inc.conf", "server: {\n  nmae = \"x\";\n};\n@include \"%s\"\n",
		   path_of("inner.conf"));
	write_file("top.conf", "port = 1;\n@include \"%s\"\nhots = \"x\";", path_of("inc.conf"));
	assert_int_equal(load(&cfg, "top.conf", &r), 3);
	assert_report(&r, 0, "inc.conf:2: server.nmae: unknown setting");
	assert_report(&r, 1, "inner.conf:3: bogus_inner: unknown setting");
	assert_report(&r, 2, "top.conf:3: hots: unknown setting");

	write_file("inc.conf", "server: {\n  name = \"x\"\n  x;\n};\n");
	write_file("top.conf", "@include \"%s\"\n", path_of("inc.conf"));
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_report(&r, 0, "inc.conf:3: syntax error");
}

/* libconfig reads no @include inside a comment or a string: neither do we. */
static void test_include_only_where_libconfig_sees_one(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	write_file("top.conf", "/* a comment\n@include \"/nonexistent/a\"\n*/\n"
			       "# @include \"/nonexistent/b\"\n"
			       "server: { name = \"x\"; };\n");
	assert_int_equal(load(&cfg, "top.conf", &r), 0);
	assert_string_equal(cfg.server.name, "x");
}

static void test_refuses_what_is_no_regular_file(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	/* A directory made libconfig's scanner exit the process. */
	write_file("top.conf", "port = 1;\n@include \"%s\"\n", dir);
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_int_equal(r.count, 1);
	char expected[512];
	snprintf(expected, sizeof(expected),
		 "top.conf:2: @include \"%s\": is a directory, not a regular file", dir);
	assert_report(&r, 0, expected);

	/* A FIFO with no writer blocked the daemon's only thread. */
	assert_int_equal(mkfifo(path_of("fifo"), 0600), 0);
	write_file("top.conf", "@include \"%s\"\n", path_of("fifo"));
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	snprintf(expected, sizeof(expected),
		 "top.conf:1: @include \"%s\": is a FIFO, not a regular file", path_of("fifo"));
	assert_report(&r, 0, expected);
	assert_int_equal(load(&cfg, "fifo", &r), 1);
	assert_report(&r, 0, "fifo: is a FIFO, not a regular file");

	write_file("top.conf", "@include \"/dev/zero\"\n");
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_report(&r, 0, "top.conf:1: @include \"/dev/zero\": is a device, not a regular file");

	write_file("top.conf", "@include \"%s\"\n", path_of("missing.conf"));
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	snprintf(expected, sizeof(expected), "top.conf:1: @include \"%s\": No such file or directory",
		 path_of("missing.conf"));
	assert_report(&r, 0, expected);
}

static void test_size_cap(void **state)
{
	struct config cfg;
	struct reports r;
	char expected[256];

	(void)state;
	/* A file just under the cap loads (a comment line of that size). */
	FILE *fp = fopen(path_of("big.conf"), "w");
	assert_non_null(fp);
	fputc('#', fp);
	for (int i = 0; i < CONFIG_FILE_MAX - 2; i++)
		fputc('a', fp);
	fputc('\n', fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(load(&cfg, "big.conf", &r), 0);

	/* The same included after one more line is over it, includes and all. */
	write_file("top.conf", "port = 1;\n@include \"%s\"\n", path_of("big.conf"));
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	snprintf(expected, sizeof(expected),
		 "top.conf:2: @include \"%s\": is %d bytes; a config may have %d bytes at most, "
		 "includes and all",
		 path_of("big.conf"), CONFIG_FILE_MAX, CONFIG_FILE_MAX);
	assert_report(&r, 0, expected);
}

static void test_include_depth_and_count(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	write_file("loop.conf", "@include \"%s\"\n", path_of("loop.conf"));
	assert_int_equal(load(&cfg, "loop.conf", &r), 1);
	assert_report(&r, 0, "loop.conf:1: @include nested more than 10 deep");

	/* Includes fanning out cannot make a reload read thousands of files. */
	write_file("empty.conf", "");
	FILE *fp = fopen(path_of("fan.conf"), "w");
	assert_non_null(fp);
	for (int i = 0; i < 100; i++)
		fprintf(fp, "@include \"%s\"\n", path_of("empty.conf"));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(load(&cfg, "fan.conf", &r), 1);
	char expected[512];
	snprintf(expected, sizeof(expected),
		 "fan.conf:64: @include \"%s\": more than 64 files included in all",
		 path_of("empty.conf"));
	assert_report(&r, 0, expected);
}

static void test_malformed_includes(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	write_file("top.conf", "@include \"a\" port = 1;\n");
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_report(&r, 0, "top.conf:1: @include must be alone on its line (a comment may follow)");
	write_file("top.conf", "\n@include \"\"\n");
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_report(&r, 0, "top.conf:2: @include: empty file name");
	write_file("top.conf", "@include \"abc\n");
	assert_int_equal(load(&cfg, "top.conf", &r), 1);
	assert_report(&r, 0, "top.conf:1: @include: the file name has no closing quote on its line");
}

static void test_nul_byte(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	FILE *fp = fopen(path_of("nul.conf"), "w");
	assert_non_null(fp);
	fwrite("port = 1;\n\nx\0y\n", 1, 15, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(load(&cfg, "nul.conf", &r), 1);
	assert_report(&r, 0, "nul.conf:3: contains a NUL byte");
}

/* "-c /dev/null" means no settings at all, as it always did. */
static void test_dev_null(void **state)
{
	struct config cfg, defaults;
	struct reports r = {0};

	(void)state;
	config_set_defaults(&defaults);
	config_set_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, "/dev/null", true, collect, &r), 0);
	assert_memory_equal(&cfg, &defaults, sizeof(cfg));
}

static int cleanup(void **state)
{
	char command[128];

	(void)state;
	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	return system(command) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_include_applies_settings),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_include_only_where_libconfig_sees_one),
		cmocka_unit_test(test_refuses_what_is_no_regular_file),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_include_depth_and_count),
		cmocka_unit_test(test_malformed_includes),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_dev_null),
	};

	if (mkdtemp(dir) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, cleanup);
}
