/*
 * reconnect: a conversation granted resume outlives its connection. Called
 * by chat.c when the connection ends without a goodbye and on every pass
 * of the loop (reconnect_timers), and by reply.c for the lines of a resume
 * (HELLO on a new connection, RESUMED, TOKEN, a refusal). Calls dial.c for
 * each new connection and receipt.c for what to send again or report.
 *
 * After a drop it says so, keeps the queue and the half-typed line, and
 * tries again after 0.2 s, doubling to 10 s, each wait jittered by half
 * either way; a new connection asks for /resume with the last TOKEN, and
 * RESUMED then TOKEN carry the conversation on. It gives up, listing what
 * may not have arrived, when the server no longer has the conversation or
 * no attempt has worked for as long as the server waits (TOKEN's seconds).
 * Keepalive (a /ping after client.keepalive seconds of silence) finds a
 * connection broken without a word.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_internal.h"

#define RECONNECT_FIRST_MS 200
#define RECONNECT_MAX_MS 10000
/* An attempt that gets no further than this in this long is given up. */
#define RECONNECT_ATTEMPT_MS 10000

static void give_up(struct chat *chat, const char *why)
{
	struct chat_resume *resume = &chat->resume;

	dial_cancel(resume->dial);
	resume->dial = NULL;
	resume->retry_at = resume->attempt_by = 0;
	resume->token[0] = '\0';
	chat_say(chat, UI_PROBLEM, "turnchat: the conversation could not be resumed: %s", why);
	if (!chat->quit_sent)
		input_report_unsent(chat, "The conversation is over", true);
	receipt_report_undelivered(chat, "The conversation is over");
	chat_end(chat, chat->forced_status >= 0 ? chat->forced_status : 1);
	chat_set_turn(chat, UI_LEAVING);
}

/* The next attempt, after a backoff, or the end when time is up. */
static void plan_attempt(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;
	uint64_t now = event_now_ms(chat->loop);
	uint64_t deadline = resume->dropped_at + (uint64_t)resume->seconds * 1000;

	resume->resumed = false;
	resume->attempt_by = 0;
	if (now >= deadline) {
		char why[400];
		snprintf(why, sizeof(why), "no way back to %s port %u in %u seconds (%s)",
			 chat->options->host, chat->options->port, resume->seconds, resume->why);
		give_up(chat, why);
		return;
	}
	unsigned base = RECONNECT_FIRST_MS << (resume->attempts < 6 ? resume->attempts : 6);
	if (base > RECONNECT_MAX_MS)
		base = RECONNECT_MAX_MS;
	if (resume->attempts++ == 0)
		srandom((unsigned)(now ^ (uint64_t)getpid()));
	/* Clients dropped together (a server restarted, a network back) do not
	 * all knock at once. */
	uint64_t delay = base / 2 + (uint64_t)random() % (base + 1);
	resume->retry_at = now + delay < deadline ? now + delay : deadline;
}

bool reconnect_after_drop(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;

	if (chat->state == CHAT_RECONNECTING) {
		/* An attempt's connection ended before the conversation went on. */
		if (resume->why[0] == '\0')
			snprintf(resume->why, sizeof(resume->why),
				 "the server closed the connection");
		plan_attempt(chat);
		return true;
	}
	if (chat->state != CHAT_PAIRED || !receipt_on(chat) || resume->token[0] == '\0')
		return false;
	chat->state = CHAT_RECONNECTING;
	resume->dropped_at = event_now_ms(chat->loop);
	resume->attempts = 0;
	resume->ping_at = resume->ack_due_at = 0; /* /resume carries the count */
	snprintf(resume->why, sizeof(resume->why), "the connection was lost");
	chat->peer_typing = false;
	chat_say(chat, UI_PROBLEM, "Connection lost; reconnecting...");
	plan_attempt(chat);
	chat_update_status(chat);
	return true;
}

static void dialed(void *ctx, int fd, struct tls *tls, const char *why)
{
	struct chat *chat = ctx;
	struct chat_resume *resume = &chat->resume;

	resume->dial = NULL;
	if (fd >= 0) {
		chat->conn = chat_connect(chat, fd, tls);
		if (chat->conn == NULL) {
			dial_close(fd, tls);
			why = "out of memory";
		}
	}
	if (chat->conn == NULL) {
		snprintf(resume->why, sizeof(resume->why), "%s", why);
		plan_attempt(chat);
		return;
	}
	/* HELLO, RESUMED and TOKEN come at once from a server that works. */
	resume->why[0] = '\0';
	resume->attempt_by = event_now_ms(chat->loop) + RECONNECT_ATTEMPT_MS;
}

static void start_attempt(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;

	resume->retry_at = 0;
	resume->dial = dial_start(chat->loop, &resume->target, dialed, chat, resume->why,
				  sizeof(resume->why));
	if (resume->dial == NULL)
		plan_attempt(chat);
	else
		resume->attempt_by = event_now_ms(chat->loop) + RECONNECT_ATTEMPT_MS;
}

/* The attempt under way took too long: the next one. */
static void abandon_attempt(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;

	resume->attempt_by = 0;
	snprintf(resume->why, sizeof(resume->why), "no answer in %d seconds",
		 RECONNECT_ATTEMPT_MS / 1000);
	dial_cancel(resume->dial);
	resume->dial = NULL;
	connection_destroy(chat->conn);
	chat->conn = NULL;
	plan_attempt(chat);
}

void reconnect_greeted(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;
	struct buffer *out = connection_output(chat->conn);
	int rc = protocol_append_caps_request(out, reply_wanted_caps(chat));

	if (rc == 0)
		rc = protocol_append_resume_command(out, resume->token, resume->received);
	chat->caps_pending = true;
	resume->acked = resume->received;
	chat_send(chat, rc);
}

void reconnect_resumed(struct chat *chat, const struct server_line *line)
{
	struct chat_resume *resume = &chat->resume;

	if (chat->state != CHAT_RECONNECTING || resume->resumed)
		return;
	resume->resumed = true;
	resume->resumed_at = line->count;
	resume->attempt_by = 0; /* what follows may be a long replay */
	/* The turn stays as we counted it, not RESUMED's first: a server that
	 * restarted from an older state has an older turn, which comes right
	 * once our lines sent again arrive (turnchat-protocol(7)). */
	chat_say(chat, UI_PROBLEM, "Reconnected.");
	/* Ours go again only once TOKEN says the conversation goes on: if it
	 * ended meanwhile, the partner's last lines, RELAYED and BYE follow. */
}

void reconnect_token(struct chat *chat, const struct server_line *line)
{
	struct chat_resume *resume = &chat->resume;

	resume->active = true;
	snprintf(resume->token, sizeof(resume->token), "%.*s", (int)line->word_len, line->word);
	resume->seconds = line->count > UINT_MAX ? UINT_MAX : (unsigned)line->count;
	if (chat->state != CHAT_RECONNECTING || !resume->resumed)
		return;
	chat->state = CHAT_PAIRED;
	resume->resumed = false;
	resume->attempts = 0;
	resume->heard_at = event_now_ms(chat->loop);
	if (resume->leave_when_delivered)
		resume->leave_by = resume->heard_at + CHAT_RECEIPT_WAIT_MS;
	unsigned long writes = chat->writes;
	receipt_send_again(chat, resume->resumed_at);
	/* A /q the drop swallowed: the partner is told now, not after a timeout. */
	if (chat->quit_sent && chat->state == CHAT_PAIRED)
		chat_send(chat, protocol_append_command(connection_output(chat->conn), "q", NULL));
	if (chat->state == CHAT_PAIRED)
		input_flush(chat);
	/* The old token is good until we say something here: with nothing to
	 * say, an /ack spends it, so nobody else can come back with it. */
	if (chat->state == CHAT_PAIRED && chat->writes == writes) {
		resume->acked = resume->received;
		chat_send(chat, protocol_append_ack_command(connection_output(chat->conn),
							    resume->received));
	}
}

void reconnect_refused(struct chat *chat, const struct server_line *line)
{
	struct chat_resume *resume = &chat->resume;
	char why[300];

	if (line->keyword == SRV_BYE &&
	    (line->bye == BYE_SERVER_FULL || line->bye == BYE_ADDRESS_LIMIT ||
	     line->bye == BYE_SHUTDOWN)) {
		/* Turned away for now, not refused: the next attempt may do. */
		snprintf(resume->why, sizeof(resume->why), "the server said: %.*s",
			 (int)line->text_len, line->text);
		connection_abort(chat->conn);
		return;
	}
	if (line->keyword == SRV_ERR && line->error == ERR_NO_SESSION)
		snprintf(why, sizeof(why),
			 "the server no longer has it (it ended, or waited for you long enough)");
	else
		snprintf(why, sizeof(why), "the server refused: %.*s %.*s", (int)line->word_len,
			 line->word, (int)line->text_len, line->text);
	give_up(chat, why);
}

void reconnect_abandon(struct chat *chat, bool interrupted)
{
	const char *why = interrupted ? "Leaving (Ctrl-C)" : "Leaving";
	unsigned long lost = chat->lost;

	dial_cancel(chat->resume.dial);
	chat->resume.dial = NULL;
	input_report_unsent(chat, why, interrupted);
	receipt_report_undelivered(chat, why);
	chat_end(chat, interrupted ? 130 : chat->lost > lost ? 1 : 0);
	chat_set_turn(chat, UI_LEAVING);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return b != 0 && b < a ? b : a;
}

/* /ping after keepalive seconds of silence; as long again unanswered is a drop. */
static uint64_t keepalive(struct chat *chat, uint64_t now)
{
	struct chat_resume *resume = &chat->resume;
	uint64_t period = (uint64_t)chat->options->keepalive * 1000;

	if (period == 0 || chat->quit_sent || connection_is_closing(chat->conn))
		return 0;
	if (resume->ping_at == 0 && now >= resume->heard_at + period) {
		resume->ping_at = now;
		chat_send(chat, protocol_append_command(connection_output(chat->conn), "ping", NULL));
	} else if (resume->ping_at != 0 && now >= resume->ping_at + period) {
		/* Dropped here and now, not through connection_abort: a line typed
		 * before its end came round would find the output closed. */
		connection_destroy(chat->conn);
		chat->conn = NULL;
		reconnect_after_drop(chat);
		return 0;
	}
	return resume->ping_at ? resume->ping_at + period : resume->heard_at + period;
}

static uint64_t paired_timers(struct chat *chat, uint64_t now)
{
	struct chat_resume *resume = &chat->resume;
	uint64_t next = keepalive(chat, now);

	if (chat->state != CHAT_PAIRED)
		return 0;
	if (resume->ack_due_at != 0 && now >= resume->ack_due_at) {
		receipt_append_ack(chat);
		connection_flush(chat->conn);
		if (resume->ack_due_at != 0) /* the output is full: later */
			resume->ack_due_at = now + CHAT_ACK_DELAY_MS;
	}
	next = earliest(UINT64_MAX, next);
	next = earliest(next, resume->ack_due_at);
	if (resume->leave_when_delivered) {
		if (resume->leave_by == 0)
			resume->leave_by = now + CHAT_RECEIPT_WAIT_MS;
		if (now >= resume->leave_by) {
			resume->leave_when_delivered = false;
			chat_leave(chat, false);
			return 0;
		}
		next = earliest(next, resume->leave_by);
	}
	return next == UINT64_MAX ? 0 : next;
}

int reconnect_timers(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;
	uint64_t now = event_now_ms(chat->loop);
	uint64_t next = UINT64_MAX;

	if (chat->state == CHAT_PAIRED && chat->conn && receipt_on(chat))
		next = earliest(next, paired_timers(chat, now));
	if (chat->state == CHAT_RECONNECTING) {
		if (resume->retry_at != 0 && now >= resume->retry_at)
			start_attempt(chat);
		if (resume->attempt_by != 0 && now >= resume->attempt_by)
			abandon_attempt(chat);
		next = earliest(next, resume->retry_at);
		next = earliest(next, resume->attempt_by);
	}
	if (next == UINT64_MAX || chat->state == CHAT_ENDED)
		return -1;
	return next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

void reconnect_release(struct chat *chat)
{
	dial_cancel(chat->resume.dial);
	chat->resume.dial = NULL;
}
