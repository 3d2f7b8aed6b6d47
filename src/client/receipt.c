/*
 * receipt: the numbered lines of a conversation granted resume
 * (turnchat-protocol(7), "Resuming a conversation"), called by input.c for
 * each of ours it sends, by reply.c for each of the partner's that arrives
 * and for ACK, by chat.c with every write (an acknowledgement due goes with
 * it) and by reconnect.c (a resume: what to send again, what to report).
 *
 * Ours are kept, as sent, until an ACK covers them: after a drop the server
 * says which it has, and the rest go again, so nothing is lost or sent
 * twice; when the conversation cannot be carried on, they are exactly the
 * lines the person is told may not have arrived. The partner's are only
 * counted: the count goes back in /ack, so the server can let go of them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "chat_internal.h"

/* Lines are numbered from the start of a conversation granted resume... */
static bool numbering(const struct chat *chat)
{
	return (chat->caps & CAP_RESUME) != 0;
}

/* ...and receipts go both ways once its first TOKEN came (with PAIRED): a
 * server that grants resume and sends none knows no /ack either. */
bool receipt_on(const struct chat *chat)
{
	return numbering(chat) && chat->resume.active;
}

size_t receipt_pending(const struct chat *chat)
{
	/* Not receipt_on: a server that no longer grants resume leaves them pending. */
	return chat->resume.active ? outbox_count(&chat->resume.unacked) : 0;
}

void receipt_sent(struct chat *chat, enum outbox_kind kind, const char *text, size_t len)
{
	if (!numbering(chat))
		return;
	chat->resume.numbered++;
	/* Past 16 MiB unacknowledged the server has long stopped reading us;
	 * the line still counts, it just cannot go again after a drop. */
	if (outbox_push(&chat->resume.unacked, text, len, kind) < 0)
		chat_say(chat, UI_PROBLEM,
			 "turnchat: too many lines wait for a receipt; a drop now would lose one");
}

void receipt_received(struct chat *chat)
{
	if (!numbering(chat))
		return;
	struct chat_resume *resume = &chat->resume;
	resume->received++;
	/* Within a second, unless a line of ours takes the count along first;
	 * a burst read meanwhile is covered by the same /ack. */
	if (resume->ack_due_at == 0)
		resume->ack_due_at = event_now_ms(chat->loop) + CHAT_ACK_DELAY_MS;
}

void receipt_append_ack(struct chat *chat)
{
	struct chat_resume *resume = &chat->resume;

	if (!receipt_on(chat) || chat->state != CHAT_PAIRED || chat->conn == NULL ||
	    resume->received == resume->acked)
		return;
	/* If the output is full the count goes with a later write: nothing is lost. */
	if (protocol_append_ack_command(connection_output(chat->conn), resume->received) == 0) {
		resume->acked = resume->received;
		resume->ack_due_at = 0;
	}
}

void receipt_delivered(struct chat *chat, unsigned long count)
{
	struct chat_resume *resume = &chat->resume;
	struct outbox_line line;

	if (!receipt_on(chat))
		return;
	while (resume->delivered < count && outbox_take_first(&resume->unacked, &line)) {
		resume->delivered++;
		free(line.text);
	}
	if (resume->delivered < count)
		resume->delivered = count; /* lines the outbox could not keep */
	/* A script that reached the end of its input leaves once all arrived. */
	if (resume->leave_when_delivered && outbox_count(&resume->unacked) == 0 &&
	    chat->state == CHAT_PAIRED) {
		resume->leave_when_delivered = false;
		chat_leave(chat, false);
	}
}

static int append_line(struct buffer *out, const struct outbox_line *line)
{
	switch (line->kind) {
	case OUTBOX_ACTION:
		return protocol_append_command(out, "me", line->text);
	case OUTBOX_DONE:
		return protocol_append_command(out, "done", NULL);
	case OUTBOX_MESSAGE:
		break;
	}
	return protocol_append_message(out, line->text, line->len);
}

void receipt_send_again(struct chat *chat, unsigned long from)
{
	struct chat_resume *resume = &chat->resume;
	size_t count = outbox_count(&resume->unacked);
	/* The kept lines are numbered delivered+1 on; the server has up to from. */
	size_t skip = from > resume->delivered ? (size_t)(from - resume->delivered) : 0;
	int rc = 0;

	/* At once, whoever's turn it is: each took its turn when it was first
	 * sent (and shown), and the server holds one early until its turn. */
	for (size_t i = skip; i < count && rc == 0; i++)
		rc = append_line(connection_output(chat->conn), outbox_peek(&resume->unacked, i));
	if (skip < count)
		chat_send(chat, rc);
}

void receipt_report_undelivered(struct chat *chat, const char *why)
{
	struct chat_resume *resume = &chat->resume;
	size_t count = receipt_pending(chat);
	struct outbox_line line;

	if (count == 0)
		return;
	chat_say(chat, UI_PROBLEM, "%s: %zu of your lines may not have reached %s:", why, count,
		 chat->peer[0] ? chat->peer : "your partner");
	for (size_t i = 1; outbox_take_first(&resume->unacked, &line); i++) {
		char head[48];
		struct buffer text;
		int n = snprintf(head, sizeof(head), "%zu. %s", i,
				 line.kind == OUTBOX_ACTION ? "/me "
				 : line.kind == OUTBOX_DONE ? "/done"
							    : "");
		buffer_init(&text, line.len + sizeof(head));
		buffer_append(&text, head, (size_t)n);
		buffer_append(&text, line.text, line.len);
		chat_show(chat, UI_PROBLEM, NULL, buffer_peek(&text), buffer_length(&text));
		buffer_release(&text);
		free(line.text);
	}
	chat->lost += count;
}
