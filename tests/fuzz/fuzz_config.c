/*
 * fuzz_config: the config loader (src/config.c over libconfig) on arbitrary
 * file contents, loaded on top of the defaults and on top of a config that
 * an earlier layer changed, as the client layers files.
 *
 * Checked: a file with any error leaves the struct exactly as it was (the
 * loader's promise, which SIGHUP relies on to keep the config in force);
 * every error is reported as "file:line: ..." with the count matching the
 * return value; a file that loads and checks cleanly holds values inside
 * the documented ranges; nothing leaks.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "fuzz_util.h"

static char path[] = "/tmp/turnchat-fuzz-config-XXXXXX";
static int fd = -1;

struct reports {
	int count;
	const char *origin;
};

static void on_report(void *ctx, const char *message)
{
	struct reports *r = ctx;
	size_t n = strlen(r->origin);
	r->count++;
	FUZZ_CHECK(strncmp(message, r->origin, n) == 0 && message[n] == ':',
		   "report without its origin: %s", message);
	FUZZ_CHECK(strchr(message, '\n') == NULL, "report spans lines: %s", message);
}

static bool string_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* A config that passed load and check must be usable as it is. */
static void check_valid(const struct config *cfg)
{
	const struct server_config *s = &cfg->server;
	FUZZ_CHECK(string_ok(cfg->host, sizeof(cfg->host)) && cfg->host[0], "host");
	FUZZ_CHECK(cfg->port >= 1 && cfg->port <= 65535, "port %u", cfg->port);
	FUZZ_CHECK(protocol_valid_name(s->name, strlen(s->name)), "server name");
	FUZZ_CHECK(protocol_valid_name(s->default_room, strlen(s->default_room)), "room");
	FUZZ_CHECK(s->modes != 0 && s->modes < (1u << CHAT_MODE_COUNT), "modes %u", s->modes);
	FUZZ_CHECK(s->modes & (1u << s->default_mode), "default mode not offered");
	FUZZ_CHECK(s->max_line >= CONFIG_MAX_LINE_MIN && s->max_line <= CONFIG_MAX_LINE_MAX,
		   "max_line %zu", s->max_line);
	FUZZ_CHECK(s->max_clients >= 1, "max_clients");
	FUZZ_CHECK(string_ok(cfg->client.name, sizeof(cfg->client.name)) &&
			   (cfg->client.name[0] == '\0' ||
			    protocol_valid_name(cfg->client.name, strlen(cfg->client.name))),
		   "client name");
	FUZZ_CHECK(cfg->client.mode < CHAT_MODE_COUNT, "client mode");
}

static void load(struct config *cfg, const uint8_t *data, size_t size)
{
	struct config before = *cfg;
	struct reports reports = {0, path};

	FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size,
		   "cannot write %s", path);
	int errors = config_load_file(cfg, path, true, on_report, &reports);
	FUZZ_CHECK(errors == reports.count, "%d errors, %d reported", errors, reports.count);
	if (errors > 0) {
		FUZZ_CHECK(memcmp(&before, cfg, sizeof(before)) == 0,
			   "a bad file changed the config");
		return;
	}
	reports = (struct reports){0, "origin"};
	int problems = config_check(cfg, "origin", on_report, &reports);
	FUZZ_CHECK(problems == reports.count, "%d problems, %d reported", problems, reports.count);
	if (problems == 0)
		check_valid(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* @include opens any path, and a FIFO or a device there would block
	 * or loop; includes are out of scope, so such inputs are not fuzzed. */
	if (size > 16384 || memmem(data, size, "@include", 8) != NULL)
		return -1;
	if (fd < 0) {
		fd = mkstemp(path);
		FUZZ_CHECK(fd >= 0, "mkstemp");
	}

	struct config cfg;
	config_set_defaults(&cfg);
	load(&cfg, data, size);

	/* A lower layer already set things: the file must merge onto them. */
	struct config layered;
	config_set_defaults(&layered);
	strcpy(layered.host, "example.org");
	layered.port = 4242;
	layered.server.max_line = 100;
	layered.server.modes = 1u << CHAT_MODE_FREE;
	layered.server.default_mode = CHAT_MODE_FREE;
	strcpy(layered.client.name, "layer");
	load(&layered, data, size);
	return 0;
}

/* libFuzzer has no teardown hook; the file goes when the process ends. */
__attribute__((destructor)) static void remove_file(void)
{
	if (fd >= 0)
		unlink(path);
}
