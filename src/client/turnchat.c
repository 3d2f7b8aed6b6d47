/*
 * turnchat: the client. Settles the settings (built-in defaults, then
 * /etc/turnchat.conf, then the user's file, then -c, then the command
 * line), remembering where the host and port came from for the hint when
 * no server answers there, connects, and hands the conversation to the
 * chat module.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "build_info.h"
#include "chat.h"
#include "cli.h"
#include "config.h"
#include "net.h"
#include "trust.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: turnchat [options] [host[:port]]\n"
		"\n"
		"Talk with one other person through a turnchatd server.\n"
		"\n"
		"  -H, --host HOST     server to connect to (default from the config: localhost)\n"
		"  -p, --port PORT     its port (default from the config: %d)\n"
		"  -n, --name NAME     the name your partner sees (default: your login name)\n"
		"  -r, --room ROOM     the meeting point to join (default: the server's)\n"
		"  -m, --mode MODE     turns (take turns) or free (type any time)\n"
		"      --free          the same as --mode free\n"
		"      --timestamps    show the time before each line\n"
		"      --bell          ring the terminal bell when a line arrives\n"
		"      --tls           connect with TLS, to the TLS port (default: %d)\n"
		"  -c, --config FILE   read FILE after %s and your own config\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Type '/q' (or Ctrl-D) to leave; your partner is told. '/help' lists\n"
		"what works at that moment.\n",
		PROTOCOL_DEFAULT_PORT, PROTOCOL_DEFAULT_TLS_PORT, TURNCHAT_CONFIG_PATH);
}

static void print_error(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "turnchat: %s\n", message);
}

/* Where the host and port in use were set: a file's path, or a few words. */
static char address_origin[4096] = "the built-in defaults";
static bool address_from_file; /* a file other than the system one */

/* One layer; notes the file when it changed the host or port. */
static int load_layer(struct config *cfg, const char *path, bool must_exist)
{
	char host[CONFIG_HOST_MAX + 1];
	unsigned port = cfg->port, tls_port = cfg->tls_port;
	strcpy(host, cfg->host);
	int errors = config_load_file(cfg, path, must_exist, print_error, NULL);
	if (strcmp(host, cfg->host) != 0 || port != cfg->port || tls_port != cfg->tls_port) {
		snprintf(address_origin, sizeof(address_origin), "%s", path);
		address_from_file = strcmp(path, TURNCHAT_CONFIG_PATH) != 0;
	}
	return errors;
}

/* Layers every config file the user has; returns the number of errors. */
static int load_config(struct config *cfg, const char *explicit_path)
{
	char user_path[4096] = "";
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int errors = load_layer(cfg, TURNCHAT_CONFIG_PATH, false);

	if (xdg && xdg[0] == '/')
		snprintf(user_path, sizeof(user_path), "%s/turnchat/turnchat.conf", xdg);
	else if (home && home[0])
		snprintf(user_path, sizeof(user_path), "%s/.config/turnchat/turnchat.conf", home);
	if (user_path[0])
		errors += load_layer(cfg, user_path, false);
	if (explicit_path)
		errors += load_layer(cfg, explicit_path, true);
	return errors;
}

static bool parse_port(const char *text, unsigned *port)
{
	char *end;
	errno = 0;
	unsigned long value = strtoul(text, &end, 10);
	if (errno || end == text || *end || value < 1 || value > 65535 || text[0] == '-')
		return false;
	*port = (unsigned)value;
	return true;
}

/* "host", "host:port", "[v6addr]" or "[v6addr]:port". */
static bool parse_destination(char *text, struct config *cfg, bool *port_given)
{
	char *port = NULL;

	if (text[0] == '[') {
		char *close = strchr(text, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return false;
		*close = '\0';
		port = close[1] == ':' ? close + 2 : NULL;
		text++;
	} else if (strchr(text, ':') == strrchr(text, ':') && strchr(text, ':')) {
		port = strchr(text, ':');
		*port++ = '\0';
	}
	if (text[0] == '\0' || strlen(text) > CONFIG_HOST_MAX)
		return false;
	if (port && !parse_port(port, &cfg->port))
		return false;
	*port_given = port != NULL;
	strcpy(cfg->host, text);
	return true;
}

/* A name or room from the command line (NULL: none given) is valid, or said not to be. */
static bool name_ok(const char *what, const char *value)
{
	if (value == NULL || protocol_valid_name(value, strlen(value)))
		return true;
	fprintf(stderr,
		"turnchat: %s '%s': use 1-32 letters or digits (of any script), '_', '.' or '-'\n",
		what, value);
	return false;
}

/* The login name when it is a valid turnchat name, else "guest". */
static void default_name(char *name, size_t size)
{
	const char *login = getenv("USER");
	struct passwd *pw = getpwuid(getuid());
	if ((login == NULL || !protocol_valid_name(login, strlen(login))) && pw)
		login = pw->pw_name;
	if (login == NULL || !protocol_valid_name(login, strlen(login)))
		login = "guest";
	snprintf(name, size, "%s", login);
}

static int connect_to(const struct config *cfg)
{
	struct addrinfo *list;
	int fd = -1, saved = ECONNREFUSED;
	int rc = net_resolve(cfg->host, cfg->port, false, &list);
	if (rc != 0) {
		fprintf(stderr, "turnchat: cannot find host '%s': %s\n", cfg->host, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			saved = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(list);
	if (fd < 0) {
		/* The hint names the settings actually used, so a server started on
		 * the same file listens where this client looks. */
		fprintf(stderr,
			"turnchat: cannot connect to '%s' on port number '%u': %s\n"
			"turnchat: is the server running? This host and port come from %s.\n"
			"turnchat: start it with 'turnchatd -f%s%s' or 'systemctl start "
			"turnchat.socket'.\n",
			cfg->host, cfg->port, strerror(saved), address_origin,
			address_from_file ? " -c " : "", address_from_file ? address_origin : "");
		return -1;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		perror("turnchat");
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	enum { OPT_FREE = 256, OPT_TIMESTAMPS, OPT_BELL, OPT_TLS };
	static const struct option options[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"name", required_argument, NULL, 'n'},
		{"room", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},
		{"free", no_argument, NULL, OPT_FREE},
		{"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
		{"bell", no_argument, NULL, OPT_BELL},
		{"tls", no_argument, NULL, OPT_TLS},
		CLI_LONG_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const char *letters = "H:p:n:r:m:" CLI_SHORT_OPTIONS;
	const char *config_path = NULL, *host = NULL, *port = NULL, *name = NULL, *room = NULL;
	const char *mode = NULL;
	bool timestamps = false, bell = false, tls = false, port_given = false;
	struct config cfg;
	int opt;

	/* Character widths for the screen come from the locale, as readline's do. */
	setlocale(LC_CTYPE, "");
	while ((opt = getopt_long(argc, argv, letters, options, NULL)) != -1) {
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'r':
			room = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case OPT_FREE:
			mode = "free";
			break;
		case OPT_TIMESTAMPS:
			timestamps = true;
			break;
		case OPT_BELL:
			bell = true;
			break;
		case OPT_TLS:
			tls = true;
			break;
		case 'c':
			config_path = optarg;
			break;
		default: /* -V, -h, or a mistake */
			return cli_standard_option(opt, "turnchat", usage);
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "turnchat: too many arguments\n");
		usage(stderr);
		return EX_USAGE;
	}

	config_set_defaults(&cfg);
	if (load_config(&cfg, config_path) > 0)
		return EX_CONFIG;

	/* The command line comes last, so it wins over every file. */
	if (optind < argc && !parse_destination(argv[optind], &cfg, &port_given)) {
		fprintf(stderr, "turnchat: '%s' is not host, host:port or [address]:port\n",
			argv[optind]);
		return EX_USAGE;
	}
	if (optind < argc || host || port) {
		strcpy(address_origin, "the command line");
		address_from_file = false;
	}
	if (host) {
		if (host[0] == '\0' || strlen(host) > CONFIG_HOST_MAX) {
			fprintf(stderr, "turnchat: '%s' is not a host name\n", host);
			return EX_USAGE;
		}
		strcpy(cfg.host, host);
	}
	if (port && !parse_port(port, &cfg.port)) {
		fprintf(stderr, "turnchat: port '%s' is not a number from 1 to 65535\n", port);
		return EX_USAGE;
	}
	if (!name_ok("name", name) || !name_ok("room", room))
		return EX_USAGE;
	if (mode && !protocol_parse_mode(mode, strlen(mode), &cfg.client.mode)) {
		fprintf(stderr, "turnchat: mode '%s': use turns or free\n", mode);
		return EX_USAGE;
	}
	if (name)
		snprintf(cfg.client.name, sizeof(cfg.client.name), "%s", name);
	else if (cfg.client.name[0] == '\0')
		default_name(cfg.client.name, sizeof(cfg.client.name));
	if (room)
		snprintf(cfg.client.room, sizeof(cfg.client.room), "%s", room);

	/* With TLS, the TLS port, unless a port was named. */
	tls = tls || cfg.client.tls;
	if (tls && !port_given && !port)
		cfg.port = cfg.tls_port;
	int fd = connect_to(&cfg);
	if (fd < 0)
		return EX_UNAVAILABLE;
	char how[96] = "";
	struct tls *encrypted = NULL;
	if (tls) {
#ifdef HAVE_TLS
		int status;
		encrypted = trust_connect(fd, &cfg, cfg.host, cfg.port, how, sizeof(how), &status);
		if (encrypted == NULL) {
			close(fd);
			return status;
		}
#else
		fprintf(stderr, "turnchat: this turnchat was built without TLS\n");
		return EX_UNAVAILABLE;
#endif
	}

	/* Line editing needs a terminal on both sides; colour follows no-color.org. */
	bool terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	const char *no_color = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	struct chat_options chat = {
		.host = cfg.host,
		.port = cfg.port,
		.name = cfg.client.name,
		.room = cfg.client.room,
		.mode = cfg.client.mode,
		.interactive = terminal,
		.timestamps = timestamps,
		.security = encrypted ? how : NULL,
		.color = terminal && (no_color == NULL || no_color[0] == '\0') && term &&
			 strcmp(term, "dumb") != 0,
		.typing = cfg.client.typing,
		.bell = bell || cfg.client.bell,
	};
	return chat_run(fd, encrypted, &chat);
}
