/*
 * Unit tests for config.c: every rule of turnchat.conf(5), checked through
 * the public API against the files in tests/fixtures/config.
 * Usage: test_config FIXTURES_DIR [SHIPPED_CONF]
 * (SHIPPED_CONF defaults to FIXTURES_DIR/../../../etc/turnchat.conf).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "config.h"

#define MAX_REPORTS 16

static const char *fixtures_dir;
static const char *shipped_conf;

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

static const char *fixture(const char *name)
{
	static char paths[4][1024];
	static int next;
	char *path = paths[next++ % 4];

	snprintf(path, sizeof(paths[0]), "%s/%s", fixtures_dir, name);
	return path;
}

/* Loads a fixture into cfg, collecting reports; returns the error count. */
static int load(struct config *cfg, const char *name, struct reports *r)
{
	memset(r, 0, sizeof(*r));
	return config_load_file(cfg, fixture(name), true, collect, r);
}

/* Asserts that report i is "FIXTURE-PATH" followed by rest. */
static void assert_report(const struct reports *r, int i, const char *name, const char *rest)
{
	char expected[1024];

	assert_true(i < r->count);
	snprintf(expected, sizeof(expected), "%s%s", fixture(name), rest);
	assert_string_equal(r->lines[i], expected);
}

static void defaults(struct config *cfg)
{
	memset(cfg, 0xa5, sizeof(*cfg)); /* set_defaults must not depend on what was there */
	config_set_defaults(cfg);
}

/* Field by field first, for a readable failure; then every byte. */
static void assert_config_equal(const struct config *a, const struct config *b)
{
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->port, b->port);
	assert_string_equal(a->server.name, b->server.name);
	assert_string_equal(a->server.default_room, b->server.default_room);
	assert_int_equal(a->server.default_mode, b->server.default_mode);
	assert_int_equal(a->server.modes, b->server.modes);
	assert_int_equal(a->server.max_line, b->server.max_line);
	assert_int_equal(a->server.max_clients, b->server.max_clients);
	assert_int_equal(a->server.idle_timeout, b->server.idle_timeout);
	assert_int_equal(a->server.exit_idle, b->server.exit_idle);
	assert_int_equal(a->server.log_target, b->server.log_target);
	assert_int_equal(a->server.log_facility, b->server.log_facility);
	assert_int_equal(a->server.log_level, b->server.log_level);
	assert_string_equal(a->client.name, b->client.name);
	assert_string_equal(a->client.room, b->client.room);
	assert_int_equal(a->client.mode, b->client.mode);
	assert_memory_equal(a, b, sizeof(*a));
}

static const unsigned both_modes = (1u << CHAT_MODE_TURNS) | (1u << CHAT_MODE_FREE);

static void test_defaults(void **state)
{
	struct config cfg, again;
	struct reports r = {0};

	(void)state;
	defaults(&cfg);
	assert_string_equal(cfg.host, "localhost");
	assert_int_equal(cfg.port, 52928);
	assert_string_equal(cfg.server.name, "turnchatd");
	assert_string_equal(cfg.server.default_room, "lobby");
	assert_int_equal(cfg.server.default_mode, CHAT_MODE_TURNS);
	assert_int_equal(cfg.server.modes, both_modes);
	assert_int_equal(cfg.server.max_line, 4096);
	assert_int_equal(cfg.server.max_clients, 1024);
	assert_int_equal(cfg.server.idle_timeout, 3600);
	assert_int_equal(cfg.server.exit_idle, 300);
	assert_int_equal(cfg.server.log_target, LOG_TARGET_AUTO);
	assert_int_equal(cfg.server.log_facility, LOG_DAEMON);
	assert_int_equal(cfg.server.log_level, LOG_INFO);
	assert_string_equal(cfg.client.name, "");
	assert_string_equal(cfg.client.room, "");
	assert_int_equal(cfg.client.mode, CHAT_MODE_TURNS);

	/* Whatever garbage was there before, the result is byte-identical. */
	memset(&again, 0, sizeof(again));
	config_set_defaults(&again);
	assert_memory_equal(&cfg, &again, sizeof(cfg));
	assert_int_equal(config_check(&cfg, "defaults", collect, &r), 0);
	assert_int_equal(r.count, 0);
}

static void test_good_file(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "good.conf", &r), 0);
	assert_int_equal(r.count, 0);
	assert_string_equal(cfg.host, "chat.example.org");
	assert_int_equal(cfg.port, 6000);
	assert_string_equal(cfg.server.name, "test-server.1");
	assert_string_equal(cfg.server.default_room, "hall");
	assert_int_equal(cfg.server.default_mode, CHAT_MODE_FREE);
	assert_int_equal(cfg.server.modes, 1u << CHAT_MODE_FREE);
	assert_int_equal(cfg.server.max_line, 512);
	assert_int_equal(cfg.server.max_clients, 3);
	assert_int_equal(cfg.server.idle_timeout, 0);
	assert_int_equal(cfg.server.exit_idle, 0);
	assert_int_equal(cfg.server.log_target, LOG_TARGET_STDERR);
	assert_int_equal(cfg.server.log_facility, LOG_LOCAL3);
	assert_int_equal(cfg.server.log_level, LOG_DEBUG);
	assert_string_equal(cfg.client.name, "alice");
	assert_string_equal(cfg.client.room, "hall");
	assert_int_equal(cfg.client.mode, CHAT_MODE_FREE);
	assert_int_equal(config_check(&cfg, "good.conf", collect, &r), 0);
}

/*
 * The shipped file must set every key to its default, but for the TLS pair
 * it ships set (as ssh ships host keys): loaded over the defaults it
 * changes nothing else, and loaded over good.conf (where every field
 * differs) it gives back the same, so no key is missing.
 */
static void test_shipped_file(void **state)
{
	struct config expected, cfg;
	struct reports r = {0};

	(void)state;
	defaults(&expected);
	strcpy(expected.server.tls_certificate, "/etc/turnchat/tls.crt");
	strcpy(expected.server.tls_key, "/etc/turnchat/tls.key");
	defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, shipped_conf, true, collect, &r), 0);
	assert_int_equal(r.count, 0);
	assert_config_equal(&cfg, &expected);

	assert_int_equal(load(&cfg, "good.conf", &r), 0);
	assert_int_equal(config_load_file(&cfg, shipped_conf, true, collect, &r), 0);
	assert_int_equal(r.count, 0);
	assert_config_equal(&cfg, &expected);
}

static void test_layering(void **state)
{
	struct config cfg, expected;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "good.conf", &r), 0);
	memcpy(&expected, &cfg, sizeof(cfg));
	assert_int_equal(load(&cfg, "layer.conf", &r), 0);
	expected.port = 7000;
	expected.server.max_line = 1024;
	strcpy(expected.client.room, "kitchen");
	assert_config_equal(&cfg, &expected);

	/* A later layer may clear the client's name and room again. */
	assert_int_equal(load(&cfg, "optional-empty.conf", &r), 0);
	memset(expected.client.name, 0, sizeof(expected.client.name));
	memset(expected.client.room, 0, sizeof(expected.client.room));
	assert_config_equal(&cfg, &expected);
}

static void test_empty_file(void **state)
{
	struct config cfg, expected;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "good.conf", &r), 0);
	memcpy(&expected, &cfg, sizeof(cfg));
	assert_int_equal(load(&cfg, "empty.conf", &r), 0);
	assert_int_equal(r.count, 0);
	assert_config_equal(&cfg, &expected);
}

static void test_missing_file(void **state)
{
	const char *path = fixture("no-such-file.conf");
	struct config cfg, expected;
	struct reports r = {0};
	char message[1100];

	(void)state;
	defaults(&cfg);
	memcpy(&expected, &cfg, sizeof(cfg));
	assert_int_equal(config_load_file(&cfg, path, false, collect, &r), 0);
	assert_int_equal(r.count, 0);
	assert_config_equal(&cfg, &expected);

	assert_int_equal(config_load_file(&cfg, path, true, collect, &r), 1);
	assert_int_equal(r.count, 1);
	snprintf(message, sizeof(message), "%s: No such file or directory", path);
	assert_string_equal(r.lines[0], message);
	assert_config_equal(&cfg, &expected);
}

/* Not ENOENT, so an error even when the file is optional. */
static void test_directory(void **state)
{
	struct config cfg;
	struct reports r = {0};
	char message[1100];

	(void)state;
	defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, fixtures_dir, false, collect, &r), 1);
	assert_int_equal(r.count, 1);
	snprintf(message, sizeof(message), "%s: is a directory, not a regular file", fixtures_dir);
	assert_string_equal(r.lines[0], message);
}

static void test_syntax_error(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "syntax.conf", &r), 1);
	assert_int_equal(r.count, 1);
	assert_report(&r, 0, "syntax.conf", ":6: syntax error");
}

static void test_many_errors(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "many-errors.conf", &r), 7);
	assert_int_equal(r.count, 7);
	assert_report(&r, 0, "many-errors.conf", ":2: port: 70000 is out of range (1..65535)");
	assert_report(&r, 1, "many-errors.conf", ":3: hots: unknown setting");
	assert_report(&r, 2, "many-errors.conf", ":6: server.max_lien: unknown setting");
	assert_report(&r, 3, "many-errors.conf",
		      ":7: server.max_clients: expected an integer, found a string");
	assert_report(&r, 4, "many-errors.conf",
		      ":8: server.modes: \"chat\" is not a mode (turns, free)");
	assert_report(&r, 5, "many-errors.conf",
		      ":9: server.log_level: \"verbose\" is not one of "
		      "err, warning, notice, info, debug");
	assert_report(&r, 6, "many-errors.conf",
		      ":13: client.name: \"no spaces\" is not a valid name "
		      "(1 to 32 letters, digits, _ . or -)");
}

static void test_unknown_keys(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "unknown-top.conf", &r), 1);
	assert_report(&r, 0, "unknown-top.conf", ":2: daemon: unknown setting");
	assert_int_equal(load(&cfg, "unknown-server.conf", &r), 1);
	assert_report(&r, 0, "unknown-server.conf", ":3: server.max_lien: unknown setting");
	assert_int_equal(load(&cfg, "unknown-client.conf", &r), 1);
	assert_report(&r, 0, "unknown-client.conf", ":2: client.nick: unknown setting");
}

static void test_not_groups(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "not-groups.conf", &r), 2);
	assert_report(&r, 0, "not-groups.conf",
		      ":1: server: expected a group { ... }, found an integer");
	assert_report(&r, 1, "not-groups.conf", ":2: client: expected a group { ... }, found a list");
}

static void test_wrong_types(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "types.conf", &r), 6);
	assert_int_equal(r.count, 6);
	assert_report(&r, 0, "types.conf", ":2: port: expected an integer, found a string");
	assert_report(&r, 1, "types.conf", ":3: host: expected a string, found an integer");
	assert_report(&r, 2, "types.conf", ":6: server.max_line: expected an integer, found a float");
	assert_report(&r, 3, "types.conf",
		      ":7: server.idle_timeout: expected an integer, found a boolean");
	assert_report(&r, 4, "types.conf", ":8: server.name: expected a string, found an array");
	assert_report(&r, 5, "types.conf", ":13: client.mode: expected a string, found an integer");
}

static void test_ranges(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "port-0.conf", &r), 1);
	assert_report(&r, 0, "port-0.conf", ":1: port: 0 is out of range (1..65535)");
	assert_int_equal(load(&cfg, "port-65536.conf", &r), 1);
	assert_report(&r, 0, "port-65536.conf", ":1: port: 65536 is out of range (1..65535)");
	assert_int_equal(cfg.port, 52928);

	assert_int_equal(load(&cfg, "ranges.conf", &r), 3);
	assert_report(&r, 0, "ranges.conf", ":2: server.max_line: 63 is out of range (64..1048576)");
	assert_report(&r, 1, "ranges.conf",
		      ":3: server.max_clients: 5000000000 is out of range (1..1000000)");
	assert_report(&r, 2, "ranges.conf",
		      ":4: server.idle_timeout: -1 is out of range (0..604800)");

	assert_int_equal(load(&cfg, "ranges-ok.conf", &r), 0);
	assert_int_equal(cfg.port, 65535);
	assert_int_equal(cfg.server.max_line, CONFIG_MAX_LINE_MAX);
	assert_int_equal(cfg.server.max_clients, CONFIG_MAX_CLIENTS_MAX);
	assert_int_equal(cfg.server.idle_timeout, CONFIG_IDLE_TIMEOUT_MAX);
}

static void test_booleans(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_true(cfg.server.typing);
	assert_true(cfg.client.typing);
	assert_false(cfg.client.bell);
	assert_int_equal(load(&cfg, "booleans-bad.conf", &r), 2);
	assert_report(&r, 0, "booleans-bad.conf",
		      ":1: server.typing: expected true or false, found an integer");
	assert_report(&r, 1, "booleans-bad.conf",
		      ":2: client.bell: expected true or false, found a string");
	assert_true(cfg.server.typing);
	assert_int_equal(load(&cfg, "booleans.conf", &r), 0);
	assert_false(cfg.server.typing);
	assert_false(cfg.client.typing);
	assert_true(cfg.client.bell);
	assert_string_equal(cfg.client.name, "Zo\xc3\xab");
}

static void test_bad_names(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "bad-names.conf", &r), 4);
	assert_report(
		&r, 0, "bad-names.conf",
		":2: server.name: \"turn chat\" is not a valid name (1 to 32 letters, digits, _ . or -)");
	assert_report(
		&r, 1, "bad-names.conf",
		":3: server.default_room: \"\" is not a valid name (1 to 32 letters, digits, _ . or -)");
	/* A control byte is not echoed as is. */
	assert_report(
		&r, 2, "bad-names.conf",
		":7: client.name: \"a?b\" is not a valid name (1 to 32 letters, digits, _ . or -)");
	assert_report(&r, 3, "bad-names.conf",
		      ":8: client.room: \"a-room-name-that-is-33-chars-long\" is not a valid name "
		      "(1 to 32 letters, digits, _ . or -)");

	assert_int_equal(load(&cfg, "bad-host.conf", &r), 1);
	assert_report(&r, 0, "bad-host.conf",
		      ":1: host: \"chat example.org\" contains whitespace or a control character");
	assert_int_equal(load(&cfg, "empty-host.conf", &r), 1);
	assert_report(&r, 0, "empty-host.conf", ":1: host: must be 1 to 255 bytes long");
	assert_string_equal(cfg.host, "localhost");
}

static void test_bad_modes(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "modes-empty.conf", &r), 1);
	assert_report(&r, 0, "modes-empty.conf", ":2: server.modes: must name at least one mode");
	assert_int_equal(load(&cfg, "modes-duplicate.conf", &r), 1);
	assert_report(&r, 0, "modes-duplicate.conf", ":2: server.modes: \"turns\" is listed twice");
	assert_int_equal(load(&cfg, "modes-unknown.conf", &r), 1);
	assert_report(&r, 0, "modes-unknown.conf",
		      ":3: server.modes: \"chat\" is not a mode (turns, free)");
	assert_int_equal(load(&cfg, "modes-mixed.conf", &r), 1);
	assert_report(&r, 0, "modes-mixed.conf",
		      ":2: server.modes: element 2 is an integer, not a string");
	assert_int_equal(load(&cfg, "modes-string.conf", &r), 1);
	assert_report(&r, 0, "modes-string.conf",
		      ":2: server.modes: expected a list of modes like [\"turns\", \"free\"], "
		      "found a string");
	assert_int_equal(cfg.server.modes, both_modes);

	assert_int_equal(load(&cfg, "words.conf", &r), 5);
	assert_report(&r, 0, "words.conf",
		      ":2: server.default_mode: \"chat\" is not a mode (turns, free)");
	assert_report(&r, 1, "words.conf",
		      ":3: server.log_target: \"file\" is not one of auto, syslog, stderr");
	assert_report(&r, 2, "words.conf",
		      ":4: server.log_facility: \"local8\" is not one of daemon, user, local0, "
		      "local1, local2, local3, local4, local5, local6, local7");
	assert_report(
		&r, 3, "words.conf",
		":5: server.log_level: \"warn\" is not one of err, warning, notice, info, debug");
	assert_report(&r, 4, "words.conf", ":9: client.mode: \"Turns\" is not a mode (turns, free)");
}

/* Valid keys before the bad one must not leak into cfg. */
static void test_unchanged_after_error(void **state)
{
	static const char *const bad[] = {
		"half-bad.conf", "syntax.conf", "many-errors.conf", "types.conf", "not-groups.conf",
	};
	struct config cfg, expected;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "good.conf", &r), 0);
	memcpy(&expected, &cfg, sizeof(cfg));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(load(&cfg, bad[i], &r) > 0);
		assert_config_equal(&cfg, &expected);
	}
	assert_int_equal(load(&cfg, "half-bad.conf", &r), 1);
	assert_report(&r, 0, "half-bad.conf",
		      ":7: server.idle_timeout: 99999999 is out of range (0..604800)");
}

/* Counting works without a report function. */
static void test_no_report(void **state)
{
	struct config cfg;

	(void)state;
	defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, fixture("many-errors.conf"), true, NULL, NULL), 7);
	assert_int_equal(config_load_file(&cfg, fixture("no-such.conf"), true, NULL, NULL), 1);
	cfg.server.modes = 1u << CHAT_MODE_TURNS;
	cfg.server.default_mode = CHAT_MODE_FREE;
	assert_int_equal(config_check(&cfg, "x", NULL, NULL), 1);
}

/* Each layer is fine alone; only the combination is wrong. */
static void test_check_default_mode(void **state)
{
	struct config cfg;
	struct reports r;

	(void)state;
	defaults(&cfg);
	assert_int_equal(load(&cfg, "turns-only.conf", &r), 0);
	assert_int_equal(config_check(&cfg, "layers", collect, &r), 0);
	assert_int_equal(load(&cfg, "free-default.conf", &r), 0);
	assert_int_equal(cfg.server.modes, 1u << CHAT_MODE_TURNS);
	assert_int_equal(cfg.server.default_mode, CHAT_MODE_FREE);
	assert_int_equal(config_check(&cfg, "/etc/turnchat.conf", collect, &r), 1);
	assert_int_equal(r.count, 1);
	assert_string_equal(r.lines[0], "/etc/turnchat.conf: server.default_mode \"free\" "
					"is not in server.modes (turns)");
}

/* Under systemd and inetd the TLS socket is told by its port. */
static void test_check_tls_port(void **state)
{
	struct config cfg;
	struct reports r = {0};

	(void)state;
	defaults(&cfg);
	cfg.port = cfg.tls_port;
	assert_int_equal(config_check(&cfg, "plain", collect, &r), 0);
	strcpy(cfg.server.tls_certificate, "/etc/turnchat/tls.crt");
	strcpy(cfg.server.tls_key, "/etc/turnchat/tls.key");
	assert_int_equal(config_check(&cfg, "tls", collect, &r), 1);
	assert_string_equal(r.lines[r.count - 1],
			    "tls: tls_port 52929 is also port: TLS needs a port of its own");
	cfg.tls_port = 6001;
	assert_int_equal(config_check(&cfg, "tls", collect, &r), 0);
}

int main(int argc, char **argv)
{
	static char default_shipped[1024];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_shipped_file),
		cmocka_unit_test(test_layering),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_not_groups),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_bad_modes),
		cmocka_unit_test(test_unchanged_after_error),
		cmocka_unit_test(test_no_report),
		cmocka_unit_test(test_check_default_mode),
		cmocka_unit_test(test_check_tls_port),
	};

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s FIXTURES_DIR [SHIPPED_CONF]\n", argv[0]);
		return 2;
	}
	fixtures_dir = argv[1];
	if (argc == 3) {
		shipped_conf = argv[2];
	} else {
		snprintf(default_shipped, sizeof(default_shipped), "%s/../../../etc/turnchat.conf",
			 fixtures_dir);
		shipped_conf = default_shipped;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
