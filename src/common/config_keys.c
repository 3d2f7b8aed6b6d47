/*
 * config_keys: called by config.c for every setting it reads; and the
 * built-in defaults, called by both programs, the generator and the tests.
 */
#include "config_keys.h"

#include <string.h>
#include <syslog.h>

#include "config.h"

static const struct word log_targets[] = {
	{"auto", LOG_TARGET_AUTO},
	{"syslog", LOG_TARGET_SYSLOG},
	{"stderr", LOG_TARGET_STDERR},
	{NULL, 0},
};

static const struct word log_facilities[] = {
	{"daemon", LOG_DAEMON},
	{"user", LOG_USER},
	{"local0", LOG_LOCAL0},
	{"local1", LOG_LOCAL1},
	{"local2", LOG_LOCAL2},
	{"local3", LOG_LOCAL3},
	{"local4", LOG_LOCAL4},
	{"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6},
	{"local7", LOG_LOCAL7},
	{NULL, 0},
};

static const struct word log_levels[] = {
	{"err", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
	{"info", LOG_INFO}, {"debug", LOG_DEBUG},     {NULL, 0},
};

static const struct word ca_words[] = {
	{"system", 0},
	{NULL, 0},
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct key keys[] = {
	{NULL, "host", KEY_HOST, FIELD(host), 0, 0, NULL},
	{NULL, "port", KEY_INTEGER, FIELD(port), 1, 65535, NULL},
	{NULL, "tls_port", KEY_INTEGER, FIELD(tls_port), 1, 65535, NULL},
	{"server", "name", KEY_NAME, FIELD(server.name), 0, 0, NULL},
	{"server", "default_room", KEY_NAME, FIELD(server.default_room), 0, 0, NULL},
	{"server", "default_mode", KEY_MODE, FIELD(server.default_mode), 0, 0, NULL},
	{"server", "modes", KEY_MODES, FIELD(server.modes), 0, 0, NULL},
	{"server", "max_line", KEY_INTEGER, FIELD(server.max_line), CONFIG_MAX_LINE_MIN,
	 CONFIG_MAX_LINE_MAX, NULL},
	{"server", "max_clients", KEY_INTEGER, FIELD(server.max_clients), 1, CONFIG_MAX_CLIENTS_MAX,
	 NULL},
	{"server", "idle_timeout", KEY_INTEGER, FIELD(server.idle_timeout), 0,
	 CONFIG_IDLE_TIMEOUT_MAX, NULL},
	{"server", "exit_idle", KEY_INTEGER, FIELD(server.exit_idle), 0, CONFIG_EXIT_IDLE_MAX, NULL},
	{"server", "max_per_address", KEY_INTEGER, FIELD(server.max_per_address), 1,
	 CONFIG_MAX_CLIENTS_MAX, NULL},
	{"server", "max_waiting_per_address", KEY_INTEGER, FIELD(server.max_waiting_per_address), 1,
	 CONFIG_MAX_CLIENTS_MAX, NULL},
	{"server", "ipv6_prefix", KEY_INTEGER, FIELD(server.ipv6_prefix), CONFIG_IPV6_PREFIX_MIN, 128,
	 NULL},
	{"server", "join_timeout", KEY_INTEGER, FIELD(server.join_timeout), 0,
	 CONFIG_IDLE_TIMEOUT_MAX, NULL},
	{"server", "max_queue", KEY_INTEGER, FIELD(server.max_queue), CONFIG_MAX_QUEUE_MIN,
	 CONFIG_MAX_QUEUE_MAX, NULL},
	{"server", "slow_timeout", KEY_INTEGER, FIELD(server.slow_timeout), 1,
	 CONFIG_IDLE_TIMEOUT_MAX, NULL},
	{"server", "rate_limit", KEY_INTEGER, FIELD(server.rate_limit), 0, CONFIG_RATE_MAX, NULL},
	{"server", "rate_burst", KEY_INTEGER, FIELD(server.rate_burst), 1, CONFIG_RATE_MAX, NULL},
	{"server", "user", KEY_NAME, FIELD(server.user), 0, 0, NULL},
	{"server", "group", KEY_NAME, FIELD(server.group), 0, 0, NULL},
	{"server", "log_target", KEY_WORD, FIELD(server.log_target), 0, 0, log_targets},
	{"server", "log_facility", KEY_WORD, FIELD(server.log_facility), 0, 0, log_facilities},
	{"server", "log_level", KEY_WORD, FIELD(server.log_level), 0, 0, log_levels},
	{"server", "typing", KEY_BOOL, FIELD(server.typing), 0, 0, NULL},
	{"server", "tls_certificate", KEY_PATH, FIELD(server.tls_certificate), 0, 0, NULL},
	{"server", "tls_key", KEY_PATH, FIELD(server.tls_key), 0, 0, NULL},
	{"server", "require_tls", KEY_BOOL, FIELD(server.require_tls), 0, 0, NULL},
	{"server", "resume_timeout", KEY_INTEGER, FIELD(server.resume_timeout), 0,
	 CONFIG_IDLE_TIMEOUT_MAX, NULL},
	{"client", "name", KEY_NAME_OR_EMPTY, FIELD(client.name), 0, 0, NULL},
	{"client", "room", KEY_NAME_OR_EMPTY, FIELD(client.room), 0, 0, NULL},
	{"client", "mode", KEY_MODE, FIELD(client.mode), 0, 0, NULL},
	{"client", "typing", KEY_BOOL, FIELD(client.typing), 0, 0, NULL},
	{"client", "bell", KEY_BOOL, FIELD(client.bell), 0, 0, NULL},
	{"client", "tls", KEY_BOOL, FIELD(client.tls), 0, 0, NULL},
	{"client", "tls_ca", KEY_PATH, FIELD(client.tls_ca), 0, 0, ca_words},
	{"client", "resume", KEY_BOOL, FIELD(client.resume), 0, 0, NULL},
	{"client", "keepalive", KEY_INTEGER, FIELD(client.keepalive), 0, CONFIG_IDLE_TIMEOUT_MAX,
	 NULL},
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

const struct key *config_key_find(const char *group, const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if ((group ? keys[i].group && strcmp(group, keys[i].group) == 0 : !keys[i].group) &&
		    strcmp(name, keys[i].name) == 0)
			return &keys[i];
	}
	return NULL;
}

void config_set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->host, "localhost");
	cfg->port = PROTOCOL_DEFAULT_PORT;
	cfg->tls_port = PROTOCOL_DEFAULT_TLS_PORT;
	strcpy(cfg->server.name, "turnchatd");
	strcpy(cfg->server.default_room, "lobby");
	cfg->server.default_mode = CHAT_MODE_TURNS;
	cfg->server.modes = (1u << CHAT_MODE_TURNS) | (1u << CHAT_MODE_FREE);
	cfg->server.max_line = PROTOCOL_DEFAULT_MAX_LINE;
	cfg->server.max_clients = 1024;
	cfg->server.idle_timeout = 3600;
	cfg->server.exit_idle = 300;
	cfg->server.max_per_address = 32;
	cfg->server.max_waiting_per_address = 4;
	cfg->server.ipv6_prefix = 48;
	cfg->server.join_timeout = 60;
	cfg->server.max_queue = 256 * 1024;
	cfg->server.slow_timeout = 30;
	cfg->server.rate_limit = 20;
	cfg->server.rate_burst = 40;
	strcpy(cfg->server.user, "nobody");
	strcpy(cfg->server.group, "nogroup");
	cfg->server.log_target = LOG_TARGET_AUTO;
	cfg->server.log_facility = LOG_DAEMON;
	cfg->server.log_level = LOG_INFO;
	cfg->server.typing = true;
	cfg->server.resume_timeout = 120;
	cfg->client.mode = CHAT_MODE_TURNS;
	cfg->client.typing = true;
	cfg->client.resume = true;
	cfg->client.keepalive = 15;
}
