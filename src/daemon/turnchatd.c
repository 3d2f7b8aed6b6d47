/*
 * turnchatd: pairs people who join the same meeting point and relays their
 * lines. Reads the config, opens the listening sockets, then runs one event
 * loop until SIGTERM or SIGINT. Never forks: systemd, inetd and a shell all
 * keep it in the foreground.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <unistd.h>

#include "activation.h"
#include "build_info.h"
#include "certificate.h"
#include "cli.h"
#include "config.h"
#include "connection.h"
#include "event.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "state.h"

struct daemon {
	struct event_loop *loop;
	struct server server;
	struct listener *listener;
	struct listener *tls_listener; /* the TLS port's sockets, if any */
	const char *config_path;
	bool config_explicit;
	char config_option[4200]; /* "-c FILE " when given, for commands we suggest */
	bool foreground, verbose;
	bool managed; /* systemd or inetd owns the sockets and can start us again */
};

static void print_config_error(void *ctx, const char *message)
{
	bool *to_log = ctx;
	if (*to_log)
		log_warnx("%s", message);
	else
		fprintf(stderr, "turnchatd: %s\n", message);
}

/* Returns the number of errors; on success *cfg holds the new config. */
static int read_config(const struct daemon *daemon, struct config *cfg, bool to_log)
{
	config_set_defaults(cfg);
	int errors = config_load_file(cfg, daemon->config_path, daemon->config_explicit,
				      print_config_error, &to_log);
	if (errors == 0)
		errors = config_check(cfg, daemon->config_path, print_config_error, &to_log);
	return errors;
}

static void on_stop_signal(int signo, void *data)
{
	struct daemon *daemon = data;
	log_notice("received %s", strsignal(signo));
	activation_stopping();
	listener_destroy(daemon->listener);
	daemon->listener = NULL;
	listener_destroy(daemon->tls_listener);
	daemon->tls_listener = NULL;
	server_stop(&daemon->server);
}

static void on_reload_signal(int signo, void *data)
{
	struct daemon *daemon = data;
	struct config cfg;
	(void)signo;

	log_notice("reloading %s", daemon->config_path);
	activation_reloading();
	if (read_config(daemon, &cfg, true) > 0) {
		log_warnx("%s has errors; the configuration in force stays", daemon->config_path);
		activation_ready();
		return;
	}
	/* Where to listen is the socket's business; it cannot move under us. */
	server_apply_config(&daemon->server, &cfg);
	log_set_level(daemon->verbose ? LOG_DEBUG : cfg.server.log_level);
	/* A plain-text inetd entry has no TLS socket and may not read the key. */
	if (!daemon->managed || (daemon->tls_listener && listener_has_sockets(daemon->tls_listener)))
		certificate_reload(&daemon->server, &cfg.server);
	if (daemon->managed && daemon->listener)
		listener_check_address(daemon->listener, cfg.host, cfg.port);
	log_notice("configuration reloaded");
	activation_ready();
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: turnchatd [-ftv] [-c file] [--fingerprint | --make-certificate]\n"
		"\n"
		"Pairs people who join the same meeting point and relays their lines.\n"
		"\n"
		"  -c, --config FILE   read FILE instead of %s\n"
		"  -t, --test          check the configuration, print \"configuration OK\", exit\n"
		"  -f, --foreground    log to stderr instead of syslog\n"
		"  -v, --verbose       log debug messages too\n"
		"      --fingerprint   print the TLS certificate's key fingerprint and exit\n"
		"      --make-certificate\n"
		"                      make a self-signed TLS key and certificate where the\n"
		"                      config says, unless they exist, and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n",
		TURNCHAT_CONFIG_PATH);
}

/*
 * Sockets come from systemd, from inetd (a listening socket as fd 0, its
 * "wait" mode), or, when neither hands one over, from the config
 * (bind_sockets). Returns 1 when some were handed over, 0 when none, -1.
 */
static int adopt_sockets(struct daemon *daemon)
{
	const struct config *cfg = &daemon->server.config;
	int adopted = activation_adopt_sockets(daemon->listener, daemon->tls_listener, cfg->tls_port);

	if (adopted < 0)
		return -1;
	if (adopted == 0 && listener_fd_is_listening(STDIN_FILENO)) {
		/* inetd: one entry a port; the TLS one is told by its port. */
		bool tls = listener_port(STDIN_FILENO) == cfg->tls_port;
		char where[128];
		if (fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK) < 0 ||
		    listener_add_fd(tls ? daemon->tls_listener : daemon->listener, STDIN_FILENO) <
			    0) {
			log_warn("cannot serve the socket inetd passed");
			return -1;
		}
		listener_describe(STDIN_FILENO, where, sizeof(where));
		log_info("listening on %s%s (socket from inetd)", where, tls ? " for TLS" : "");
		adopted = 1;
	}
	if (adopted == 0)
		return 0;
	daemon->managed = true;
	listener_check_address(daemon->listener, cfg->host, cfg->port);
	return 1;
}

/*
 * The TLS pair, read once the sockets are known and still as root (the key
 * may be root's alone), and only when there is a TLS socket to serve or to
 * open: a plain-text inetd entry may run as a user who cannot read the key.
 * -1 when it cannot be used (logged, with what to do).
 */
static int load_certificate(struct daemon *daemon)
{
	const struct server_config *cfg = &daemon->server.config.server;

	if (daemon->managed && !listener_has_sockets(daemon->tls_listener))
		return 0;
	if (daemon->managed && !certificate_configured(cfg)) {
		log_warnx("a TLS socket was passed, but no certificate is configured: "
			  "connections to it are closed at once");
		return 0;
	}
	return certificate_start(cfg, daemon->config_option, &daemon->server.tls);
}

static int bind_sockets(struct daemon *daemon)
{
	const struct config *cfg = &daemon->server.config;
	char error[512];

	if (listener_bind(daemon->listener, cfg->host, cfg->port, error, sizeof(error)) == 0 ||
	    (daemon->server.tls && listener_bind(daemon->tls_listener, cfg->host, cfg->tls_port,
						 error, sizeof(error)) == 0)) {
		log_warnx("%s", error);
		return -1;
	}
	return 0;
}

/*
 * Started as root (from a shell or inetd), keep nothing of it once the
 * sockets are open: become the configured user and group for good.
 * Returns 1 once done, 0 when not root, -1 on failure (logged).
 */
static int drop_privileges(const struct server_config *cfg)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	struct group *gr = getgrnam(cfg->group);
	if (pw == NULL || gr == NULL) {
		log_warnx("cannot become user '%s' and group '%s': no such %s", cfg->user, cfg->group,
			  pw == NULL ? "user" : "group");
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("refusing to run as root: set server.user to an unprivileged user");
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(gr->gr_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_warn("cannot become user '%s' and group '%s'", cfg->user, cfg->group);
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		log_warnx("could become root again after dropping privileges; stopping");
		return -1;
	}
	log_info("running as user '%s' and group '%s'", cfg->user, cfg->group);
	return 1;
}

/* inetd makes the listening socket fds 0, 1 and 2: keep stray output off it. */
static void detach_stdio_from_socket(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
		if (listener_fd_is_listening(fd))
			dup2(null, fd);
	close(null);
}

/*
 * Started as root, the daemon reads its config as root but every reload
 * reads it as server.user: find out now, not at the first SIGHUP. Call
 * after dropping privileges. A warning only: the daemon serves on.
 */
static void check_readable_after_drop(const struct daemon *daemon, const struct server_config *cfg,
				      bool to_log)
{
	struct config again;
	char why[3 * CONFIG_PATH_MAX + 512] = "";

	if (read_config(daemon, &again, to_log) > 0)
		snprintf(why, sizeof(why),
			 "as user '%s' the configuration cannot be read again: every reload "
			 "(SIGHUP) will fail until %s and what it includes are readable by '%s'",
			 cfg->user, daemon->config_path, cfg->user);
	else if (certificate_configured(cfg) &&
		 (access(cfg->tls_key, R_OK) < 0 || access(cfg->tls_certificate, R_OK) < 0))
		/* The pair was read as root; a renewal is read as the user. */
		snprintf(why, sizeof(why),
			 "as user '%s' the TLS key or certificate cannot be read: a renewed pair "
			 "will not be taken on reload (SIGHUP) until %s and %s are readable by '%s' "
			 "(or restart turnchatd to renew)",
			 cfg->user, cfg->tls_key, cfg->tls_certificate, cfg->user);
	if (why[0] && to_log)
		log_warnx("%s", why);
	else if (why[0])
		fprintf(stderr, "turnchatd: warning: %s\n", why);
}

/* The loop's bookkeeping between events: status, watchdog, idle exit. */
struct housekeeping {
	uint64_t last_resume;
	uint64_t last_status;
	uint64_t last_watchdog;
	uint64_t watchdog_ms;
	uint64_t idle_since;
	unsigned status[3];
};

/* Returns true when the daemon should exit because nobody needs it. */
static bool housekeeping(struct daemon *daemon, struct housekeeping *h)
{
	struct server *server = &daemon->server;
	uint64_t now = event_now_ms(daemon->loop);
	unsigned status[3] = {(unsigned)pairing_waiting(server->pairing),
			      server_conversations(server), server->clients};

	/* At most once a second: under churn the counts change every pass, and
	 * each STATUS= is a datagram to the service manager. The server's tick
	 * wakes the loop each second, so the last change is never held back long. */
	if (memcmp(status, h->status, sizeof(status)) != 0 && now - h->last_status >= 1000) {
		memcpy(h->status, status, sizeof(status));
		activation_status(status[0], status[1], status[2]);
		h->last_status = now;
	}
	if (h->watchdog_ms && now - h->last_watchdog >= h->watchdog_ms) {
		activation_watchdog();
		h->last_watchdog = now;
	}
	if (daemon->listener && now - h->last_resume >= 1000) {
		listener_pause(daemon->listener, false);
		listener_pause(daemon->tls_listener, false);
		h->last_resume = now;
	}
	unsigned exit_idle = server->config.server.exit_idle;
	if (!daemon->managed || exit_idle == 0 || server->stopping || !server_idle(server)) {
		h->idle_since = now;
		return false;
	}
	/* Someone knocking right now is served first; one who comes after we
	 * exit waits in the backlog until the service manager starts us again. */
	if (now - h->idle_since < (uint64_t)exit_idle * 1000 ||
	    listener_has_pending(daemon->listener) || listener_has_pending(daemon->tls_listener))
		return false;
	log_notice("nobody connected for %u seconds; exiting until the next connection", exit_idle);
	return true;
}

int main(int argc, char **argv)
{
	enum { OPT_FINGERPRINT = 256, OPT_MAKE_CERTIFICATE };
	static const struct option options[] = {
		{"test", no_argument, NULL, 't'},
		{"foreground", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"fingerprint", no_argument, NULL, OPT_FINGERPRINT},
		{"make-certificate", no_argument, NULL, OPT_MAKE_CERTIFICATE},
		CLI_LONG_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	struct daemon daemon = {.config_path = TURNCHAT_CONFIG_PATH};
	struct config cfg;
	bool test_only = false;
	int opt, status = 1, action = 0;

	while ((opt = getopt_long(argc, argv, "tfv" CLI_SHORT_OPTIONS, options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			daemon.config_path = optarg;
			daemon.config_explicit = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'f':
			daemon.foreground = true;
			break;
		case 'v':
			daemon.verbose = true;
			break;
		case OPT_FINGERPRINT:
		case OPT_MAKE_CERTIFICATE:
			action = opt;
			break;
		default: /* -V, -h, or a mistake */
			return cli_standard_option(opt, "turnchatd", usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "turnchatd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}

	int errors = read_config(&daemon, &cfg, false);
	if (action && errors == 0)
		return action == OPT_FINGERPRINT ? certificate_print_fingerprint(&cfg.server)
						 : certificate_make(&cfg.server);
	if (daemon.config_explicit)
		snprintf(daemon.config_option, sizeof(daemon.config_option), "-c %s ",
			 daemon.config_path);
	if (test_only) {
		/* The TLS pair too, as this user: run as the daemon will be. */
		if (errors == 0 &&
		    certificate_start(&cfg.server, daemon.config_option, &daemon.server.tls) < 0)
			errors++;
		certificate_drop(&daemon.server);
		/* As root, check what the daemon would meet once it is the user. */
		if (errors == 0 && geteuid() == 0) {
			log_init("turnchatd", true, LOG_DAEMON, LOG_WARNING);
			if (drop_privileges(&cfg.server) < 0)
				errors++;
			else
				check_readable_after_drop(&daemon, &cfg.server, false);
		}
		if (errors == 0)
			printf("configuration OK\n");
		else
			fprintf(stderr, "turnchatd: %d error%s in %s\n", errors,
				errors == 1 ? "" : "s", daemon.config_path);
		return errors == 0 ? 0 : EX_CONFIG;
	}
	if (errors > 0) {
		fprintf(stderr, "turnchatd: %s has errors; not starting\n", daemon.config_path);
		return EX_CONFIG;
	}

	bool to_stderr = cfg.server.log_target == LOG_TARGET_STDERR ||
			 (cfg.server.log_target == LOG_TARGET_AUTO && daemon.foreground);
	log_init("turnchatd", to_stderr, cfg.server.log_facility,
		 daemon.verbose ? LOG_DEBUG : cfg.server.log_level);
	signal(SIGPIPE, SIG_IGN);

	daemon.loop = event_loop_create();
	if (daemon.loop == NULL || server_init(&daemon.server, daemon.loop, &cfg) < 0)
		fatal("cannot set up the event loop");
	daemon.listener = listener_create(daemon.loop, server_accept, &daemon.server);
	daemon.tls_listener = listener_create(daemon.loop, server_accept_tls, &daemon.server);
	int adopted = -1, dropped = -1;
	if (daemon.listener == NULL || daemon.tls_listener == NULL ||
	    (adopted = adopt_sockets(&daemon)) < 0)
		goto out;
	if (load_certificate(&daemon) < 0) {
		log_warnx("no usable TLS certificate; not starting");
		status = EX_CONFIG;
		goto out;
	}
	if ((adopted == 0 && bind_sockets(&daemon) < 0) ||
	    (dropped = drop_privileges(&cfg.server)) < 0)
		goto out;
	if (dropped)
		check_readable_after_drop(&daemon, &cfg.server, true);
	state_start(&daemon.server);
	if (daemon.managed && !to_stderr)
		detach_stdio_from_socket();
	if (event_add_signal(daemon.loop, SIGTERM, on_stop_signal, &daemon) < 0 ||
	    event_add_signal(daemon.loop, SIGINT, on_stop_signal, &daemon) < 0 ||
	    event_add_signal(daemon.loop, SIGHUP, on_reload_signal, &daemon) < 0)
		fatal("cannot watch signals");
	char tls_port[32] = "";
	if (daemon.server.tls)
		snprintf(tls_port, sizeof(tls_port), ", TLS port %u", cfg.tls_port);
	log_notice("turnchatd %s ready: host '%s', port %u%s, %s mode by default", TURNCHAT_VERSION,
		   cfg.host, cfg.port, tls_port, protocol_mode_name(cfg.server.default_mode));
	activation_ready();

	uint64_t started = event_now_ms(daemon.loop);
	struct housekeeping h = {.last_resume = started,
				 .idle_since = started,
				 .watchdog_ms = activation_watchdog_interval_ms(),
				 .status = {~0u, ~0u, ~0u}};
	while (!(daemon.server.stopping && server_idle(&daemon.server))) {
		if (event_loop_dispatch(daemon.loop, -1) < 0)
			fatal("event loop");
		if (housekeeping(&daemon, &h))
			break;
	}
	log_notice("stopped");
	status = 0;
out:
	listener_destroy(daemon.listener);
	listener_destroy(daemon.tls_listener);
	certificate_drop(&daemon.server);
	server_finish(&daemon.server);
	event_loop_destroy(daemon.loop);
	return status;
}
