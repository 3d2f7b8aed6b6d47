/*
 * config: the one module that knows libconfig. Both programs load
 * /etc/turnchat.conf (and, for the client, more layers) into this typed
 * struct once, then never look a key up again.
 */
#ifndef TURNCHAT_CONFIG_H
#define TURNCHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config_file.h"
#include "protocol.h"

#define CONFIG_HOST_MAX 255
#define CONFIG_MAX_LINE_MIN 64
#define CONFIG_MAX_LINE_MAX (1024 * 1024)
#define CONFIG_MAX_CLIENTS_MAX 1000000
#define CONFIG_IDLE_TIMEOUT_MAX (7 * 24 * 3600)
#define CONFIG_EXIT_IDLE_MAX (24 * 3600)
#define CONFIG_MAX_QUEUE_MIN 16384
#define CONFIG_MAX_QUEUE_MAX (64 * 1024 * 1024)
#define CONFIG_RATE_MAX 1000000
#define CONFIG_IPV6_PREFIX_MIN 16
#define CONFIG_PATH_MAX 1023
/* Under systemd the pair server.tls_certificate and server.tls_key name
 * reaches the service as these credentials (LoadCredential=, written by
 * turnchat-socket-generator), and a reload's fresh copies under these
 * names in $RUNTIME_DIRECTORY; the daemon's certificate module reads them. */
#define CONFIG_CERTIFICATE_CREDENTIAL "tls.crt"
#define CONFIG_KEY_CREDENTIAL "tls.key"

enum log_target {
	LOG_TARGET_AUTO, /* stderr with -f, syslog otherwise */
	LOG_TARGET_SYSLOG,
	LOG_TARGET_STDERR,
};

struct server_config {
	char name[PROTOCOL_NAME_BYTES + 1];
	char default_room[PROTOCOL_NAME_BYTES + 1];
	enum chat_mode default_mode;
	unsigned modes;  /* bit set of (1u << enum chat_mode) */
	size_t max_line; /* bytes before the LF */
	unsigned max_clients;
	unsigned idle_timeout;            /* seconds without a line in a conversation; 0 = never */
	unsigned exit_idle;               /* seconds with nobody connected before exiting, when a
					     service manager can start us again; 0 = never */
	unsigned max_per_address;         /* connections from one IPv4 address or IPv6 prefix */
	unsigned max_waiting_per_address; /* of those, how many may wait in rooms at once */
	unsigned ipv6_prefix;             /* bits of an IPv6 address that make it one address */
	unsigned join_timeout;            /* seconds to /join after connecting; 0 = never */
	size_t max_queue;                 /* bytes of unsent output one connection may hold */
	unsigned slow_timeout; /* seconds a reader may make no progress with output waiting */
	unsigned rate_limit;   /* lines per second one connection may send; 0 = no limit */
	unsigned rate_burst;   /* lines it may send at once above that rate */
	char user[PROTOCOL_NAME_MAX + 1]; /* who to become after opening sockets as root */
	char group[PROTOCOL_NAME_MAX + 1];
	enum log_target log_target;
	int log_facility;        /* syslog(3) LOG_DAEMON, LOG_LOCAL0, ... */
	int log_level;           /* syslog(3) priority: LOG_ERR .. LOG_DEBUG */
	bool typing;             /* relay TYPING to clients that ask for it */
	unsigned resume_timeout; /* seconds a dropped person's part waits; 0: no resume */
	bool require_tls;        /* plain text only from loopback */
	/* TLS is served on tls_port when both are set. */
	char tls_certificate[CONFIG_PATH_MAX + 1];
	char tls_key[CONFIG_PATH_MAX + 1];
};

struct client_config {
	char name[PROTOCOL_NAME_BYTES + 1];
	char room[PROTOCOL_NAME_BYTES + 1]; /* empty: the server's default room */
	enum chat_mode mode;
	bool typing;        /* tell the partner when we type; show when they do */
	bool bell;          /* ring the terminal bell when a line arrives */
	bool tls;           /* connect to tls_port, with TLS */
	bool resume;        /* ask for resume: come back after a dropped connection */
	unsigned keepalive; /* seconds of silence before asking the server /ping; 0: never */
	/* Empty: trust on first use (known_hosts); "system" or a CA file. */
	char tls_ca[CONFIG_PATH_MAX + 1];
};

struct config {
	char host[CONFIG_HOST_MAX + 1];
	unsigned port;
	unsigned tls_port;
	struct server_config server;
	struct client_config client;
};

/* Fills in the built-in defaults; etc/turnchat.conf documents the same values. */
void config_set_defaults(struct config *cfg);

/*
 * Reads one file and applies only the keys it sets on top of what cfg holds,
 * so the client can layer several files. A missing file is not an error
 * unless must_exist. The file and its @includes must be regular files of
 * CONFIG_FILE_MAX bytes in all (see config_file.h). Every problem is
 * reported (type, range, unknown key, syntax), each as "file:line: message". Returns the number of
 * errors; on any error cfg is left exactly as it was.
 */
int config_load_file(struct config *cfg, const char *path, bool must_exist, config_report_fn *report,
		     void *ctx);

/*
 * Checks what only makes sense across keys and layers (the default mode must
 * be an allowed mode, and so on). Returns the number of errors reported.
 */
int config_check(const struct config *cfg, const char *origin, config_report_fn *report, void *ctx);

#endif
