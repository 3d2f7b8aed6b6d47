/*
 * activation: called by turnchatd's main at start-up, on reload and stop,
 * and from its loop for status and watchdog.
 */
#include "activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static int passed_state = -1;

int activation_take_state(void)
{
	int fd = passed_state;
	passed_state = -1;
	return fd;
}

bool activation_can_keep_state(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

int activation_keep_state(int fd)
{
	return sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=state", &fd, 1) > 0 ? 0 : -1;
}

void activation_forget_state(void)
{
	sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=state");
}

int activation_adopt_sockets(struct listener *plain, struct listener *tls, unsigned tls_port)
{
	char **names = NULL;
	/* unset_environment: children must not think the sockets are theirs. */
	int n = sd_listen_fds_with_names(1, &names);
	int adopted = 0;

	if (n < 0) {
		errno = -n;
		log_warn("cannot read the sockets passed by the service manager");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "unnamed";
		char where[128];

		if (strcmp(name, "state") == 0 && passed_state < 0) {
			/* Not a socket: what the last turnchatd kept (state.c). */
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			passed_state = fd;
			continue;
		}
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			/* Accept=yes would hand over a connection, not a listener: one
			 * daemon must see everyone to pair them, so that cannot work. */
			log_warnx("passed fd %d (%s) is not a listening stream socket; "
				  "turnchat.socket must use Accept=no",
				  fd, name);
			adopted = -1;
			continue;
		}
		bool is_tls = strcmp(name, "tls") == 0 || listener_port(fd) == tls_port;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		    listener_add_fd(is_tls ? tls : plain, fd) < 0) {
			log_warn("cannot serve passed fd %d (%s)", fd, name);
			adopted = -1;
			continue;
		}
		listener_describe(fd, where, sizeof(where));
		log_info("listening on %s%s (socket '%s' from the service manager)", where,
			 is_tls ? " for TLS" : "", name);
		if (adopted >= 0)
			adopted++;
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return adopted;
}

void activation_ready(void)
{
	sd_notify(0, "READY=1");
}

void activation_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void activation_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void activation_status(unsigned waiting, unsigned conversations, unsigned clients)
{
	sd_notifyf(0, "STATUS=%u waiting, %u conversation%s, %u client%s connected", waiting,
		   conversations, conversations == 1 ? "" : "s", clients, clients == 1 ? "" : "s");
}

uint64_t activation_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2000; /* twice per interval, as sd_watchdog_enabled(3) advises */
}

void activation_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

#else /* built without libsystemd: nothing is passed, nobody listens */

int activation_take_state(void)
{
	return -1;
}
bool activation_can_keep_state(void)
{
	return false;
}
int activation_keep_state(int fd)
{
	(void)fd;
	return -1;
}
void activation_forget_state(void)
{
}

int activation_adopt_sockets(struct listener *plain, struct listener *tls, unsigned tls_port)
{
	(void)plain;
	(void)tls;
	(void)tls_port;
	if (getenv("LISTEN_FDS"))
		log_warnx("sockets were passed, but turnchatd was built without libsystemd");
	return 0;
}

void activation_ready(void)
{
}
void activation_reloading(void)
{
}
void activation_stopping(void)
{
}
void activation_status(unsigned waiting, unsigned conversations, unsigned clients)
{
	(void)waiting, (void)conversations, (void)clients;
}
uint64_t activation_watchdog_interval_ms(void)
{
	return 0;
}
void activation_watchdog(void)
{
}

#endif
