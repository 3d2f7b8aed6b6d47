/*
 * state: the resumable conversations as bytes, and the memfd they live in.
 * Called by turnchatd's main, the server's tick and its stop (state.h).
 * What is in it is state_codec.c's.
 *
 * The memfd holds a header and a body. The whole of it is written with one
 * pwrite, which a signal cannot cut short: a daemon killed at any moment
 * leaves either the last state or the one before. Times are CLOCK_MONOTONIC
 * milliseconds, which go on across restarts (the store itself does not
 * survive a reboot).
 */
#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"
#include "hash.h"
#include "log.h"
#include "resume.h"
#include "server.h"
#include "session.h"
#include "state_codec.h"

static const char magic[8] = {'t', 'u', 'r', 'n', 'c', 'h', 'a', 't'};

struct header {
	char magic[8];
	uint32_t version;
	uint32_t attempts; /* loads begun: one that never ended crashed the daemon */
	uint64_t length;   /* of the body */
	uint32_t checksum; /* FNV-1a of the body */
	uint32_t unused;
};

static int write_all(int fd, const struct buffer *out)
{
	const char *data = buffer_peek(out);
	size_t len = buffer_length(out), done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	/* Only what follows the state goes; the header says where it ends. */
	return ftruncate(fd, (off_t)len);
}

static int save(struct server *server, bool mark)
{
	struct buffer out;
	struct header h = {.version = STATE_VERSION};
	int rc = -1;

	buffer_init(&out, SIZE_MAX);
	memcpy(h.magic, magic, sizeof(magic));
	if (buffer_append(&out, &h, sizeof(h)) == 0 && state_encode(server, &out, mark) == 0) {
		struct header *head = (struct header *)out.data;
		head->length = buffer_length(&out) - sizeof(h);
		head->checksum = hash_fnv1a(out.data + sizeof(h), head->length);
		rc = write_all(server->state_fd, &out);
	}
	if (rc < 0)
		log_warn("cannot write the conversations' state; a restart now would end them");
	buffer_release(&out);
	server->state_changed = rc < 0;
	return rc;
}

void state_save_if_changed(struct server *server)
{
	if (server->state_fd >= 0 && server->state_changed && !server->stopping)
		save(server, false);
}

bool state_save_for_stop(struct server *server)
{
	if (server->state_fd < 0)
		return false;
	if (save(server, true) < 0) {
		/* Nothing was written: better a BYE to everyone than silence. */
		struct session *s;
		LIST_FOREACH(s, &server->sessions, entry)
			if (s->resume)
				s->resume->kept = false;
		return false;
	}
	log_notice("conversations kept for the next turnchatd: %u", server_conversations(server));
	return true;
}

/* Reads the state in fd; false, with why logged, when it is discarded. */
static bool load(struct server *server, int fd)
{
	struct header h;
	struct stat st;
	char *body = NULL;
	const char *why;
	size_t at;
	bool ok = false;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, magic, sizeof(magic)) != 0) {
		log_warnx("the kept state is not turnchatd's; discarding it");
		return false;
	}
	if (h.version != STATE_VERSION) {
		log_warnx("the kept state is of version %u, this turnchatd reads %u; discarding it",
			  h.version, STATE_VERSION);
		return false;
	}
	if (h.attempts >= STATE_MAX_ATTEMPTS) {
		log_warnx("loading the kept state ended turnchatd %u times; discarding it",
			  h.attempts);
		return false;
	}
	/* Counted before it is read: should reading it end this daemon, the
	 * next one knows. */
	h.attempts++;
	if (h.length > (uint64_t)st.st_size - sizeof(h) ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    (body = malloc(h.length ? h.length : 1)) == NULL ||
	    pread(fd, body, h.length, sizeof(h)) != (ssize_t)h.length) {
		log_warnx("the kept state cannot be read; discarding it");
	} else if (hash_fnv1a(body, h.length) != h.checksum) {
		log_warnx("the kept state is damaged (checksum); discarding it");
	} else if ((why = state_decode(server, body, h.length, &at)) != NULL) {
		log_warnx(
			"the kept state does not make sense (%s, at byte %zu of %zu); discarding it",
			why, at, (size_t)h.length);
		session_forget_restored(server);
	} else {
		ok = true;
	}
	free(body);
	return ok;
}

void state_start(struct server *server)
{
	int fd = activation_take_state();

	if (fd >= 0) {
		if (load(server, fd)) {
			log_notice("%u conversation%s and %u people kept by the last turnchatd; they "
				   "have %u seconds to come back",
				   server_conversations(server),
				   server_conversations(server) == 1 ? "" : "s", server->clients,
				   server->config.server.resume_timeout);
		} else {
			server->state_lost = true;
			close(fd);
			activation_forget_state();
			fd = -1;
		}
	}
	if (fd < 0 && activation_can_keep_state()) {
		fd = memfd_create("turnchatd-state", MFD_CLOEXEC);
		if (fd < 0 || activation_keep_state(fd) < 0) {
			log_warn("cannot keep state with the service manager; a restart will end "
				 "every conversation");
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
	}
	server->state_fd = fd;
	server->state_changed = fd >= 0;
}

const char *state_lost_note(const struct server *server)
{
	return server->state_lost ? "No conversation to resume with that token: the server "
				    "restarted and could not keep its conversations"
				  : NULL;
}

void state_finish(struct server *server)
{
	if (server->state_fd >= 0)
		close(server->state_fd);
	server->state_fd = -1;
}
