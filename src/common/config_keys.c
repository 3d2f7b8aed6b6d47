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

/* A key's group and name are its field's path in struct config: each is
 * written once, and a key cannot fill another's field. */
#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define IN_top(name) NULL, #name, FIELD(name)
#define IN_server(name) "server", #name, FIELD(server.name)
#define IN_client(name) "client", #name, FIELD(client.name)
#define KEY(group, name, kind)                           \
	{                                                \
		IN_##group(name), KEY_##kind, 0, 0, NULL \
	}
#define INTEGER(group, name, min, max)                        \
	{                                                     \
		IN_##group(name), KEY_INTEGER, min, max, NULL \
	}
#define WORDS(group, name, kind, words)                   \
	{                                                 \
		IN_##group(name), KEY_##kind, 0, 0, words \
	}

static const struct key keys[] = {
	KEY(top, host, HOST),
	INTEGER(top, port, 1, 65535),
	INTEGER(top, tls_port, 1, 65535),
	KEY(server, name, NAME),
	KEY(server, default_room, NAME),
	KEY(server, default_mode, MODE),
	KEY(server, modes, MODES),
	INTEGER(server, max_line, CONFIG_MAX_LINE_MIN, CONFIG_MAX_LINE_MAX),
	INTEGER(server, max_clients, 1, CONFIG_MAX_CLIENTS_MAX),
	INTEGER(server, idle_timeout, 0, CONFIG_IDLE_TIMEOUT_MAX),
	INTEGER(server, exit_idle, 0, CONFIG_EXIT_IDLE_MAX),
	INTEGER(server, max_per_address, 1, CONFIG_MAX_CLIENTS_MAX),
	INTEGER(server, max_waiting_per_address, 1, CONFIG_MAX_CLIENTS_MAX),
	INTEGER(server, ipv6_prefix, CONFIG_IPV6_PREFIX_MIN, 128),
	INTEGER(server, join_timeout, 0, CONFIG_IDLE_TIMEOUT_MAX),
	INTEGER(server, max_queue, CONFIG_MAX_QUEUE_MIN, CONFIG_MAX_QUEUE_MAX),
	INTEGER(server, slow_timeout, 1, CONFIG_IDLE_TIMEOUT_MAX),
	INTEGER(server, rate_limit, 0, CONFIG_RATE_MAX),
	INTEGER(server, rate_burst, 1, CONFIG_RATE_MAX),
	KEY(server, user, NAME),
	KEY(server, group, NAME),
	WORDS(server, log_target, WORD, log_targets),
	WORDS(server, log_facility, WORD, log_facilities),
	WORDS(server, log_level, WORD, log_levels),
	KEY(server, typing, BOOL),
	KEY(server, tls_certificate, PATH),
	KEY(server, tls_key, PATH),
	KEY(server, require_tls, BOOL),
	INTEGER(server, resume_timeout, 0, CONFIG_IDLE_TIMEOUT_MAX),
	KEY(client, name, NAME_OR_EMPTY),
	KEY(client, room, NAME_OR_EMPTY),
	KEY(client, mode, MODE),
	KEY(client, typing, BOOL),
	KEY(client, bell, BOOL),
	KEY(client, tls, BOOL),
	WORDS(client, tls_ca, PATH, ca_words),
	KEY(client, resume, BOOL),
	INTEGER(client, keepalive, 0, CONFIG_IDLE_TIMEOUT_MAX),
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
